"""The permissions service: may these credentials do this?

    decision, = permissions.authorize(
        [{"permission": todo_item_delete, "resource_ref": todo_id}], credentials=credentials
    )
    decision.result  # AuthorizeResult.ALLOW or DENY

    decision, = permissions.authorize_conditional([{"permission": todo_item_read}], credentials=...)
    # ALLOW, DENY, or CONDITIONAL with conditions to turn into a query

Decided as Backstage decides, in this order:

1. service principals (plugins, external callers) by their access restrictions: allowed unless a
   restriction leaves the permission out; no policy is asked;
2. with ``permission.enabled`` false (the default), everything is allowed;
3. otherwise the policy decides (``permission.policy``, a dotted path, or
   ``permissions_factory(policy=...)``), given the permission and the user with their ownership
   refs. A conditional answer about one resource is settled by the plugin that owns the resource
   type, which loads the resource and applies the conditions: in-process when that plugin runs in
   this backend, else through its ``apply-conditions`` endpoint.

Backstage asks a separate permission backend over HTTP for step 3; here the policy runs in the
calling process, which saves a round trip per check (``backstage_core.plugins.permission`` still
serves ``/api/permission/authorize`` for frontends).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backstage_core.errors import NotAllowedError, ResponseError
from backstage_core.permissions.common import (
    AuthorizeResult,
    Permission,
    PolicyDecision,
    to_decision,
)
from backstage_core.permissions.policy import (
    PermissionPolicy,
    PolicyQuery,
    PolicyQueryUser,
    load_policy,
)
from backstage_core.services.auth import BackstageCredentials, ServicePrincipal
from backstage_core.services.definitions import core_services
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "PermissionEvaluator",
    "PermissionsService",
    "permissions_factory",
    "service_principal_decision",
]

NO_POLICY = (
    "No permission policy is installed: permission.enabled is true, so set permission.policy to "
    "a policy class (for example backstage_core.permissions.AllowAllPolicy to allow everything)"
)

ALLOW = PolicyDecision(AuthorizeResult.ALLOW)
DENY = PolicyDecision(AuthorizeResult.DENY)


def _request(item: Any) -> tuple[Permission, Any]:
    """(permission, resource ref) of a request given as a mapping or an object."""
    if isinstance(item, Mapping):
        permission = item.get("permission")
        ref = item.get("resource_ref", item.get("resourceRef"))
    else:
        permission = getattr(item, "permission", None)
        ref = getattr(item, "resource_ref", None)
    if not isinstance(permission, Permission):
        raise TypeError(f"A permission request needs a Permission, got {permission!r}")
    return permission, ref


def service_principal_decision(
    principal: ServicePrincipal, permission: Permission
) -> PolicyDecision:
    """ALLOW unless the principal's access restrictions leave ``permission`` out."""
    restrictions = principal.access_restrictions or {}
    names = restrictions.get("permissionNames")
    if names and permission.name not in names:
        return DENY
    actions = (restrictions.get("permissionAttributes") or {}).get("action")
    if actions and permission.action not in actions:
        return DENY
    return ALLOW


class PermissionEvaluator:
    """The backend's policy, and the way conditional decisions about resources get settled."""

    def __init__(self, config: Any, local: Any, policy: Any = None) -> None:
        self._config = config
        self._local = local
        self._policy_source = (
            policy if policy is not None else config.get_optional("permission.policy")
        )
        self._policy: PermissionPolicy | None = None
        self._read_enabled()
        if hasattr(config, "subscribe"):
            config.subscribe(self._read_enabled)
        if self.enabled:
            self.policy  # noqa: B018 - fail at start, not at the first request

    def _read_enabled(self) -> None:
        self.enabled = bool(self._config.get_optional_boolean("permission.enabled"))

    @property
    def policy(self) -> PermissionPolicy:
        if self._policy is None:
            if self._policy_source is None:
                raise RuntimeError(NO_POLICY)
            self._policy = load_policy(self._policy_source)
        return self._policy

    def decide(
        self,
        requests: Sequence[tuple[Permission, Any]],
        credentials: BackstageCredentials,
        *,
        user_info: Any,
        auth: Any,
        discovery: Any,
        settle: bool,
    ) -> list[Any]:
        """The policy's decision for each request; with ``settle``, conditional decisions about a
        given resource are applied to it (giving ALLOW/DENY, or a list of them for a list of refs).
        """
        user = None
        if credentials.principal.type == "user":
            user = PolicyQueryUser(credentials, user_info.get_user_info(credentials))
        decisions = [self._ask(permission, user) for permission, _ in requests]
        if not settle:
            return decisions
        pending: dict[tuple[str, str], list[int]] = {}
        for index, ((_, ref), decision) in enumerate(zip(requests, decisions, strict=True)):
            if decision.result is AuthorizeResult.CONDITIONAL and ref is not None:
                pending.setdefault((decision.plugin_id, decision.resource_type), []).append(index)
        results: list[Any] = list(decisions)
        for (plugin_id, resource_type), indexes in pending.items():
            items = [(requests[i][1], decisions[i].conditions) for i in indexes]
            answers = self._apply(plugin_id, resource_type, items, credentials, auth, discovery)
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = (
                    [PolicyDecision(AuthorizeResult(a)) for a in answer]
                    if isinstance(answer, list)
                    else PolicyDecision(AuthorizeResult(answer))
                )
        return results

    def _ask(self, permission: Permission, user: PolicyQueryUser | None) -> PolicyDecision:
        decision = to_decision(self.policy.handle(PolicyQuery(permission), user))
        if decision.result is AuthorizeResult.CONDITIONAL:
            if permission.resource_type is None:
                raise RuntimeError(
                    f"Conditional decision returned from permission policy for non-resource "
                    f"permission {permission.name}"
                )
            if decision.resource_type != permission.resource_type:
                raise RuntimeError(
                    f"Invalid resource conditions returned from permission policy for "
                    f"permission {permission.name}"
                )
        return decision

    def _apply(
        self,
        plugin_id: str,
        resource_type: str,
        items: list[tuple[Any, Any]],
        credentials: BackstageCredentials,
        auth: Any,
        discovery: Any,
    ) -> list[Any]:
        registry = self._local.get(plugin_id, "permissions")
        if registry is not None:
            return registry.apply_conditions(resource_type, items)
        from backstage_core.http.client import request_json

        token = None
        if credentials.principal.type != "none":
            token = auth.get_plugin_request_token(
                on_behalf_of=credentials, target_plugin_id=plugin_id
            ).token
        ids = [str(uuid.uuid4()) for _ in items]
        body = {
            "items": [
                {
                    "id": item_id,
                    "resourceRef": ref,
                    "result": AuthorizeResult.CONDITIONAL.value,
                    "pluginId": plugin_id,
                    "resourceType": resource_type,
                    "conditions": conditions,
                }
                for item_id, (ref, conditions) in zip(ids, items, strict=True)
            ]
        }
        url = f"{discovery.get_base_url(plugin_id)}/.well-known/backstage/permissions/apply-conditions"
        response = request_json("POST", url, body=body, token=token)
        answers = {item.get("id"): item.get("result") for item in (response or {}).get("items", [])}
        if set(answers) != set(ids):
            raise ResponseError(502, response, url, "Items in response do not match request")
        return [answers[item_id] for item_id in ids]


class PermissionsService:
    """A plugin's permissions service."""

    def __init__(
        self, evaluator: PermissionEvaluator, *, auth: Any, user_info: Any, discovery: Any
    ) -> None:
        self._evaluator = evaluator
        self._auth = auth
        self._user_info = user_info
        self._discovery = discovery

    def _credentials(
        self, credentials: BackstageCredentials | None, token: str | None
    ) -> BackstageCredentials:
        if credentials is not None:
            return credentials
        if token:  # the seed's form: authorize([...], token=token)
            return self._auth.authenticate(token)
        return self._auth.get_none_credentials()

    def _decide(
        self, items: Iterable[Any], credentials: BackstageCredentials, *, settle: bool
    ) -> list[Any]:
        requests = [_request(item) for item in items]
        principal = credentials.principal
        if isinstance(principal, ServicePrincipal):
            return [service_principal_decision(principal, p) for p, _ in requests]
        if not self._evaluator.enabled:
            return [ALLOW for _ in requests]
        return self._evaluator.decide(
            requests,
            credentials,
            user_info=self._user_info,
            auth=self._auth,
            discovery=self._discovery,
            settle=settle,
        )

    def decide(self, requests: Iterable[Any], *, credentials: BackstageCredentials) -> list[Any]:
        """Decisions as the permission backend gives them: settled where a resource is named
        (a list of them for a list of refs), conditional where none is."""
        return self._decide(requests, credentials, settle=True)

    def authorize(
        self,
        requests: Iterable[Any],
        *,
        credentials: BackstageCredentials | None = None,
        token: str | None = None,
    ) -> list[PolicyDecision]:
        """ALLOW or DENY for each ``{"permission": ..., "resource_ref": ...}``, in order."""
        decisions = self._decide(requests, self._credentials(credentials, token), settle=True)
        for decision in decisions:
            if (
                isinstance(decision, PolicyDecision)
                and decision.result is AuthorizeResult.CONDITIONAL
            ):
                raise TypeError(
                    "authorize() got a conditional decision for a request without a "
                    "resource_ref; use authorize_conditional() to filter a query instead"
                )
        return decisions

    def authorize_conditional(
        self,
        queries: Iterable[Any],
        *,
        credentials: BackstageCredentials | None = None,
        token: str | None = None,
    ) -> list[PolicyDecision]:
        """ALLOW, DENY or CONDITIONAL (with the conditions) for each ``{"permission": ...}``."""
        return self._decide(queries, self._credentials(credentials, token), settle=False)

    def require(
        self,
        permission: Permission,
        *,
        credentials: BackstageCredentials,
        resource_ref: str | None = None,
    ) -> None:
        """Raise NotAllowedError unless ``permission`` is allowed (for the resource)."""
        (decision,) = self.authorize(
            [{"permission": permission, "resource_ref": resource_ref}], credentials=credentials
        )
        if decision.result is not AuthorizeResult.ALLOW:
            raise NotAllowedError()


def permissions_factory(*, policy: Any = None) -> ServiceFactory:
    """The permissions service; ``policy`` (an instance, class or dotted path) overrides
    ``permission.policy``."""

    async def create_root_context(config: Any, local: Any) -> PermissionEvaluator:
        return PermissionEvaluator(config, local, policy)

    async def factory(
        evaluator: PermissionEvaluator,
        config: Any,
        local: Any,
        auth: Any,
        user_info: Any,
        discovery: Any,
    ) -> PermissionsService:
        return PermissionsService(evaluator, auth=auth, user_info=user_info, discovery=discovery)

    return create_service_factory(
        service=core_services.permissions,
        deps={
            "config": core_services.root_config,
            "local": local_plugins_ref,
            "auth": core_services.auth,
            "user_info": core_services.user_info,
            "discovery": core_services.discovery,
        },
        create_root_context=create_root_context,
        factory=factory,
    )
