"""User tokens: issued by the auth plugin, verified against its JWKS.

A user token has the header ``typ: vnd.backstage.user`` and the claims ``iss``, ``sub`` (the user
entity ref), ``aud: backstage``, ``iat``, ``exp`` and ``uip``, a signature the auth plugin made
over the matching *limited* user token (``typ: vnd.backstage.limited-user``, claims ``sub``,
``iat`` and ``exp`` only). A limited token is what goes into the ``backstage-auth`` cookie: it
proves who the user is, and nothing else.

Tokens without a ``typ`` but with ``aud: backstage`` (from older auth backends) are user tokens too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backstage_core.auth.jwks import JwksClient
from backstage_core.auth.tokens import (
    LIMITED_USER_TYP,
    USER_AUDIENCE,
    USER_TYP,
    b64url_encode,
    check_issued_at,
    compact_json,
    peek,
    typ_matches,
)
from backstage_core.errors import AuthenticationError

__all__ = ["UserTokenHandler", "VerifiedUser", "create_limited_user_token", "is_limited_user_token"]


@dataclass(frozen=True)
class VerifiedUser:
    """What a verified user (or limited user) token says: who, and until when."""

    user_entity_ref: str
    limited: bool
    expires_at: float


class UserTokenHandler:
    """Verifies user and limited user tokens with the keys of the auth plugin's JWKS."""

    def __init__(self, jwks: JwksClient, logger: Any, issuer: Any = None) -> None:
        self._jwks = jwks
        self._logger = logger
        self._issuer = issuer  # a callable giving the expected ``iss`` of full user tokens

    def verify(self, token: str) -> VerifiedUser | None:
        """The user a token stands for; None when it is not a user token; 401 when it is invalid."""
        try:
            header, payload = peek(token)
        except ValueError:
            return None
        typ = header.get("typ")
        limited = typ_matches(typ, LIMITED_USER_TYP)
        if limited:
            options = {"require": ["iat", "exp", "sub"], "verify_aud": False}
            audience, issuer = None, None
        elif typ_matches(typ, USER_TYP) or (typ is None and payload.get("aud") == USER_AUDIENCE):
            options = {"require": ["iat", "exp", "sub", "aud", "iss"]}
            audience, issuer = USER_AUDIENCE, self._issuer() if self._issuer else None
        else:
            return None
        import jwt

        try:
            key = self._jwks.get_key(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[header.get("alg")],
                audience=audience,
                issuer=issuer,
                options={**options, "verify_iat": False},
            )
            check_issued_at(claims)
        except Exception as error:
            self._logger.warn("Failed to verify incoming user token", error)
            raise AuthenticationError("Failed user token verification") from error
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("No user sub found in token")
        return VerifiedUser(subject, limited, float(claims["exp"]))


def is_limited_user_token(token: str) -> bool:
    try:
        header, _ = peek(token)
    except ValueError:
        return False
    return typ_matches(header.get("typ"), LIMITED_USER_TYP)


def create_limited_user_token(token: str) -> tuple[str, float]:
    """The limited user token of a user token, and when it expires (seconds since the epoch).

    Rebuilt from the user token's ``uip`` claim: the auth plugin's signature over exactly this
    header and payload, so the result verifies against the same JWKS. Nothing is verified here.
    """
    try:
        header, payload = peek(token)
    except ValueError as error:
        raise AuthenticationError("Failed to create limited user token, invalid token") from error
    expires = payload.get("exp")
    expires_at = float(expires) if isinstance(expires, int | float) else math.nan
    typ = header.get("typ")
    if not typ or typ_matches(typ, LIMITED_USER_TYP):
        return token, expires_at
    if not typ_matches(typ, USER_TYP):
        raise AuthenticationError("Failed to create limited user token, invalid token type")
    proof = payload.get("uip")
    if not proof:
        raise AuthenticationError(
            "Failed to create limited user token, missing user identity proof"
        )
    limited_header = {"typ": LIMITED_USER_TYP, "alg": header.get("alg")}
    if header.get("kid"):
        limited_header["kid"] = header["kid"]
    limited_payload = {"sub": payload.get("sub"), "iat": payload.get("iat"), "exp": expires}
    limited = (
        f"{b64url_encode(compact_json(limited_header).encode())}."
        f"{b64url_encode(compact_json(limited_payload).encode())}.{proof}"
    )
    return limited, expires_at
