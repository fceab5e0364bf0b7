"""The discovery service: internal and external base URLs, and discovery.endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from backstage_core.config.reader import ConfigReader
from backstage_core.services.discovery import HostDiscovery


def discovery(**backend: Any) -> HostDiscovery:
    extra = backend.pop("discovery", None)
    data: dict[str, Any] = {"backend": {"baseUrl": "https://backstage.example.com/", **backend}}
    if extra:
        data["discovery"] = extra
    return HostDiscovery(ConfigReader(data))


@pytest.mark.parametrize(
    ("listen", "internal"),
    [
        (None, "http://localhost:7007/api/catalog"),
        ({"port": 8080}, "http://localhost:8080/api/catalog"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000/api/catalog"),
        ({"host": "::", "port": 7007}, "http://localhost:7007/api/catalog"),
        ({"host": "::1", "port": 7007}, "http://[::1]:7007/api/catalog"),
        ("8081", "http://localhost:8081/api/catalog"),
    ],
)
def test_internal_urls_follow_backend_listen(listen: Any, internal: str) -> None:
    found = discovery(**({"listen": listen} if listen is not None else {}))
    assert found.get_base_url("catalog") == internal
    assert found.get_external_base_url("catalog") == "https://backstage.example.com/api/catalog"


def test_https_makes_internal_urls_https() -> None:
    assert discovery(https=True).get_base_url("x") == "https://localhost:7007/api/x"


def test_endpoints_override_chosen_plugins() -> None:
    found = discovery(
        discovery={
            "endpoints": [
                {
                    "target": "https://internal.example.com/api/{{pluginId}}",
                    "plugins": ["catalog", "search"],
                },
                {
                    "target": {"internal": "http://scaffolder:7007/api/{{ pluginId }}"},
                    "plugins": ["scaffolder"],
                },
                {"target": "https://fallback.example.com/{{pluginId}}", "plugins": ["*"]},
            ]
        }
    )
    assert found.get_base_url("catalog") == "https://internal.example.com/api/catalog"
    assert found.get_external_base_url("search") == "https://internal.example.com/api/search"
    assert found.get_base_url("scaffolder") == "http://scaffolder:7007/api/scaffolder"
    assert found.get_external_base_url("scaffolder") == "https://fallback.example.com/scaffolder"
    assert found.get_base_url("other") == "https://fallback.example.com/other"


def test_a_bad_listen_address_is_explained() -> None:
    with pytest.raises(
        ValueError, match="^Unable to parse listen address a:b:c, expected <port> or <host>:<port>$"
    ):
        discovery(listen="a:b:c")


def test_plugins_get_discovery_from_the_backend(test_backend_factory: Any) -> None:
    from backstage_core import core_services

    backend = test_backend_factory()
    found = backend.get_service(core_services.discovery, "todo")
    assert found.get_base_url("todo") == f"http://127.0.0.1:{backend.port}/api/todo"
    assert found.get_external_base_url("todo") == f"http://localhost:{backend.port}/api/todo"
