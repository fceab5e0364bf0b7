"""The logger services: plugin fields, development and production lines, levels, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from backstage_core import core_services, create_backend_plugin
from backstage_core.config.reader import ConfigReader
from backstage_core.services.logger import (
    DevFormatter,
    JsonFormatter,
    LevelFilter,
    LoggerService,
    log_state,
    read_level,
    read_overrides,
)


@pytest.fixture
def capture() -> Iterator[Any]:
    """Lines as the console handler writes them, for a given formatter."""
    streams: list[tuple[logging.Handler, io.StringIO]] = []
    saved = (log_state.level, list(log_state.overrides))

    def attach(formatter: logging.Formatter) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(LevelFilter())
        logging.getLogger().addHandler(handler)
        streams.append((handler, stream))
        return stream

    yield attach
    for handler, _ in streams:
        logging.getLogger().removeHandler(handler)
    log_state.set_level(saved[0])
    log_state.set_overrides(saved[1])


def root() -> LoggerService:
    logger = logging.getLogger("backstage.logtest")
    logger.setLevel(logging.DEBUG)
    return LoggerService(logger, {"service": "backstage"})


def test_development_lines_are_readable_with_the_plugin_id(capture: Any) -> None:
    stream = capture(DevFormatter(color=False))
    log_state.set_level("info")
    root().child({"plugin": "todo"}).info("Todo created", {"id": "t1", "count": 2})
    root().warn("Root line")

    first, second = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z todo info Todo created id=\"t1\" count=2", first
    )
    assert re.fullmatch(r"\S+ backstage warn Root line", second)


def test_development_lines_are_coloured_on_a_terminal(capture: Any) -> None:
    stream = capture(DevFormatter(color=True))
    log_state.set_level("info")
    root().child({"plugin": "todo"}).error("Broken")
    assert "\x1b[31merror\x1b[0m" in stream.getvalue()
    assert "\x1b[34mtodo\x1b[0m" in stream.getvalue()


def test_production_lines_are_json_with_every_field(capture: Any) -> None:
    stream = capture(JsonFormatter())
    log_state.set_level("info")
    root().child({"plugin": "todo"}).child({"task": "purge"}).info("Purged", {"rows": 3})
    line = json.loads(stream.getvalue())
    assert line["level"] == "info"
    assert line["message"] == "Purged"
    assert (line["service"], line["plugin"], line["task"], line["rows"]) == (
        "backstage",
        "todo",
        "purge",
        3,
    )
    assert re.fullmatch(r"\S+Z", line["timestamp"])


def test_errors_carry_their_stack(capture: Any) -> None:
    stream = capture(JsonFormatter())
    log_state.set_level("info")
    try:
        raise ValueError("went wrong")
    except ValueError as error:
        root().error("Failed", error)
    line = json.loads(stream.getvalue())
    assert line["message"] == "Failed"
    assert "ValueError: went wrong" in line["stack"]


def test_the_level_comes_from_log_level_then_config_then_info(capture: Any) -> None:
    config = ConfigReader({"backend": {"logger": {"level": "warn"}}})
    assert read_level(config, {}) == "warn"
    assert read_level(config, {"LOG_LEVEL": "debug"}) == "debug"
    assert read_level(ConfigReader({}), {}) == "info"
    with pytest.raises(ValueError, match="Invalid log level 'loud'"):
        read_level(config, {"LOG_LEVEL": "loud"})

    stream = capture(DevFormatter(color=False))
    log_state.set_level("warn")
    root().info("hidden")
    root().warn("shown")
    assert [line.split(" ", 3)[3] for line in stream.getvalue().splitlines()] == ["shown"]


def test_overrides_set_levels_for_matching_lines(capture: Any) -> None:
    config = ConfigReader(
        {
            "backend": {
                "logger": {
                    "overrides": [
                        {"matchers": {"plugin": "todo"}, "level": "debug"},
                        {"matchers": {"message": "/^noisy/"}, "level": "error"},
                    ]
                }
            }
        }
    )
    stream = capture(DevFormatter(color=False))
    log_state.set_level("warn")
    log_state.set_overrides(read_overrides(config))
    root().child({"plugin": "todo"}).debug("todo detail")
    root().child({"plugin": "other"}).info("other detail")
    root().warn("noisy warning")
    root().warn("plain warning")
    assert [line.split(" ", 3)[3] for line in stream.getvalue().splitlines()] == [
        "todo detail",
        "plain warning",
    ]

    bad = ConfigReader({"backend": {"logger": {"overrides": [{"matchers": {}, "level": "loud"}]}}})
    with pytest.raises(ValueError) as error:
        read_overrides(bad)
    assert str(error.value) == (
        "Invalid config at backend.logger.overrides[0].level, 'loud' is not a valid logging level, "
        "must be one of 'error', 'warn', 'info' or 'debug'."
    )


def test_secret_config_values_never_appear_in_a_log_line(
    test_backend_factory: Any, capture: Any
) -> None:
    from backstage_core.services.logger import root_logger_factory

    seen: dict[str, Any] = {}

    def register(env: Any) -> None:
        env.register_init(
            deps={"logger": core_services.logger}, init=lambda logger: seen.update(logger=logger)
        )

    config = {
        "backend": {
            "database": {"client": "better-sqlite3", "connection": {"password": "hunter2-db"}},
            "auth": {"keys": [{"secret": "k3y-material"}]},
        }
    }
    stream = capture(JsonFormatter())
    test_backend_factory(
        features=[
            create_backend_plugin(plugin_id="leaky", register=register, django_app=None),
            root_logger_factory(),
        ],
        config=config,
    )
    log_state.set_level("info")
    seen["logger"].info(
        "connecting with hunter2-db", {"key": "k3y-material", "nested": {"deep": "x hunter2-db y"}}
    )
    logging.getLogger("django.request").error("Internal error: password=hunter2-db")

    output = stream.getvalue()
    assert "hunter2-db" not in output and "k3y-material" not in output
    lines = [
        json.loads(line)
        for line in output.splitlines()
        if "connecting" in line or "Internal" in line
    ]
    assert lines[0]["message"] == "connecting with ***"
    assert lines[0]["key"] == "***"
    assert lines[0]["nested"] == {"deep": "x *** y"}
    assert lines[1]["message"] == "Internal error: password=***"
