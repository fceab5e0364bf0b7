"""A typed reader over layered app-config data, as ``@backstage/config``'s ConfigReader.

    config = ConfigReader.from_configs([AppConfig(data, "app-config.yaml"), ...])
    config.get_string("backend.baseUrl")
    config.get_optional_number("backend.listen.port")

Later layers win; objects merge key by key when read, arrays and scalars replace. Errors name the
key and the file the value came from.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AppConfig", "Config", "ConfigReader", "JsonValue"]

JsonValue = Any
# Backstage's /^[a-z][a-z0-9]*(?:[-_:][a-z0-9]+)*$/i, as ASCII letters (see wiring.features.ID_PATTERN)
KEY_PART = re.compile(r"[a-zA-Z][a-zA-Z0-9]*(?:[-_:][a-zA-Z0-9]+)*")
TRUE_TEXT = re.compile(r"(?:y|yes|true|1|on)", re.IGNORECASE)
FALSE_TEXT = re.compile(r"(?:n|no|false|0|off)", re.IGNORECASE)
_MISSING: Any = object()


@functools.lru_cache(maxsize=4096)
def _valid_key(key: str) -> bool:
    """Whether every dot-separated part of ``key`` is a valid key (the keys code reads are few,
    and read again and again: each is checked once)."""
    return all(KEY_PART.fullmatch(part) for part in key.split("."))


@dataclass(frozen=True)
class AppConfig:
    """One layer of configuration: its data and where it came from (a file name, 'env', a URL)."""

    data: Mapping[str, Any]
    context: str


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "nan" if isinstance(value, float) and math.isnan(value) else "number"
    if value == "":
        return "empty-string"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _type_error(key: str, context: str, got: str, wanted: str) -> TypeError:
    return TypeError(
        f"Invalid type in config for key '{key}' in '{context}', got {got}, wanted {wanted}"
    )


def _missing_error(key: str, context: str) -> KeyError:
    return ConfigMissingError(f"Missing required config value at '{key}' in '{context}'")


def _convert_error(key: str, context: str, wanted: str) -> ValueError:
    return ValueError(
        f"Unable to convert config value for key '{key}' in '{context}' to a {wanted}"
    )


class ConfigMissingError(KeyError):
    """A required config value is absent."""

    def __str__(self) -> str:
        return str(self.args[0])


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def _merge(base: Any, top: Any) -> Any:
    """``top`` over ``base``: objects merge by key (None removes a key), anything else replaces."""
    if _is_object(base) and _is_object(top):
        merged = dict(base)
        for key, value in top.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    return copy.deepcopy(top)


class ConfigReader:
    """Reads one layer of data, falling back to a lower-priority reader for what it lacks."""

    def __init__(
        self,
        data: Mapping[str, Any] | None,
        context: str = "mock-config",
        fallback: ConfigReader | None = None,
        prefix: str = "",
    ) -> None:
        self._data = data
        self._context = context
        self._fallback = fallback
        self._prefix = prefix

    @classmethod
    def from_configs(cls, configs: Iterable[AppConfig]) -> ConfigReader:
        """A reader over layers in priority order, the first lowest."""
        reader: ConfigReader | None = None
        for config in configs:
            reader = cls(config.data, config.context, reader)
        return reader if reader is not None else cls(None)

    @property
    def context(self) -> str:
        return self._context

    # -- plumbing ------------------------------------------------------------------------

    def _full_key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    @staticmethod
    def _validate_key(key: str) -> None:
        if not _valid_key(key):
            raise TypeError(f"Invalid config key '{key}'")

    def _read_local(self, key: str) -> Any:
        """The raw value at ``key`` in this layer only, or _MISSING."""
        self._validate_key(key)
        value: Any = self._data
        if value is None:
            return _MISSING
        parts = key.split(".")
        for index, part in enumerate(parts):
            if not _is_object(value):
                if value is None:
                    return _MISSING
                path = self._full_key(".".join(parts[:index]))
                raise _type_error(path, self._context, type_name(value), "object")
            if part not in value:
                return _MISSING
            value = value[part]
        return value

    def _read(self, key: str) -> tuple[Any, str]:
        """The value at ``key`` from the highest layer that has it, and that layer's context."""
        value = self._read_local(key)
        if value is _MISSING:
            if self._fallback is not None:
                return self._fallback._read(key)
            return _MISSING, self._context
        return value, self._context

    # -- generic access ------------------------------------------------------------------

    def has(self, key: str) -> bool:
        value = self._read_local(key)
        if value is None:
            return False
        if value is not _MISSING:
            return True
        return self._fallback.has(key) if self._fallback is not None else False

    def keys(self) -> list[str]:
        local = self._data if _is_object(self._data) else {}
        keys = list(local)
        if self._fallback is not None:
            keys += [k for k in self._fallback.keys() if k not in keys]
        return [k for k in keys if local.get(k, _MISSING) is not None]

    def get(self, key: str | None = None) -> JsonValue:
        value = self.get_optional(key)
        if value is None:
            raise _missing_error(self._full_key(key or ""), self._context)
        return value

    def get_optional(self, key: str | None = None) -> JsonValue | None:
        if key is None:
            local: Any = copy.deepcopy(self._data) if self._data is not None else _MISSING
        else:
            local = self._read_local(key)
            local = copy.deepcopy(local) if local is not _MISSING else _MISSING
        if local is None:
            return None
        fallback = self._fallback.get_optional(key) if self._fallback is not None else None
        if local is _MISSING:
            return fallback
        if fallback is not None and _is_object(local) and _is_object(fallback):
            return _merge(fallback, local)
        return local

    # -- nested configs ------------------------------------------------------------------

    def get_config(self, key: str) -> ConfigReader:
        config = self.get_optional_config(key)
        if config is None:
            raise _missing_error(self._full_key(key), self._context)
        return config

    def get_optional_config(self, key: str) -> ConfigReader | None:
        value = self._read_local(key)
        fallback = self._fallback.get_optional_config(key) if self._fallback is not None else None
        if value is None:
            return None
        if value is _MISSING:
            return fallback
        if not _is_object(value):
            raise _type_error(self._full_key(key), self._context, type_name(value), "object")
        return ConfigReader(value, self._context, fallback, self._full_key(key))

    def get_config_array(self, key: str) -> list[ConfigReader]:
        configs = self.get_optional_config_array(key)
        if configs is None:
            raise _missing_error(self._full_key(key), self._context)
        return configs

    def get_optional_config_array(self, key: str) -> list[ConfigReader] | None:
        value, context = self._read(key)
        if value is _MISSING or value is None:
            return None
        full = self._full_key(key)
        if not isinstance(value, list):
            raise _type_error(full, context, type_name(value), "object-array")
        readers = []
        for index, item in enumerate(value):
            if not _is_object(item):
                raise _type_error(f"{full}[{index}]", context, type_name(item), "object-array")
            readers.append(ConfigReader(item, context, None, f"{full}[{index}]"))
        return readers

    # -- typed values --------------------------------------------------------------------

    def _typed(self, key: str, check: Any, wanted: str) -> tuple[Any, str]:
        value, context = self._read(key)
        if value is _MISSING or value is None:
            return None, context
        if not check(value):
            raise _type_error(self._full_key(key), context, type_name(value), wanted)
        return value, context

    def get_number(self, key: str) -> float | int:
        value = self.get_optional_number(key)
        if value is None:
            raise _missing_error(self._full_key(key), self._context)
        return value

    def get_optional_number(self, key: str) -> float | int | None:
        def check(v: Any) -> bool:
            return (isinstance(v, int | float) and not isinstance(v, bool)) or isinstance(v, str)

        value, _ = self._typed(key, check, "number")
        if value is None or not isinstance(value, str):
            return value
        number = _js_number(value)
        if number is None:
            raise _convert_error(self._full_key(key), self._context, "number")
        return number

    def get_boolean(self, key: str) -> bool:
        value = self.get_optional_boolean(key)
        if value is None:
            raise _missing_error(self._full_key(key), self._context)
        return value

    def get_optional_boolean(self, key: str) -> bool | None:
        value, _ = self._typed(key, lambda v: isinstance(v, bool | int | float | str), "boolean")
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip()
        if TRUE_TEXT.fullmatch(text):
            return True
        if FALSE_TEXT.fullmatch(text):
            return False
        raise _convert_error(self._full_key(key), self._context, "boolean")

    def get_string(self, key: str) -> str:
        value = self.get_optional_string(key)
        if value is None:
            raise _missing_error(self._full_key(key), self._context)
        return value

    def get_optional_string(self, key: str) -> str | None:
        value, _ = self._typed(key, lambda v: isinstance(v, str) and v != "", "string")
        return value

    def get_string_array(self, key: str) -> list[str]:
        value = self.get_optional_string_array(key)
        if value is None:
            raise _missing_error(self._full_key(key), self._context)
        return value

    def get_optional_string_array(self, key: str) -> list[str] | None:
        value, context = self._read(key)
        if value is _MISSING or value is None:
            return None
        full = self._full_key(key)
        if not isinstance(value, list):
            raise _type_error(full, context, type_name(value), "string-array")
        for index, item in enumerate(value):
            if not isinstance(item, str) or item == "":
                raise _type_error(f"{full}[{index}]", context, type_name(item), "string-array")
        return list(value)


Config = ConfigReader


def _js_number(text: str) -> float | int | None:
    """``Number(text)`` as JavaScript reads it, or None when that is not finite."""
    stripped = text.strip()
    if stripped == "":
        return 0
    try:
        if re.fullmatch(r"[-+]?\d+", stripped):
            return int(stripped)
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", stripped):
            return int(stripped, 16)
        if re.fullmatch(r"0[oO][0-7]+", stripped):
            return int(stripped, 8)
        if re.fullmatch(r"0[bB][01]+", stripped):
            return int(stripped, 2)
        number = float(stripped)
    except ValueError:
        return None
    if not math.isfinite(number) or stripped.lower() in ("nan", "inf", "-inf", "+inf", "infinity"):
        return None
    return (
        int(number)
        if number.is_integer() and "." not in stripped and "e" not in stripped.lower()
        else number
    )
