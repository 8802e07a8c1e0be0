"""Threads for I/O-bound jobs: one lean worker process running several jobs at a time.

With ``JOBS_WORKER_THREADS = N`` (N > 1) the lean worker's main thread claims
jobs as usual and hands each job declared `flask_jobs.thread_safe` to one of N
threads (or, when that function's last run took under `INLINE_SECONDS`, runs
it itself: handing a no-op to a thread costs more than running it); it runs
any other job itself, alone: it waits until the threads are idle, and hands
nothing out meanwhile. An app that declares nothing runs as with one thread.

What holds, and how:
- one RQ worker per process: the threads run under the main thread's worker
  name, each job with its own RQ execution, so ``rq info`` and the dashboard
  list every running job (the worker's "state" is the main thread's);
- app context per job (Flask's contexts are per thread), history, retries:
  the same code as the main thread's;
- timeouts: a job run by the main thread gets SIGALRM, as in RQ's
  ``SimpleWorker``; a thread-safe job in a thread gets RQ's timer, which raises
  in the job's thread the next time it runs Python code (as Dramatiq's time
  limit does): a blocking C call (a socket read without a timeout) outlives it;
- warm shutdown (SIGTERM): every running job finishes, a job claimed but not
  started goes back to the front of its queue; cold shutdown (a second SIGTERM
  a second later): every running job fails, as in ``SimpleWorker``;
- stop-job (``rq``'s command, the dashboard): raises in the job's thread.
"""

from __future__ import annotations

import ctypes
import logging
import queue as queues
import threading
from typing import TYPE_CHECKING, Any

from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from ..jobs.thread_safety import is_thread_safe
from .lean import LeanWorker

if TYPE_CHECKING:
    from types import FrameType

    from rq import Queue
    from rq.job import Job

__all__ = ["LaneWorker", "ThreadedLeanWorker"]

log = logging.getLogger("flask_jobs.worker")

#: A thread-safe function whose last run took less than this runs in the main thread.
INLINE_SECONDS = 0.002


class LaneWorker(LeanWorker):
    """One thread of a `ThreadedLeanWorker`: runs the jobs it is handed, under the main
    thread's worker name; timeouts by timer; claims nothing itself."""

    death_penalty_class = TimerDeathPenalty
    run_recorder = False
    _jobs_owns_state = False
    _jobs_claims = False

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Kept here only: the worker hash's state is the main thread's."""
        self._state = state

    def run_lane(self, inbox: queues.SimpleQueue[Any], done: threading.Condition) -> None:
        """Run handed jobs until handed None."""
        while True:
            item = inbox.get()
            if item is None:
                return
            job, queue = item
            try:
                self._jobs_execute(job, queue)
                if self._jobs_outbox:  # a failure's events: not in a job-end call
                    self.heartbeat()
            except BaseException:  # a lane must outlive a bookkeeping error
                log.exception("worker %s: error around job %s", self.name, job.id)
            finally:
                with done:
                    self._lane_busy = False
                    done.notify_all()

    _lane_busy = False


class ThreadedLeanWorker(LeanWorker):
    """The main thread: claims jobs, hands thread-safe ones to its lanes, runs the rest."""

    threads = 8

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop in this thread, with ``threads - 1`` lanes beside it."""
        self._lanes: list[tuple[LaneWorker, queues.SimpleQueue[Any], threading.Thread]] = []
        self._done = threading.Condition()
        self._handed = 0
        self._jobs_durations = {}
        worked = super().work(*args, **kwargs)
        return worked or self._handed > 0

    def _install_signal_handlers(self) -> None:
        """RQ's handlers, then the lanes (after the recorder and scheduler forks)."""
        base: Any = super()
        base._install_signal_handlers()
        worker: Any = self
        for index in range(1, self.threads + 1):
            lane = LaneWorker(
                worker.queues,
                name=worker.name,
                connection=worker.connection,
                default_result_ttl=worker.default_result_ttl,
                job_class=worker.job_class,
                serializer=worker.serializer,
            )
            lane.flask_app = self.flask_app
            lane._jobs_durations = self._jobs_durations
            inbox: queues.SimpleQueue[Any] = queues.SimpleQueue()
            thread = threading.Thread(
                target=lane.run_lane,
                args=(inbox, self._done),
                name=f"flask-jobs-lane-{index}",
                daemon=True,
            )
            self._lanes.append((lane, inbox, thread))
            thread.start()

    def _wait_lanes(self, *, all_idle: bool) -> tuple[LaneWorker, queues.SimpleQueue[Any]] | None:
        """A free lane (or, with ``all_idle``, None once every lane is idle); raises
        `StopRequested` when a stop comes first."""
        worker: Any = self
        with self._done:
            while True:
                free = [(lane, inbox) for lane, inbox, _ in self._lanes if not lane._lane_busy]
                if all_idle and len(free) == len(self._lanes):
                    return None
                if not all_idle and free:
                    return free[0]
                if worker._stop_requested:
                    raise StopRequested
                self._done.wait(0.5)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Hand a thread-safe job to a free lane; run any other job here, alone."""
        worker: Any = self
        # Busy, as far as signals go: a SIGTERM now sets the stop flag (checked while
        # waiting for a lane) instead of raising wherever this thread happens to be.
        worker._state = WorkerStatus.BUSY
        try:
            safe = is_thread_safe(job) and self._lanes
            last = INLINE_SECONDS
            if safe:  # a job whose data cannot be read is not safe, and fails when it runs
                last = (self._jobs_durations or {}).get(job.func_name or "", INLINE_SECONDS)
            if safe and last >= INLINE_SECONDS:
                found = self._wait_lanes(all_idle=False)
                assert found is not None
                lane, inbox = found
                with self._done:
                    lane._lane_busy = True
                inbox.put((job, queue))
                self._handed += 1
                self._jobs_fresh_heartbeat = True  # the lane's start call carries one
                worker._state = WorkerStatus.IDLE
                self._jobs_check_memory()  # the lanes' earlier jobs grew this process too
                return
            if not safe:
                self._wait_lanes(all_idle=True)
        except StopRequested:
            self._jobs_next = (job, queue)  # teardown puts it back
            worker._state = WorkerStatus.IDLE
            raise
        self._jobs_execute(job, queue)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """As the lean worker's; a burst ends only once the lanes are idle too (their
        jobs may have enqueued dependents)."""
        while True:
            found = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            if found is not None or timeout is not None or not self._lanes:
                return found
            if all(not lane._lane_busy for lane, _, _ in self._lanes):
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            self._wait_lanes(all_idle=True)

    def handle_payload(self, message: Any) -> None:
        """RQ's commands; stop-job reaches the lane that runs the job."""
        from rq.command import parse_payload

        payload = parse_payload(message)
        if payload.get("command") == "stop-job":
            for lane, _, _ in self._lanes:
                # its own executions (get_current_job_id() falls back to the shared name's)
                running = {execution.job_id for execution in lane.executions.values()}
                if payload.get("job_id") in running:
                    lane._stopped_job_id = payload["job_id"]
                    lane.kill_horse()
                    return
        base: Any = super()
        base.handle_payload(message)

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Cold shutdown: the running jobs of every lane fail, as a job of this thread does."""
        worker: Any = self
        requested = worker._shutdown_requested_date
        if requested is not None and _seconds_since(requested) < 1:
            return  # RQ ignores a repeat within 1 s (one Ctrl-C reaching two processes)
        for lane, _, thread in self._lanes:
            if lane._lane_busy and thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)
                )
        if self._jobs_thread is not None:  # a job of this thread: RQ's cold shutdown
            base: Any = super()
            base.request_force_stop(signum, frame)

    def teardown(self) -> None:
        """Let every lane finish its job, then RQ's teardown."""
        for _, inbox, _ in self._lanes:
            inbox.put(None)
        for _, _, thread in self._lanes:
            while thread.is_alive():
                thread.join(0.5)
        super().teardown()


def _seconds_since(moment: Any) -> float:
    from rq.utils import now

    return float((now() - moment).total_seconds())
