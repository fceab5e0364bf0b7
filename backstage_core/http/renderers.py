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
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.utils.encoders import JSONEncoder

__all__ = ["ContentNegotiation", "JSONRenderer"]

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
        if format_suffix is None and "html" not in request.META.get("HTTP_ACCEPT", ""):
            query = request._request.GET
            if self.settings.URL_FORMAT_OVERRIDE not in query:
                renderer = renderers[0]
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
