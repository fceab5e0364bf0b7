"""Calls from this backend to other plugins' HTTP APIs (JWKS, userinfo, permission conditions).

    data = request_json("GET", f"{discovery.get_base_url('auth')}/v1/userinfo", token=token)

JSON in, JSON out, a bounded timeout, and a :class:`ResponseError` (keeping the remote status) for
any answer that is not a 2xx. The standard library's client: these are a handful of small calls
that are cached by their callers, so a connection pool would buy nothing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from backstage_core.errors import ResponseError, ServiceUnavailableError

__all__ = ["DEFAULT_TIMEOUT", "request_json"]

DEFAULT_TIMEOUT = 5.0


def request_json(
    method: str,
    url: str,
    *,
    body: Any = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """The JSON answer of ``method url``; ResponseError for a non-2xx status."""
    headers = {"accept": "application/json"}
    data = None
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - discovery gives http(s) URLs
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        raise ResponseError(error.code, parsed, url, error.reason or "") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServiceUnavailableError(f"Request to {url} failed: {reason}") from error
    try:
        return json.loads(raw) if raw else None
    except ValueError as error:
        raise ResponseError(502, raw.decode(errors="replace"), url, "Invalid JSON") from error
