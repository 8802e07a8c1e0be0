"""Everything a worker process is: our worker loop on RQ's data (serial, threads, async and
fork modes), its Lua scripts, middleware, maintenance and shutdown, the supervisor of
several processes, and the per-job log lines."""

from .build import WORKER_CLASSES, build_worker
from .logs import configure_logging

__all__ = ["WORKER_CLASSES", "build_worker", "configure_logging"]
