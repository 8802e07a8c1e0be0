"""``async def`` jobs: one event loop per worker process (in a thread of its own), up to
``JOBS_WORKER_ASYNC_LIMIT`` jobs at a time, each in its own app context (Flask's context
is a context variable: every task has its own). A timeout or a stop-job cancels the
job's task; a coroutine that raises fails only its own job.

The worker's main thread claims as usual and hands each job whose function is a
coroutine function here; the start and end of each run are the same scripts and
middleware as in the other modes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import rq.job
from rq.timeouts import JobTimeoutException

from ..errors import JobSoftTimeout, JobStopped
from .control import COLD, ColdShutdown
from .execution import DEFAULT_TIMEOUT, conclude, start
from .soft import soft_cancel, soft_fired, soft_seconds

if TYPE_CHECKING:
    from rq.job import Job

    from .execution import JobsWorker

__all__ = ["AsyncRunner", "is_async_job"]

log = logging.getLogger("flask_jobs.worker")


def is_async_job(job: Job) -> bool:
    """Whether ``job``'s function is an ``async def`` (False when it cannot be loaded)."""
    try:
        func = job.func
    except Exception:  # the run itself reports the import error
        return False
    # A `@jobs.job` wrapper calls the function it wraps (``fn``).
    return inspect.iscoroutinefunction(getattr(func, "fn", func))


class _NoPenalty:
    """No timer for RQ's success/failure callbacks run on the event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


def _raised(exc: BaseException) -> Any:
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


class AsyncRunner:
    """The event loop of one worker process and the jobs running on it."""

    def __init__(self, worker: JobsWorker, limit: int) -> None:
        self.worker = worker
        self.limit = limit
        self.running = 0
        self._room = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="flask-jobs-asyncio", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def reserve(self, stopping: Any) -> bool:
        """Wait for room for one more job; False when ``stopping()`` says to stop first."""
        with self._room:
            while self.running >= self.limit:
                if stopping():
                    return False
                self._room.wait(0.2)
            self.running += 1
        return True

    def submit(self, job: Job) -> None:
        """Run ``job`` on the loop (room reserved with `reserve`)."""
        asyncio.run_coroutine_threadsafe(self._run(job), self.loop)

    def wait_idle(self) -> None:
        """Wait until no job runs on the loop."""
        with self._room:
            while self.running:
                self._room.wait(0.2)

    def cancel_all(self) -> None:
        """Cancel every running job (a cold shutdown)."""
        for _, task in list(self.worker.control.tasks.values()):
            self.loop.call_soon_threadsafe(task.cancel)

    def close(self) -> None:
        """Wait for the running jobs, then stop the loop and its thread."""
        self.wait_idle()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    async def _run(self, job: Job) -> None:
        try:
            await self._job(job)
        except BaseException:  # the loop outlives anything a job does
            log.exception("worker %s: error around async job %s", self.worker.name, job.id)
        finally:
            with self._room:
                self.running -= 1
                self._room.notify_all()

    async def _job(self, job: Job) -> None:
        worker = self.worker
        job._jobs_attempt = getattr(job, "attempt", 1)  # type: ignore[attr-defined]
        clock = time.monotonic()
        with worker.app.app_context():
            run = start(worker, job)
            task = asyncio.current_task()
            assert task is not None
            worker.control.tasks[job.id] = (self.loop, task)
            # RQ's get_current_job() (and so set_progress) reads this context variable.
            token = rq.job._current_job.set(job)
            value: Any = None
            exc_info: Any = None
            timeout = job.timeout or DEFAULT_TIMEOUT
            soft = None
            try:
                inner = asyncio.ensure_future(_call(job))
                soft = soft_cancel(job, inner)
                value = await asyncio.wait_for(inner, timeout if timeout > 0 else None)
            except TimeoutError:
                exc_info = _raised(
                    JobTimeoutException(f"Task exceeded maximum timeout value ({timeout} seconds)")
                )
            except asyncio.CancelledError:
                stopped = job.id in worker.control.stopping
                if stopped or worker.control.cold or not soft_fired(soft):
                    exc_info = _raised(
                        JobStopped("stopped on request") if stopped else ColdShutdown(COLD)
                    )
                else:  # its soft time limit cancelled it, and it did not catch that
                    exc_info = _raised(
                        JobSoftTimeout(f"past its soft_timeout of {soft_seconds(job)} s")
                    )
            except BaseException:  # as RQ: whatever a job raises fails it
                exc_info = sys.exc_info()
            finally:
                if soft is not None:
                    soft.cancel()
                rq.job._current_job.reset(token)
                worker.control.tasks.pop(job.id, None)
            conclude(worker, job, run, value, exc_info, _NoPenalty, [], clock)


async def _call(job: Job) -> Any:
    """The job's coroutine; a step of a workflow first takes the results it is given, and
    when it fails for good cancels the steps that can no longer run (as `FlaskJob.perform`
    does for a function)."""
    step = bool(getattr(job, "is_step", False))
    if step:
        job.take_step_inputs()  # type: ignore[attr-defined]
    try:
        return await job.func(*job.args, **job.kwargs)
    except BaseException as exc:
        if step:
            job.step_failed(exc)  # type: ignore[attr-defined]
        raise
