"""The root config service: every config source, substitution, typed getter and remote reload."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backstage_core.config.loader import ConfigLoadError
from backstage_core.config.reader import AppConfig, ConfigReader
from backstage_core.services.config import config_secrets, load_root_config

ROOT = Path(__file__).resolve().parents[2]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def load(tmp_path: Path, argv: list[str] | None = None, **environ: str) -> Any:
    return load_root_config(argv=argv or ["prog"], root_dir=tmp_path, environ=environ)


def test_app_config_yaml_then_local_file_deep_merged(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app-config.yaml",
        "app: {title: Base, list: [1, 2]}\nbackend: {baseUrl: http://a}\n",
    )
    write(tmp_path, "app-config.local.yaml", "app: {title: Local, list: [3]}\n")
    config = load(tmp_path)
    assert config.get("app") == {"title": "Local", "list": [3]}
    assert config.get_string("backend.baseUrl") == "http://a"


def test_backstage_env_files_sit_between_the_base_and_the_local_files(tmp_path: Path) -> None:
    write(tmp_path, "app-config.yaml", "a: base\nb: base\nc: base\nd: base\n")
    write(tmp_path, "app-config.production.yaml", "b: production\nc: production\nd: production\n")
    write(tmp_path, "app-config.local.yaml", "c: local\nd: local\n")
    write(tmp_path, "app-config.production.local.yaml", "d: production-local\n")
    config = load(tmp_path, BACKSTAGE_ENV="production")
    assert [config.get(k) for k in "abcd"] == ["base", "production", "local", "production-local"]
    assert load(tmp_path).get("b") == "base"


def test_config_arguments_replace_the_default_files_and_later_ones_win(tmp_path: Path) -> None:
    write(tmp_path, "app-config.yaml", "a: default\n")
    one = write(tmp_path, "one.yaml", "a: one\nb: one\n")
    two = write(tmp_path, "two.yaml", "b: two\n")
    config = load(tmp_path, ["prog", "--config", str(one), f"--config={two}"])
    assert (config.get("a"), config.get("b")) == ("one", "two")


def test_app_config_env_vars_merge_last_with_json_values(tmp_path: Path) -> None:
    write(tmp_path, "app-config.yaml", "backend: {listen: {port: 7007}, baseUrl: http://a}\n")
    config = load(
        tmp_path,
        APP_CONFIG_backend_listen_port="8080",
        APP_CONFIG_backend_baseUrl="http://b",
        APP_CONFIG_app_flags='{"x": true}',
    )
    assert config.get("backend.listen.port") == 8080
    assert config.get("backend.baseUrl") == "http://b"
    assert config.get("app.flags") == {"x": True}


def test_substitution_fallbacks_escapes_and_unset_variables(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app-config.yaml",
        "a: ${NAME}\nb: 'http://${HOST:-localhost}:7007'\nc: $${NOT_A_VAR}\nd: ${UNSET}\ne: [x, '${UNSET}', y]\n",
    )
    config = load(tmp_path, NAME=" jane ", HOST="")
    assert config.get("a") == "jane"
    assert config.get("b") == "http://localhost:7007"
    assert config.get("c") == "${NOT_A_VAR}"
    assert not config.has("d")
    assert config.get("e") == ["x", "y"]


def test_env_file_and_include_directives(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    write(tmp_path / "secrets", "token.txt", "s3cret-token\n\n")
    write(
        tmp_path, "extra.yaml", "nested:\n  deep: {value: 42, file: {$file: secrets/token.txt}}\n"
    )
    write(tmp_path, "extra.json", '{"name": "from-json"}')
    write(
        tmp_path,
        "app-config.yaml",
        "a: {$env: MY_VAR}\nb: {$file: secrets/token.txt}\nc: {$include: extra.yaml#nested.deep}\n"
        "d: {$include: extra.json}\ne: {$env: NOT_SET}\n",
    )
    config = load(tmp_path, MY_VAR="from-env")
    assert config.get("a") == "from-env"
    assert config.get("b") == "s3cret-token"
    assert config.get("c") == {"value": 42, "file": "s3cret-token"}
    assert config.get("d") == {"name": "from-json"}
    assert not config.has("e")


def test_a_missing_included_file_is_an_error_naming_the_file_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "app-config.yaml", "a:\n  b: {$file: missing.txt}\n")
    with pytest.raises(ConfigLoadError) as error:
        load(tmp_path)
    assert str(error.value) == (
        f'Failed to read config file at "{path}", error at .a.b, failed to read file missing.txt, '
        f'NotFoundError: failed to include "{tmp_path / "missing.txt"}", file does not exist'
    )


def test_yaml_is_read_as_yaml_1_2(tmp_path: Path) -> None:
    write(tmp_path, "app-config.yaml", "a: yes\nb: on\nc: true\nd: 010\ne: 1:30\n")
    config = load(tmp_path)
    assert [config.get(k) for k in "abcde"] == ["yes", "on", True, 10, "1:30"]


def test_yaml_is_parsed_by_libyaml_with_the_same_results_as_pyyamls_parser() -> None:
    import yaml

    from backstage_core.config import loader

    assert issubclass(loader._Yaml12Loader, yaml.CSafeLoader)  # PyYAML's wheels have LibYAML

    class PurePython(yaml.SafeLoader):
        yaml_implicit_resolvers = loader._Yaml12Loader.yaml_implicit_resolvers
        yaml_constructors = loader._Yaml12Loader.yaml_constructors

    for name in ("app-config.yaml", "app-config.production.yaml"):
        text = (ROOT / name).read_text()
        assert loader.parse_yaml(text) == yaml.load(text, Loader=PurePython)  # noqa: S506
    text = "a: [1, 0x1f, 0o17, -2.5e3, .inf, ~, 'x: y', yes]\nb: {c: !!str 7}\n"
    assert loader.parse_yaml(text) == yaml.load(text, Loader=PurePython)  # noqa: S506


def reader() -> ConfigReader:
    return ConfigReader.from_configs(
        [
            AppConfig(
                {"backend": {"listen": {"port": "7007"}, "flag": "yes", "name": "", "n": 3}},
                "app-config.yaml",
            ),
            AppConfig(
                {"backend": {"baseUrl": 1234, "list": ["a", ""]}, "arr": [{"x": 1}, 2]},
                "app-config.local.yaml",
            ),
        ]
    )


def test_typed_getters_convert_as_backstage_does() -> None:
    config = reader()
    assert config.get_number("backend.listen.port") == 7007
    assert config.get_boolean("backend.flag") is True
    assert config.get_optional_string("backend.missing") is None
    assert set(config.keys()) == {"backend", "arr"}
    assert set(config.get_config("backend").keys()) == {
        "baseUrl",
        "list",
        "listen",
        "flag",
        "name",
        "n",
    }
    assert config.has("backend.n") and not config.has("backend.nope")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c.get_string("backend.baseUrl"),
            "Invalid type in config for key 'backend.baseUrl' in 'app-config.local.yaml', got number, wanted string",
        ),
        (
            lambda c: c.get_string("backend.name"),
            "Invalid type in config for key 'backend.name' in 'app-config.yaml', got empty-string, wanted string",
        ),
        (
            lambda c: c.get_string("backend.missing"),
            "Missing required config value at 'backend.missing' in 'app-config.local.yaml'",
        ),
        (
            lambda c: c.get_config("backend").get_number("missing"),
            "Missing required config value at 'backend.missing' in 'app-config.local.yaml'",
        ),
        (
            lambda c: c.get_boolean("backend.n"),
            "Unable to convert config value for key 'backend.n' in 'app-config.local.yaml' to a boolean",
        ),
        (
            lambda c: c.get_string_array("backend.list"),
            "Invalid type in config for key 'backend.list[1]' in 'app-config.local.yaml', got empty-string, wanted string-array",
        ),
        (
            lambda c: c.get_config_array("arr"),
            "Invalid type in config for key 'arr[1]' in 'app-config.local.yaml', got number, wanted object-array",
        ),
        (
            lambda c: c.get_config("backend.n"),
            "Invalid type in config for key 'backend.n' in 'app-config.yaml', got number, wanted object",
        ),
        (lambda c: c.get("bad key"), "Invalid config key 'bad key'"),
        # the Kelvin sign: a letter to Python's re.IGNORECASE, not to Backstage's /i pattern
        (lambda c: c.get("\u212aey"), "Invalid config key '\u212aey'"),
    ],
)
def test_typed_getter_errors_name_the_key_and_the_file(call: Any, message: str) -> None:
    with pytest.raises((TypeError, KeyError, ValueError)) as error:
        call(reader())
    assert str(error.value) == message


class _ConfigHandler(http.server.BaseHTTPRequestHandler):
    body = b"remote: {value: first}\n"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def config_server() -> Iterator[tuple[str, type[_ConfigHandler]]]:
    handler = type("Handler", (_ConfigHandler,), {"body": _ConfigHandler.body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/app-config.yaml", handler
    server.shutdown()
    server.server_close()


def test_remote_config_reloads_and_tells_subscribers(tmp_path: Path, config_server: Any) -> None:
    url, handler = config_server
    config = load_root_config(
        argv=["prog", "--config", url],
        root_dir=tmp_path,
        environ={},
        remote={"reload_interval_seconds": 0.1},
    )
    changes: list[str] = []
    view = config.get_config("remote")
    config.subscribe(lambda: changes.append(config.get_string("remote.value")))
    assert view.get_string("value") == "first"

    handler.body = b"remote: {value: second}\n"
    deadline = time.monotonic() + 5
    while not changes and time.monotonic() < deadline:
        time.sleep(0.05)
    config.close()

    assert changes[:1] == ["second"]
    assert view.get_string("value") == "second"  # views read the newest data


def test_remote_config_needs_the_remote_option(tmp_path: Path, config_server: Any) -> None:
    url, _ = config_server
    with pytest.raises(
        ConfigLoadError, match="looks like a URL but remote configuration is not enabled"
    ):
        load_root_config(argv=["prog", "--config", url], root_dir=tmp_path, environ={})


def test_secrets_are_found_under_secret_paths_names_and_connection_urls() -> None:
    config = ConfigReader(
        {
            "backend": {
                "database": {"connection": {"password": "pw-1", "host": "db.internal"}},
                "auth": {"keys": [{"secret": "key-2"}]},
                "cache": {"connection": "redis://user:pw-3@cache:6379"},
            },
            "integrations": {"github": [{"token": "tok-4", "host": "github.com"}]},
            "app": {"title": "Not secret"},
        }
    )
    assert config_secrets(config) == {
        "pw-1",
        "db.internal",
        "key-2",
        "redis://user:pw-3@cache:6379",
        "pw-3",
        "tok-4",
    }


def test_manage_py_accepts_repeated_config_arguments(tmp_path: Path) -> None:
    first = write(
        tmp_path, "first.yaml", "backend: {baseUrl: http://first:7007}\napp: {title: First}\n"
    )
    second = write(tmp_path, "second.yaml", "app: {title: Second}\n")
    code = (
        "from backstage_core import core_services; from backstage_core.runtime import get_default_backend; "
        "c = get_default_backend().get_service(core_services.root_config); "
        "print(c.get_string('backend.baseUrl'), c.get_string('app.title'))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--config", str(first), "-c", code, f"--config={second}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://first:7007 Second"
