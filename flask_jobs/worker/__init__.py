"""Everything a worker process is: the worker classes (the lean default, its threaded
form, RQ's fork, simple and spawn ones with our app context), how they claim jobs and
survive faults, the supervisor of several processes, and the per-job log lines."""

from .build import WORKER_CLASSES, build_worker
from .logs import configure_logging

__all__ = ["WORKER_CLASSES", "build_worker", "configure_logging"]
