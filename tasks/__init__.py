"""Celery tasks: thin glue that loads state, calls sync/ and providers/, and saves the result."""

TASK_MODULES = [
    "tasks.health",
    "tasks.calendar_sync",
    "tasks.maintenance",
    "tasks.channels",
    "tasks.tokens",
    "tasks.first_sync",
    "tasks.reconfigure",
    "tasks.disconnect",
    "tasks.mail",
    "tasks.alerts",
    "tasks.resolution",
    "tasks.calendar_list",
    "tasks.schedule_owner",
    "tasks.overrides",
]
