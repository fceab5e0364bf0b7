"""The scheduler's parts: schedules, the abort signal, the task table, workers, django-q2 runs.

The service plugins use is ``backstage_core.services.scheduler``.
"""
