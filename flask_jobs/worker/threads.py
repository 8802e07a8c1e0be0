"""The threads mode: jobs declared `flask_jobs.thread_safe` run in up to ``threads``
threads ("lanes") beside each other; any other job runs alone in the main thread, once
every lane is idle. Each job in a lane runs exactly as in the main thread (its own app
context, scripts and middleware), with a timer for its timeout."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .execution import execute

if TYPE_CHECKING:
    from rq.job import Job

    from .execution import JobsWorker

__all__ = ["Lanes"]

log = logging.getLogger("flask_jobs.worker")


class Lanes:
    """The lane threads of one worker process."""

    def __init__(self, worker: JobsWorker, threads: int) -> None:
        self.worker = worker
        self.threads = threads
        self.busy = 0
        self._done = threading.Condition()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="flask-jobs-lane")

    def reserve(self, safe: bool, stopping: Callable[[], bool]) -> bool:
        """Wait for a free lane (``safe``) or for every lane to be idle; a lane is taken
        for a safe job. False when ``stopping()`` says to stop first."""
        with self._done:
            while self.busy >= (self.threads if safe else 1):
                if stopping():
                    return False
                self._done.wait(0.2)
            if safe:
                self.busy += 1
        return True

    def submit(self, job: Job) -> None:
        """Run ``job`` in the lane `reserve` took."""
        self._pool.submit(self._lane, job)

    def _lane(self, job: Job) -> None:
        try:
            execute(self.worker, job, [])
            self.worker.took(job)
        except BaseException:  # a lane outlives anything but the process
            log.exception("worker %s: error around job %s", self.worker.name, job.id)
        finally:
            with self._done:
                self.busy -= 1
                self._done.notify_all()

    def wait_idle(self) -> None:
        """Wait until no lane runs a job."""
        with self._done:
            while self.busy:
                self._done.wait(0.5)

    def close(self) -> None:
        """Let the running jobs finish, then end the threads."""
        self._pool.shutdown(wait=True)
