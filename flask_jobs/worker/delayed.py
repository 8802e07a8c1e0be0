"""Delayed jobs: RQ's scheduler for jobs due later, started by each worker, dying with it."""

from __future__ import annotations

import os
import time
from typing import Any

from rq.scheduler import RQScheduler

__all__ = ["DelayedJobScheduler", "DelayedJobsMixin"]


class DelayedJobScheduler(RQScheduler):
    """RQ's mover of due delayed jobs, which also stops when its worker is gone.

    RQ's own keeps running (and holding its queue locks) after its worker is
    killed with SIGKILL, so no new worker could take over delayed jobs.
    """

    def work(self) -> None:
        """Move due jobs every ``interval`` seconds until asked to stop or orphaned."""
        this: Any = self  # RQScheduler is untyped
        parent = os.getppid()
        this._install_signal_handlers()
        this.register_birth()
        while True:
            if this._stop_requested or os.getppid() != parent:
                this.stop()
                break
            if this.should_reacquire_locks:
                this.acquire_locks()
            this.heartbeat()
            this.enqueue_scheduled_jobs()
            time.sleep(this.interval)


class DelayedJobsMixin:
    """An RQ worker mixin: run `DelayedJobScheduler` instead of RQ's own."""

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = "%H:%M:%S",
        log_format: str = "%(asctime)s %(message)s",
    ) -> None:
        """Start RQ's delayed-job scheduler, as RQ does, but one that dies with this worker."""
        worker: Any = self
        scheduler: Any = DelayedJobScheduler(
            worker.queues,
            connection=worker.connection,
            logging_level=logging_level if logging_level is not None else worker.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=worker.serializer,
        )
        worker.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        if burst:
            try:
                scheduler.register_birth()
                scheduler.enqueue_scheduled_jobs()
            finally:
                scheduler.release_locks()
                scheduler.register_death()
        else:
            scheduler.start()
