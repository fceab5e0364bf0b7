"""The root health service: liveness, and readiness from the root lifecycle's state.

``GET /.backstage/health/v1/liveness`` and ``/readiness`` answer from here, unauthenticated.
"""

from __future__ import annotations

from typing import Any

from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["RootHealth", "root_health_factory"]

OK: dict[str, Any] = {"status": "ok"}
NOT_STARTED: dict[str, Any] = {"message": "Backend has not started yet", "status": "error"}
SHUTTING_DOWN: dict[str, Any] = {"message": "Backend is shutting down", "status": "error"}


class RootHealth:
    """Answers liveness (always 200) and readiness (200 only while the backend is up)."""

    def __init__(self, lifecycle: Any) -> None:
        self._lifecycle = lifecycle

    def get_liveness(self) -> tuple[int, dict[str, Any]]:
        return 200, OK

    def get_readiness(self) -> tuple[int, dict[str, Any]]:
        state = self._lifecycle.state
        if state == "up":
            return 200, OK
        return 503, NOT_STARTED if state == "init" else SHUTTING_DOWN


def root_health_factory() -> ServiceFactory:
    async def factory(lifecycle: Any) -> RootHealth:
        return RootHealth(lifecycle)

    return create_service_factory(
        service=core_services.root_health,
        deps={"lifecycle": core_services.root_lifecycle},
        factory=factory,
    )
