"""The permission plugin: ``POST /api/permission/authorize`` for frontends and other backends.

    backend.add("backstage_core.plugins.permission")

Plugins of this backend do not need it (their permissions service asks the policy in-process); it
answers the requests Backstage frontends (``usePermission``) and other backends send.
"""

from backstage_core.plugins.permission.plugin import permission_plugin

default = permission_plugin

__all__ = ["default", "permission_plugin"]
