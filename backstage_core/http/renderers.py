"""DRF renderers and content negotiation for plugin APIs.

JSON goes out compact as ``application/json; charset=utf-8``, as Backstage sends it, encoded by
orjson (several times faster than the standard library for a list of a hundred objects; the few
values orjson refuses, such as lone surrogates, fall back to DRF's encoder). A request that does
not ask for HTML gets JSON straight away, whatever else its ``Accept`` says, as Express's
``res.json`` answers; a browser gets DRF's browsable API.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

__all__ = ["JSON_CONTENT_TYPE", "ContentNegotiation", "JSONRenderer", "api_response"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

_default = JSONEncoder().default


class JSONRenderer(DRFJSONRenderer):
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if indent is None:
            try:
                return orjson.dumps(data, default=_default)
            except (TypeError, orjson.JSONEncodeError):
                pass
        return super().render(data, accepted_media_type, renderer_context)


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut to the first renderer (JSON) for non-browser requests."""

    def select_renderer(
        self, request: Any, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        meta = request.META
        if format_suffix is None and "html" not in meta.get("HTTP_ACCEPT", ""):
            # No query string, no ?format= (without building the QueryDict to look).
            if not meta.get("QUERY_STRING") or (
                self.settings.URL_FORMAT_OVERRIDE not in request._request.GET
            ):
                renderer = renderers[0]
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def select_parser(self, request: Any, parsers: list[Any]) -> Any:
        """DRF's choice, without parsing media types when one parser's is the request's exactly
        (``application/json``): plain types before it cannot match one without wildcards."""
        content_type = request.content_type
        if content_type and "*" not in content_type:
            for parser in parsers:
                media_type = parser.media_type
                if media_type == content_type:
                    return parser
                if "*" in media_type or ";" in media_type:
                    break
        return super().select_parser(request, parsers)


_renderer = JSONRenderer()


def api_response(request: Any, data: Any, status: int = 200) -> HttpResponse:
    """``Response(data, status=status)`` from a DRF view, rendered at once when plain JSON was
    negotiated (every client but a browser or ``?format=``).

    DRF renders a ``Response`` after the view returns, as a template response (its renderer
    context, media type and charset worked out again); this builds the same body and headers
    straight away. Anything else, such as the browsable API, gets DRF's ``Response``.
    """
    if (
        type(getattr(request, "accepted_renderer", None)) is JSONRenderer
        and request.accepted_media_type == JSONRenderer.media_type
    ):
        try:  # no indent asked for: what the renderer does, without parsing the media type
            body = b"" if data is None else orjson.dumps(data, default=_default)
        except (TypeError, orjson.JSONEncodeError):
            body = _renderer.render(data, JSONRenderer.media_type, {})
        return HttpResponse(body, status=status, content_type=JSON_CONTENT_TYPE)
    return Response(data, status=status)
