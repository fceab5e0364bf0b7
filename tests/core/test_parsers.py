"""The JSON parser: orjson for UTF-8 bodies, DRF's own parser for everything orjson refuses."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

from backstage_core.http.parsers import JSONParser


def both(body: bytes, encoding: str = "utf-8") -> tuple[Any, Any]:
    """What this parser and DRF's parse ``body`` to (or the message each raises)."""
    results = []
    for parser in (JSONParser(), DRFJSONParser()):
        try:
            results.append(parser.parse(io.BytesIO(body), None, {"encoding": encoding}))
        except ParseError as error:
            results.append(("ParseError", str(error.detail)))
    return results[0], results[1]


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "Load test todo", "entityRef": "component:default/alpha"}',
        '{"title": "caf\u00e9 \u2603 \U0001f600"}'.encode(),
        b'{"title": "escaped \\u00e9 \\ud83d\\ude00"}',
        b'[1, 2.5, -0.0, 1e300, true, false, null, "x"]',
        b'{"a": 1, "a": 2}',
        b'"just a string"',
        b'{"n": 123456789012345678901234567890}',
        b"[18446744073709551615, -9223372036854775808, 1.2345678901234567890123]",
        b'{"title": "half \\ud800 a pair"}',
        b"NaN",
        b'{"x": Infinity}',
        b"{not json",
        b"",
        b'{"title": "x"} trailing',
        b"\xef\xbb\xbf{}",
        b'{"bad": "\xff"}',
    ],
)
def test_parses_as_drf_does(body: bytes) -> None:
    ours, drf = both(body)
    assert ours == drf
    assert type(ours) is type(drf)


def test_a_body_in_another_charset_is_decoded_with_it() -> None:
    body = '{"title": "caf\u00e9"}'.encode("latin-1")
    assert both(body, "latin-1") == ({"title": "caf\u00e9"}, {"title": "caf\u00e9"})


def test_an_unknown_charset_is_a_parse_error() -> None:
    ours, drf = both(b"{}", "no-such-charset")
    assert ours == drf
    assert ours[0] == "ParseError"


class _Parser:
    def __init__(self, media_type: str) -> None:
        self.media_type = media_type


class _Request:
    def __init__(self, content_type: str) -> None:
        self.content_type = content_type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "*/*",
        "application/*",
        "",
    ],
)
@pytest.mark.parametrize(
    "media_types",
    [
        ["application/json"],
        ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
        ["multipart/form-data", "application/json"],
        ["*/*", "application/json"],
        ["application/*", "text/plain"],
        ["application/json; version=2", "application/json"],
        ["text/plain", "application/x-www-form-urlencoded"],
    ],
)
def test_the_parser_chosen_is_drfs_choice(content_type: str, media_types: list[str]) -> None:
    from rest_framework.negotiation import DefaultContentNegotiation

    from backstage_core.http.renderers import ContentNegotiation

    parsers = [_Parser(m) for m in media_types]
    request = _Request(content_type)
    expected = DefaultContentNegotiation().select_parser(request, parsers)
    assert ContentNegotiation().select_parser(request, parsers) is expected
