"""The ``flask jobs`` command group, registered by ``init_app``: one module per command family."""

from __future__ import annotations

from .common import JobsGroup
from .config import config_command
from .history import history_group
from .jobs import (
    cancel_command,
    enqueue_command,
    purge_command,
    requeue_command,
    run_now_command,
    stop_command,
)
from .outbox import outbox_group
from .queue import queue_group
from .schedule import schedule_group
from .status import status_command
from .worker import embedded_command, scheduler_command, worker_command

__all__ = ["jobs_cli"]

jobs_cli = JobsGroup("jobs", help="Run workers and manage background jobs (flask-jobs).")
for _command in (
    worker_command,
    scheduler_command,
    status_command,
    enqueue_command,
    requeue_command,
    run_now_command,
    cancel_command,
    stop_command,
    purge_command,
    embedded_command,
    config_command,
    history_group,
    schedule_group,
    queue_group,
    outbox_group,
):
    jobs_cli.add_command(_command)
