"""The root config service: app-config files, env vars and remote config, with change subscriptions.

    backend.add(config_factory(argv=["--config", "app-config.production.yaml"]))
    backend.add(config_factory(remote={"reload_interval_seconds": 60}))

Plugins depend on ``core_services.root_config`` (also available as ``core_services.config``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from backstage_core.config.loader import config_targets, load_configs
from backstage_core.config.reader import ConfigReader
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["ObservableConfig", "config_factory", "config_secrets"]

log = logging.getLogger("backstage.config")
Subscriber = Callable[[], None]


class _Subscription:
    def __init__(self, owner: ObservableConfig, callback: Subscriber) -> None:
        self._owner, self._callback = owner, callback

    def unsubscribe(self) -> None:
        self._owner._subscribers.discard(self._callback)


class ObservableConfig:
    """A config reader whose data can be replaced; subscribers hear about each change.

    ``get_config(key)`` returns a live view: it reads the newest data on every call.
    """

    _READER_METHODS = (
        "has", "keys", "get", "get_optional", "get_config_array", "get_optional_config_array",
        "get_number", "get_optional_number", "get_boolean", "get_optional_boolean",
        "get_string", "get_optional_string", "get_string_array", "get_optional_string_array",
    )  # fmt: skip

    def __init__(
        self,
        reader: ConfigReader | None = None,
        *,
        parent: ObservableConfig | None = None,
        key: str | None = None,
    ) -> None:
        self._reader = reader
        self._parent = parent
        self._key = key
        self._subscribers: set[Subscriber] = set()
        self._closers: list[Callable[[], None]] = []

    def _current(self) -> ConfigReader:
        if self._parent is None:
            assert self._reader is not None
            return self._reader
        return self._parent._current().get_config(self._key or "")

    def __getattr__(self, name: str) -> Any:
        if name in self._READER_METHODS:
            return getattr(self._current(), name)
        raise AttributeError(name)

    def get_config(self, key: str) -> ObservableConfig:
        self._current().get_config(key)  # fail now if it is missing or not an object
        return ObservableConfig(parent=self, key=key)

    def get_optional_config(self, key: str) -> ObservableConfig | None:
        return (
            self.get_config(key) if self._current().get_optional_config(key) is not None else None
        )

    def set_config(self, reader: ConfigReader) -> None:
        """Replace the data; subscribers are called when what it reads as has changed."""
        if self._parent is not None:
            raise RuntimeError("Only the root config can be replaced")
        previous = self._current().get_optional()
        self._reader = reader
        if reader.get_optional() != previous:
            for callback in list(self._subscribers):
                try:
                    callback()
                except Exception as error:  # one subscriber must not stop the others
                    log.error("Config subscriber threw error, %s", error)

    def subscribe(self, on_change: Subscriber) -> _Subscription:
        root = self._root()
        root._subscribers.add(on_change)
        return _Subscription(root, on_change)

    def _root(self) -> ObservableConfig:
        return self if self._parent is None else self._parent._root()

    def close(self) -> None:
        if self._parent is not None:
            raise RuntimeError("Only the root config can be closed")
        for closer in self._closers:
            closer()


class _RemotePoller:
    """Reloads remote config every interval and swaps it into the observable config."""

    def __init__(
        self, load: Callable[[], ConfigReader], config: ObservableConfig, interval: float
    ) -> None:
        self._load = load
        self._config = config
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="backstage-config-reload", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._config.set_config(self._load())
            except Exception as error:
                log.error("Failed to reload configuration, %s", error)

    def stop(self) -> None:
        self._stop.set()


def _remote_interval(remote: Mapping[str, Any] | None) -> float | None:
    if remote is None:
        return None
    seconds = remote.get("reload_interval_seconds", remote.get("reloadIntervalSeconds", 60))
    return float(seconds)


def load_root_config(
    *,
    argv: Sequence[str] | None = None,
    remote: Mapping[str, Any] | None = None,
    root_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ObservableConfig:
    """Load app-config the way the root config service does."""
    env = dict(os.environ if environ is None else environ)
    arguments = list(sys.argv if argv is None else argv)
    if argv is None and not config_targets(arguments) and env.get("BACKSTAGE_CONFIG_FILES"):
        # A server that owns its command line (granian, gunicorn) passes config files this way.
        for path in env["BACKSTAGE_CONFIG_FILES"].split(os.pathsep):
            arguments += ["--config", path]
    root = Path(root_dir) if root_dir is not None else Path.cwd()
    interval = _remote_interval(remote)

    def read() -> tuple[ConfigReader, list[str]]:
        configs, urls = load_configs(
            argv=arguments, environ=env, root_dir=root, remote_enabled=interval is not None
        )
        return ConfigReader.from_configs(configs), urls

    reader, urls = read()
    config = ObservableConfig(reader)
    if urls and interval is not None:
        poller = _RemotePoller(lambda: read()[0], config, interval)
        config._closers.append(poller.stop)
    return config


def config_factory(
    *,
    argv: Sequence[str] | None = None,
    remote: Mapping[str, Any] | None = None,
    root_dir: str | Path | None = None,
) -> ServiceFactory:
    """The root config service factory.

    ``argv`` replaces ``sys.argv`` as the source of ``--config`` arguments; ``remote`` enables
    config from URLs, reloaded every ``reload_interval_seconds`` (default 60); ``root_dir`` is
    where ``app-config.yaml`` and its siblings are looked for (the working directory).
    """

    def factory() -> ObservableConfig:
        return load_root_config(argv=argv, remote=remote, root_dir=root_dir)

    return create_service_factory(service=core_services.root_config, factory=factory)


# -- secrets -------------------------------------------------------------------------------

# Config paths whose values are secret (Backstage marks these `@visibility secret`).
SECRET_PATHS = (
    "backend.database.connection",
    "backend.database.plugin.*.connection",
    "backend.cache.connection",
    "backend.auth.keys.*.secret",
    "backend.auth.externalAccess.*.options.token",
    "backend.auth.externalAccess.*.options.secret",
    "backend.https.certificate.key",
    "backend.django.secretKey",
)
# Any key with one of these names holds a secret, wherever it is.
SECRET_KEY_NAMES = re.compile(
    r"(?:password|passwd|secret|secretKey|clientSecret|token|apiKey|privateKey|accessKey)",
    re.IGNORECASE,
)


def _match(path: list[str], pattern: list[str]) -> bool:
    return len(path) >= len(pattern) and all(
        p == "*" or p == q for p, q in zip(pattern, path, strict=False)
    )


def config_secrets(config: Any) -> set[str]:
    """Every string value in config that is a secret: under a secret path, or named like one.

    A connection URL's password counts too, so it is hidden even when the URL is not.
    """
    secrets: set[str] = set()
    patterns = [p.split(".") for p in SECRET_PATHS]

    def visit(value: Any, path: list[str], secret: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                child = [*path, str(key)]
                visit(
                    item,
                    child,
                    secret
                    or any(_match(child, p) for p in patterns)
                    or bool(SECRET_KEY_NAMES.fullmatch(str(key))),
                )
        elif isinstance(value, list):
            for item in value:
                visit(item, [*path, "*"], secret)
        elif isinstance(value, str):
            if secret and len(value.strip()) > 1:
                secrets.add(value.strip())
            password = _url_password(value)
            if password:
                secrets.add(password)

    visit(config.get_optional() or {}, [], False)
    return secrets


def _url_password(value: str) -> str | None:
    if "://" not in value or "@" not in value:
        return None
    try:
        password = urlparse(value).password
    except ValueError:
        return None
    return password if password and len(password) > 1 else None


def iter_secret_values(config: Any) -> Iterable[str]:
    return sorted(config_secrets(config), key=len, reverse=True)
