"""JWT plumbing shared by the token handlers: token types, unverified peeks, and signing.

    header, payload = peek(token)              # no verification: only to pick a handler
    token = sign(header, payload, private_key)  # header and payload serialised in the given order

Tokens are signed here rather than with ``jwt.encode`` because Backstage's limited user tokens are
rebuilt from a signature over an exact byte string (``{"typ":..,"alg":..,"kid":..}`` and
``{"sub":..,"iat":..,"exp":..}``, compact, in that order), which PyJWT's sorted headers would break.
Verification is PyJWT's.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from backstage_core.errors import AuthenticationError

__all__ = [
    "LIMITED_USER_TYP",
    "MAX_TOKEN_LENGTH",
    "PLUGIN_TYP",
    "USER_AUDIENCE",
    "USER_TYP",
    "b64url_decode",
    "b64url_encode",
    "check_issued_at",
    "compact_json",
    "expiry_of",
    "peek",
    "sign",
    "typ_matches",
]

USER_TYP = "vnd.backstage.user"
LIMITED_USER_TYP = "vnd.backstage.limited-user"
PLUGIN_TYP = "vnd.backstage.plugin"
USER_AUDIENCE = "backstage"

#: Longer tokens are refused before any parsing. The auth plugin never issues a user token over
#: 32 KiB (Backstage's own limit); the margin is for external tokens carrying many claims.
MAX_TOKEN_LENGTH = 40 * 1024

#: How far in the future ``iat`` may be: other hosts' clocks run a little ahead.
CLOCK_SKEW_SECONDS = 30


def _algorithm(name: str) -> Any:
    from jwt.algorithms import get_default_algorithms  # loads cryptography: only when signing

    return get_default_algorithms()[name]


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url or standard base64, padded or not (as Node's ``Buffer.from``)."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)


def compact_json(data: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it: compact, keys in order, UTF-8 as is."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A token's header and payload, unverified; ValueError when it is not a JWT at all."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"malformed token: {error}") from error
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("malformed token: header and payload must be objects")
    return header, payload


def typ_matches(actual: Any, expected: str) -> bool:
    """``typ`` compared as jose does: any case, with an optional ``application/`` prefix."""
    if not isinstance(actual, str):
        return False
    value = actual.lower()
    if value.startswith("application/"):
        value = value[len("application/") :]
    return value == expected.lower()


def sign(header: dict[str, Any], payload: dict[str, Any], key: Any) -> str:
    """A compact JWS of ``payload`` with ``header`` (which names the ``alg``), signed by ``key``."""
    algorithm = _algorithm(header["alg"])
    signing_input = (
        f"{b64url_encode(compact_json(header).encode())}."
        f"{b64url_encode(compact_json(payload).encode())}"
    )
    signature = algorithm.sign(signing_input.encode("ascii"), algorithm.prepare_key(key))
    return f"{signing_input}.{b64url_encode(signature)}"


def check_issued_at(payload: dict[str, Any]) -> None:
    """``iat`` must be a number not in the future (with a little clock skew)."""
    import jwt

    issued_at = payload.get("iat")
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        raise jwt.InvalidIssuedAtError("Issued At claim (iat) must be a number")
    if issued_at > time.time() + CLOCK_SKEW_SECONDS:
        raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")


def expiry_of(token: str) -> float:
    """The ``exp`` of a token (seconds since the epoch); 401 when it has none."""
    try:
        _, payload = peek(token)
    except ValueError as error:
        raise AuthenticationError("User token is missing expiration") from error
    expires = payload.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise AuthenticationError("User token is missing expiration")
    return float(expires)
