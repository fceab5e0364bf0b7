"""Helpers for DRF views of plugin APIs."""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.views import APIView

__all__ = ["PluginRequest", "ViewHeadersMixin"]


class _FromDjangoRequest:
    """An attribute of the Django request a DRF ``Request`` wraps, read from it straight away."""

    __slots__ = ("name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, request: Any, owner: type | None = None) -> Any:
        if request is None:
            return self
        return getattr(request._request, self.name)


class PluginRequest(Request):
    """DRF's ``Request``, reading what requests commonly read of the Django request it wraps
    (``method``, ``META``, ``body``, ...) without first failing to find it.

    DRF hands these over in ``Request.__getattr__``, which Python calls only once its own lookup
    has failed and made an ``AttributeError`` with its message: 5.7 K instructions a read, and a
    create reads them five times (3 % of its instructions). Here they are descriptors on the
    class. They do not define ``__set__``, so a value set on a request itself still comes first,
    as it did before.
    """

    method = _FromDjangoRequest()
    META = _FromDjangoRequest()
    body = _FromDjangoRequest()
    path = _FromDjangoRequest()
    path_info = _FromDjangoRequest()
    headers = _FromDjangoRequest()
    COOKIES = _FromDjangoRequest()
    GET = _FromDjangoRequest()
    build_absolute_uri = _FromDjangoRequest()
    get_full_path = _FromDjangoRequest()


@functools.lru_cache(maxsize=256)
def _view_header_entries(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Any], ...]:
    """What DRF's ``finalize_response`` adds for a view's ``headers`` to a response that has
    none of them (and no ``Vary``), as Django's ``ResponseHeaders`` stores it (lowercase name ->
    (name, value)): worked out by DRF itself, on a blank response."""
    blank = HttpResponse()
    before = dict(blank.headers._store)
    view = APIView()
    view.headers = dict(headers)
    APIView.finalize_response(view, None, blank)
    return tuple((key, entry) for key, entry in blank.headers._store.items() if key not in before)


class ViewHeadersMixin:
    """For DRF views: their response headers (``Allow``, and ``Vary: Accept`` with more than one
    renderer) go onto a plain ``HttpResponse`` (``api_response``'s) already checked and encoded.

    DRF's ``finalize_response`` merges ``Vary`` into the response's and sets each header, checking
    and encoding it, on every response (2 % of a create's instructions). A response that has none
    of these headers gets the entries DRF's own code made once for the same headers; a DRF
    ``Response``, or one that has any of them, goes through DRF.

    Its requests are :class:`PluginRequest` objects: DRF makes a ``Request`` in
    ``APIView.initialize_request`` with no way to choose another class, so the one it made
    becomes one (a subclass that adds nothing to the instance).

    Once a view has answered with a plain ``HttpResponse`` (rendered, so nothing reads the view
    or DRF's request again), the links between them are cut: DRF leaves the view, its bound
    handlers, its ``Request`` and the request's parser context referring to each other, so
    every request's objects waited for the garbage collector, 31 of them a request. They are
    freed at once now, and the collector runs less often over less (3 % of a create's
    instructions). A DRF ``Response``, rendered after the view returns, keeps them.
    """

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        drf_request = super().initialize_request(request, *args, **kwargs)  # type: ignore[misc]
        if type(drf_request) is Request:
            drf_request.__class__ = PluginRequest
        return drf_request

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        if type(response) is HttpResponse:
            drf_request = self.__dict__.get("request")
            if isinstance(drf_request, Request):
                drf_request.parser_context = {}  # it held the view and the request itself
            self.__dict__.clear()
        return response

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        store = getattr(getattr(response, "headers", None), "_store", None)
        if type(response) is HttpResponse and type(store) is dict and "vary" not in store:
            try:
                entries = _view_header_entries(tuple(self.headers.items()))  # type: ignore[attr-defined]
            except TypeError:  # a header value that is not hashable: DRF's way
                entries = None
            if entries is not None and not any(key in store for key, _ in entries):
                store.update(entries)
                return response
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
