"""Service references and extension points: the typed keys plugins declare as dependencies.

    cache_ref = create_service_ref("example.cache", scope="plugin")
    items = create_extension_point("example.items")

A reference names a service; an implementation comes from a :class:`ServiceFactory` added to the
backend, or from the reference's default factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from backstage_core.wiring.features import ServiceFactory

__all__ = [
    "ExtensionPoint",
    "ServiceRef",
    "ServiceScope",
    "create_extension_point",
    "create_service_ref",
]

T = TypeVar("T")
ServiceScope = Literal["root", "plugin"]
DefaultFactory = Callable[["ServiceRef[Any]"], "ServiceFactory"]


@dataclass(frozen=True, eq=False)
class ServiceRef(Generic[T]):
    """A reference to a service: its id, its scope and how to build it when nobody added a factory."""

    id: str
    scope: ServiceScope = "plugin"
    multiton: bool = False
    default_factory: DefaultFactory | str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"serviceRef{{{self.id}}}"

    __repr__ = __str__

    def load_default_factory(self) -> ServiceFactory | None:
        """The default factory for this ref; a dotted ``module:attribute`` string is imported lazily."""
        default = self.default_factory
        if default is None:
            return None
        if isinstance(default, str):
            module_name, _, attribute = default.partition(":")
            default = getattr(import_module(module_name), attribute)
        from backstage_core.wiring.features import ServiceFactory

        return default if isinstance(default, ServiceFactory) else default(self)


@dataclass(frozen=True, eq=False)
class ExtensionPoint(Generic[T]):
    """A reference to an extension point a plugin offers to its modules."""

    id: str

    def __str__(self) -> str:
        return f"extensionPoint{{{self.id}}}"

    __repr__ = __str__


def create_service_ref(
    id: str,
    *,
    scope: ServiceScope = "plugin",
    multiton: bool = False,
    default_factory: DefaultFactory | str | None = None,
) -> ServiceRef[Any]:
    """Create a reference to a service with the given id and scope ('root' or 'plugin')."""
    if scope not in ("root", "plugin"):
        raise ValueError(f"Invalid service scope '{scope}', must be 'root' or 'plugin'")
    return ServiceRef(id=id, scope=scope, multiton=multiton, default_factory=default_factory)


def create_extension_point(id: str) -> ExtensionPoint[Any]:
    """Create a reference to an extension point."""
    return ExtensionPoint(id=id)
