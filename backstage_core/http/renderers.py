"""DRF renderers: compact JSON sent as ``application/json; charset=utf-8``, as Backstage sends it."""

from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

__all__ = ["JSONRenderer"]


class JSONRenderer(DRFJSONRenderer):
    charset = "utf-8"
