"""Signing keys: a private key with its ``kid`` and algorithm, and its public JWK.

    key = SigningKey.generate()                       # ES256, a fresh uuid kid
    token = sign({"typ": ..., "alg": key.alg, "kid": key.kid}, claims, key.private_key)
    jwks = {"keys": [key.public_jwk]}

Public JWKs have Backstage's shape: ``{"kty","x","y","crv","kid","alg"}`` for EC keys.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SUPPORTED_ALGORITHMS", "SigningKey", "load_key_pairs", "public_jwk"]

_CURVES = {"ES256": "SECP256R1", "ES384": "SECP384R1", "ES512": "SECP521R1"}
SUPPORTED_ALGORITHMS = (*_CURVES, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


def public_jwk(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK of a key, with ``kid`` and ``alg``, in Backstage's key order."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    if isinstance(public_key, ec.EllipticCurvePublicKey):
        raw = json.loads(ECAlgorithm.to_jwk(public_key))
        return {
            "kty": "EC",
            "x": raw["x"],
            "y": raw["y"],
            "crv": raw["crv"],
            "kid": kid,
            "alg": alg,
        }
    if isinstance(public_key, rsa.RSAPublicKey):
        raw = json.loads(RSAAlgorithm.to_jwk(public_key))
        return {"kty": "RSA", "n": raw["n"], "e": raw["e"], "kid": kid, "alg": alg}
    raise TypeError(f"Unsupported key type {type(public_key).__name__}")


@dataclass(frozen=True)
class SigningKey:
    """A private key with its id and algorithm; only the public half ever leaves the process."""

    kid: str
    alg: str
    private_key: Any = field(repr=False)
    public_jwk: dict[str, Any]

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if alg in _CURVES:
            private: Any = ec.generate_private_key(getattr(ec, _CURVES[alg])())
        elif alg in SUPPORTED_ALGORITHMS:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(
                f"Unsupported signing algorithm '{alg}', expected one of "
                f"{', '.join(SUPPORTED_ALGORITHMS)}"
            )
        kid = kid or str(uuid.uuid4())
        return cls(kid, alg, private, public_jwk(private.public_key(), kid, alg))

    @classmethod
    def from_pem_files(
        cls, *, kid: str, alg: str, public_key_file: Path, private_key_file: Path | None
    ) -> tuple[dict[str, Any], SigningKey | None]:
        """A public JWK from an SPKI PEM file, and the signing key when a PKCS#8 file is given."""
        from cryptography.hazmat.primitives import serialization

        public = serialization.load_pem_public_key(Path(public_key_file).read_bytes())
        jwk = public_jwk(public, kid, alg)
        if private_key_file is None:
            return jwk, None
        private = serialization.load_pem_private_key(
            Path(private_key_file).read_bytes(), password=None
        )
        return jwk, cls(kid, alg, private, jwk)


def load_key_pairs(
    config: Any, *, no_keys: str, no_private_key: str
) -> tuple[SigningKey, list[dict[str, Any]]]:
    """The key pairs a ``static.keys`` config list names: ``{publicKeyFile, privateKeyFile?, keyId,
    algorithm?}`` each. The first signs, so it needs its private key; every public key is listed."""
    entries = config.get_optional_config_array("static.keys") or []
    if not entries:
        raise ValueError(no_keys)
    signing_key: SigningKey | None = None
    public_keys: list[dict[str, Any]] = []
    for entry in entries:
        private_file = entry.get_optional_string("privateKeyFile")
        jwk, key = SigningKey.from_pem_files(
            kid=entry.get_string("keyId"),
            alg=entry.get_optional_string("algorithm") or "ES256",
            public_key_file=Path(entry.get_string("publicKeyFile")),
            private_key_file=Path(private_file) if private_file else None,
        )
        if signing_key is None:
            if key is None:
                raise ValueError(no_private_key)
            signing_key = key
        public_keys.append(jwk)
    assert signing_key is not None
    return signing_key, public_keys
