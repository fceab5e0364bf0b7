"""``manage.py qcluster``: django-q2's cluster, executing the backend's global task runs.

With ``backend.scheduler.worker: django-q`` the web processes run no global tasks. This process
starts django-q2's workers, then a backend that claims due runs (once across all instances, as
always) and queues each for a worker, which runs it with django-q2's timeout and records the result
(see the django-q2 pages of the admin). SIGTERM or SIGINT stops the cluster, then the backend.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backstage_core.runtime import get_default_backend
from backstage_core.scheduler import runtime

if "django_q" in settings.INSTALLED_APPS:
    from django_q.management.commands.qcluster import Command as Base
else:  # django-q2 is installed as an app only when it runs the tasks
    Base = BaseCommand  # type: ignore[misc,assignment]


class Command(Base):  # type: ignore[misc,valid-type]
    help = "Starts django-q2 workers that run the backend's scheduled tasks."

    def handle(self, *args: Any, **options: Any) -> None:
        if "django_q" not in settings.INSTALLED_APPS:
            raise CommandError(
                "manage.py qcluster runs scheduled tasks when backend.scheduler.worker is "
                "'django-q'; this configuration runs them in the backend (embedded)"
            )
        from django_q.cluster import Cluster

        settings.SECRET_KEY  # noqa: B018 - django-q2 signs its tasks with it
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()  # the workers fork before this process has a backend of its own
        if options.get("run_once", False):
            cluster.stop()
            return
        runtime.set_role("dispatcher")
        backend = get_default_backend()
        backend.start()
        try:
            while cluster.sentinel is not None and cluster.sentinel.is_alive():
                cluster.sentinel.join(0.5)
        finally:
            backend.stop()
