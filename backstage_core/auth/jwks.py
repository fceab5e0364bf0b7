"""The public keys of a JWKS endpoint, cached, with Backstage's rules for fetching them again.

    keys = JwksClient(lambda: request_json("GET", url))
    claims = jwt.decode(token, keys.get_key(header), algorithms=[header["alg"]])

Keys are kept for 10 minutes. A token whose key is not in the set (a new ``kid`` after a
rotation) fetches the set again, at most once per 30 s cooldown; within the cooldown up to 10
forced fetches a minute are allowed, so a rotation is picked up at once but a stream of tokens
with made-up ``kid`` values can not turn into a stream of requests. Concurrent misses share one
fetch. Keys are chosen as jose chooses them: ``kid``, ``alg``, ``use``, ``key_ops`` and the curve.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["JwksClient", "NoMatchingKeyError", "algorithm_matches_key"]

CACHE_MAX_AGE = 600.0
COOLDOWN = 30.0
FORCED_RELOAD_LIMIT = 10
FORCED_RELOAD_WINDOW = 60.0

_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class NoMatchingKeyError(Exception):
    """No key in the JWKS matches the token's header."""


def algorithm_matches_key(alg: Any, jwk: dict[str, Any]) -> bool:
    """Whether a JWK can verify a signature made with ``alg`` (jose's local key set rules)."""
    if not isinstance(alg, str):
        return False
    kty = _KTY.get(alg[:2])
    if kty is None or jwk.get("kty") != kty:
        return False
    if jwk.get("alg") is not None and jwk["alg"] != alg:
        return False
    if jwk.get("use") is not None and jwk["use"] != "sig":
        return False
    ops = jwk.get("key_ops")
    if isinstance(ops, list) and "verify" not in ops:
        return False
    curve = _CURVES.get(alg)
    return curve is None or jwk.get("crv") == curve


class JwksClient:
    """The keys behind one JWKS endpoint; ``fetch()`` returns the ``{"keys": [...]}`` document."""

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        cache_max_age: float = CACHE_MAX_AGE,
        cooldown: float = COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._cache_max_age = cache_max_age
        self._cooldown = cooldown
        self._clock = clock
        self._keys: list[tuple[dict[str, Any], Any]] | None = None
        self._fetched_at = 0.0
        self._generation = 0
        self._forced: deque[float] = deque()
        self._lock = threading.Lock()
        self.fetches = 0

    def get_key(self, header: dict[str, Any]) -> Any:
        """The public key for a token with this header; NoMatchingKeyError when there is none."""
        keys, generation = self._keys, self._generation
        if keys is None or self._clock() - self._fetched_at >= self._cache_max_age:
            keys = self._reload(generation, forced=False)
            generation = self._generation
        key = self._select(keys, header)
        if key is not None:
            return key
        keys = self._reload(generation, forced=True)
        key = self._select(keys, header)
        if key is None:
            raise NoMatchingKeyError("no applicable key found in the JSON Web Key Set")
        return key

    @staticmethod
    def _select(keys: list[tuple[dict[str, Any], Any]], header: dict[str, Any]) -> Any:
        alg, kid = header.get("alg"), header.get("kid")
        for jwk, key in keys:
            if kid is not None and jwk.get("kid") != kid:
                continue
            if algorithm_matches_key(alg, jwk):
                return key
        return None

    def _reload(self, seen_generation: int, *, forced: bool) -> list[tuple[dict[str, Any], Any]]:
        with self._lock:
            if self._generation != seen_generation and self._keys is not None:
                return self._keys  # someone fetched while we waited: use theirs
            now = self._clock()
            if forced and self._keys is not None and now - self._fetched_at < self._cooldown:
                while self._forced and now - self._forced[0] >= FORCED_RELOAD_WINDOW:
                    self._forced.popleft()
                if len(self._forced) >= FORCED_RELOAD_LIMIT:
                    return self._keys
                self._forced.append(now)
            document = self._fetch()
            self.fetches += 1
            self._keys = _parse(document)
            self._fetched_at = self._clock()
            self._generation += 1
            return self._keys


def _parse(document: Any) -> list[tuple[dict[str, Any], Any]]:
    from jwt import PyJWK
    from jwt.exceptions import PyJWKError

    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("Invalid jwks.json response, missing keys")
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        try:
            keys.append((jwk, PyJWK.from_dict(jwk).key))
        except (PyJWKError, ValueError, TypeError):
            continue  # a key this process can not use is one it can not match, as in jose
    return keys
