"""The todo plugin from Backstage's tutorial: a REST API for todos, as a reusable Django app.

Add it to a backend with ``backend.add("todo")``; this package's ``default`` is the plugin.
"""

from todo.plugin import todo_plugin as default

__all__ = ["default"]
