"""Auth policy paths, matched as Backstage matches them (path-to-regexp prefixes, any case).

``"/"`` and ``"*"`` cover every path; ``"/public"`` covers ``/public``, ``/public/`` and
``/public/x`` but not ``/publicity``; ``":id"`` stands for one segment and ``"*name"`` for the rest.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

__all__ = ["normalize_path", "path_policy_predicate"]

_RESERVED = set("()[]?+!")


def _compile(path: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    depth = 0
    while index < len(path):
        char = path[index]
        if char == "\\" and index + 1 < len(path):
            out.append(re.escape(path[index + 1]))
            index += 2
            continue
        if char in ":*":
            match = re.match(r"[A-Za-z_$][A-Za-z0-9_$]*", path[index + 1 :])
            if not match:
                raise ValueError(
                    f"Missing parameter name at index {index + 1}: {path}; visit "
                    f"https://git.new/pathToRegexpError for info"
                )
            out.append("([^/]+?)" if char == ":" else "(.+)")
            index += 1 + match.end()
            continue
        if char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}":
            if depth == 0:
                raise ValueError(f"Unexpected }} at index {index}: {path}")
            depth -= 1
            out.append(")?")
        elif char in _RESERVED:
            raise ValueError(
                f"Unexpected {char} at index {index}: {path}; visit "
                f"https://git.new/pathToRegexpError for info"
            )
        else:
            out.append(re.escape(char))
        index += 1
    if depth:
        raise ValueError(f"Unterminated {{ in {path}")
    return re.compile(rf"^(?:{''.join(out)})(?:/$)?(?=/|$)", re.IGNORECASE)


def path_policy_predicate(policy_path: str) -> Callable[[str], bool]:
    """A test for request paths (relative to the plugin) that ``policy_path`` covers."""
    if policy_path in ("/", "*"):
        return lambda _path: True
    pattern = _compile(policy_path)
    return lambda path: pattern.match(path) is not None


def normalize_path(path: str) -> str:
    """``path`` with ``.``/``..`` segments resolved and repeated slashes collapsed."""
    if not path:
        return "/"
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized
