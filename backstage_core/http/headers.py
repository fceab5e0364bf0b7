"""Security headers, as Backstage sets them with helmet; ``backend.csp`` and ``backend.referrer`` adjust them.

backend:
  csp:
    connect-src: ["'self'", "https://api.example.com"]
    upgrade-insecure-requests: false        # false removes a directive
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_CSP", "csp_directives", "security_headers"]

# helmet 6's default directives, as Backstage adjusts them (script-src allows eval, no form-action).
DEFAULT_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "base-uri": ["'self'"],
    "font-src": ["'self'", "https:", "data:"],
    "frame-ancestors": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "script-src": ["'self'", "'unsafe-eval'"],
    "script-src-attr": ["'none'"],
    "style-src": ["'self'", "https:", "'unsafe-inline'"],
    "upgrade-insecure-requests": [],
}
REFERRER_POLICIES = {
    "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
    "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url", "",
}  # fmt: skip
STATIC_HEADERS = (
    ("Strict-Transport-Security", "max-age=15552000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-DNS-Prefetch-Control", "off"),
    ("X-Download-Options", "noopen"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Permitted-Cross-Domain-Policies", "none"),
    ("X-XSS-Protection", "0"),
)


def _kebab(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", key).replace("_", "-").lower()


def csp_directives(backend: Any) -> dict[str, list[str]]:
    directives = {k: list(v) for k, v in DEFAULT_CSP.items()}
    csp = backend.get_optional_config("csp") if backend is not None else None
    for key in csp.keys() if csp is not None else []:
        name = _kebab(key)
        if csp.get(key) is False:
            directives.pop(name, None)
            continue
        values = csp.get_string_array(key)
        if not re.fullmatch(r"[a-zA-Z0-9-]+", name):
            raise ValueError(f'Content-Security-Policy received an invalid directive name "{name}"')
        if any(";" in v or "," in v for v in values):
            raise ValueError(
                f'Content-Security-Policy received an invalid directive value for "{name}"'
            )
        directives[name] = values
    if "default-src" not in directives:
        raise ValueError(
            "Content-Security-Policy needs a default-src but none was provided. If you really want "
            "to disable it, set it to `contentSecurityPolicy.dangerouslyDisableDefaultSrc`."
        )
    return directives


def _referrer_policy(backend: Any) -> str:
    referrer = backend.get_optional_config("referrer") if backend is not None else None
    if referrer is None:
        return "no-referrer"
    tokens = [t for key in referrer.keys() for t in referrer.get_string_array(key)]
    for token in tokens:
        if token not in REFERRER_POLICIES:
            raise ValueError(f'Referrer-Policy received an unexpected policy token "{token}"')
    return ",".join(tokens)


def security_headers(backend: Any) -> list[tuple[str, str]]:
    """Every security header for every response, from the ``backend`` config section."""
    csp = ";".join(
        f"{name} {' '.join(values)}" if values else name
        for name, values in csp_directives(backend).items()
    )
    return [
        ("Content-Security-Policy", csp),
        ("Referrer-Policy", _referrer_policy(backend)),
        *STATIC_HEADERS,
    ]
