"""Periodic jobs: their declarations (``JOBS_SCHEDULE``, ``@jobs.periodic``), the scheduler
loop that enqueues them with one leader among any number of processes, and the control
API (list, pause, resume, run now) the CLI and the dashboard share."""

from .control import ScheduleControl
from .declarations import Schedule, app_schedules, parse_schedule
from .loop import Scheduler

__all__ = ["Schedule", "ScheduleControl", "Scheduler", "app_schedules", "parse_schedule"]
