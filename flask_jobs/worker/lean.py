"""The lean worker: RQ's jobs, registries and results, in two round trips per job.

RQ's own loop spends about 20 round trips on a job (heartbeats, state writes
and registry updates one command at a time). This one spends two, each one
call of a Lua script (loaded once, run with EVALSHA):

1. start: RQ's execution record, started registry, worker state and job
   fields, and the "started" history event;
2. end: the result, finished registry, job expiry, worker stats and state, and
   the history events of the attempt; then, in the same call, the dequeue of
   the next job: ``rq suspend`` checked, paused queues skipped, the first job
   id of the first non-empty queue moved to RQ's intermediate list (as RQ's
   dequeue does) and its hash returned.

The writes are the ones RQ's own code makes (queued on a redis-py pipeline,
then sent as the script's arguments): redis-py spends far more time packing
and parsing a 20-command pipeline than Redis spends running it.

Everything else is RQ's or our usual worker's: registration, ``rq suspend``,
maintenance (abandoned jobs included), the SIGALRM job timeout of
``SimpleWorker``, warm and cold shutdown, retries and the failure path (a
failed job costs RQ's round trips; it is not the hot path). An idle worker
blocks in BLMOVE (one queue) or BLPOP (several), as RQ's does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from rq.callbacks import execute_success_callback
from rq.executions import Execution
from rq.job import JobStatus
from rq.job import Retry as RQRetry
from rq.rate_limit import release_slot
from rq.results import Result
from rq.timeouts import JobTimeoutException
from rq.utils import now, utcformat
from rq.worker import SimpleWorker, WorkerStatus

from ..errors import JobStopped
from ..jobs.flask_job import FlaskJob
from ..keys import intermediate_key, queue_key
from .app_context import AppContextWorkerMixin
from .faults import REDIS_DOWN
from .lean_claim import LeanClaimMixin
from .pausing import PAUSED_CHECK
from .reporting import job_started
from .work_script import take_commands

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

__all__ = ["LeanWorker"]

log = logging.getLogger("flask_jobs.worker")


#: Sent to the main thread to stop its job: a signal interrupts a blocking call
#: (``time.sleep``, a socket read), which an exception set from another thread cannot.
STOP_JOB_SIGNAL = signal.SIGRTMIN + 1


class LeanWorker(LeanClaimMixin, AppContextWorkerMixin, SimpleWorker):
    """Runs jobs in the worker process (as ``SimpleWorker``) with RQ's bookkeeping batched."""

    _jobs_max: int | None = None
    _jobs_done = 0
    #: Seconds an idle worker blocks on its queues before it looks around again.
    _jobs_block = PAUSED_CHECK
    #: Whether this worker writes the worker hash's "state" (threaded lanes share one).
    _jobs_owns_state = True
    #: Whether a job's end also claims the next job (not in the threads of a
    #: `ThreadedLeanWorker`, which get their jobs from its main thread).
    _jobs_claims = True
    #: The thread running the current job, for stop-job.
    _jobs_thread: int | None = None
    #: Seconds the last run of each function took (shared by a process's threads).
    _jobs_durations: dict[str, float] | None = None
    _jobs_burst = False
    _jobs_fresh_heartbeat = False

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop around our dequeue and job execution."""
        self._jobs_burst = bool(kwargs.get("burst", args[0] if args else False))
        self._jobs_max = kwargs.get("max_jobs")
        return super().work(*args, **kwargs)

    def teardown(self) -> None:
        """Put back a job claimed ahead that will not run here (stop, or --max-jobs)."""
        if self._jobs_next is not None:
            job, queue = self._jobs_next
            self._jobs_next = None
            worker: Any = self
            with worker.connection.pipeline() as pipe:
                pipe.lrem(intermediate_key(queue.key), 1, job.id)
                pipe.lpush(queue.key, job.id)
                pipe.execute()
        super().teardown()

    def check_for_suspension(self, burst: bool) -> None:
        """Checked by the dequeue script instead, in the same round trip."""

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat; skipped once right after a job-end transaction that carried one."""
        if pipeline is None and self._jobs_fresh_heartbeat and not self._jobs_outbox:
            self._jobs_fresh_heartbeat = False
            return
        super().heartbeat(timeout, pipeline)

    # -- one job --------------------------------------------------------------------

    def _jobs_send(self, pipe: Any, *, claim_next: bool = False) -> int:
        """Run the commands RQ's code queued on ``pipe`` as one script call; with
        ``claim_next``, claim the next job in the same round trip.

        redis-py spends far more time packing and parsing a 20-command pipeline than
        Redis spends running it: one EVALSHA of the same commands is one command to
        pack and one reply to parse, and as atomic as RQ's MULTI/EXEC.
        """
        worker: Any = self
        words = take_commands(pipe)
        queues = worker.queues if claim_next else []
        while True:
            try:
                last, found = self._jobs_run(words, queues)
                break
            except REDIS_DOWN as exc:
                # A job's bookkeeping must not die with the worker in a Redis outage: wait
                # it out and send it again (the writes repeat harmlessly), without a claim,
                # which may have gone through before the connection broke.
                self._redis_down("job bookkeeping", exc)
                queues = []
        if found is not None and not isinstance(found, str):
            self._jobs_next = found
        return last

    def _jobs_worker_fields(self, state: str) -> dict[str, str]:
        fields = {"last_heartbeat": utcformat(now())}
        if self._jobs_owns_state:
            fields["state"] = state
        return fields

    def _jobs_start(self, job: Job, attempt: int) -> Execution:
        """RQ's execution record, worker state and job fields, and the "started" event: one
        transaction (RQ's writes, with its repeated heartbeats merged)."""
        worker: Any = self
        state = self._jobs_state()
        ttl = worker.get_heartbeat_ttl(job)
        with worker.connection.pipeline(transaction=False) as pipe:
            execution = Execution.create(job, ttl, pipeline=pipe, worker_name=worker.name)
            worker.executions[execution.id] = execution
            job.prepare_for_execution(worker.name, pipeline=pipe)
            worker._state = WorkerStatus.BUSY
            worker.last_heartbeat = job.last_heartbeat
            pipe.hset(worker.key, mapping=self._jobs_worker_fields(WorkerStatus.BUSY))
            pipe.expire(worker.key, ttl)
            pipe.expire(worker.executions_key, ttl)
            pipe.persist(job.key)
            pipe.lrem(intermediate_key(queue_key(job.origin)), 1, job.id)
            if state.history_enabled:
                event = state.events.from_job(job, "started", attempt, pid=os.getpid())
                pipe.xadd(state.history_settings.stream, event)
            self._jobs_send(pipe)
        job_started(job, attempt)
        worker.procline(f"Processing job {job.id} from {job.origin} since {time.time()}")
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job here (`ThreadedLeanWorker` may hand it to a thread instead)."""
        self._jobs_execute(job, queue)

    def _install_signal_handlers(self) -> None:
        """RQ's SIGTERM/SIGINT handlers, and the one that stops this thread's job."""
        base: Any = super()
        base._install_signal_handlers()
        signal.signal(STOP_JOB_SIGNAL, self._jobs_stop_signal)

    def _jobs_stop_signal(self, signum: int, frame: Any) -> None:
        if self._jobs_thread == threading.main_thread().ident:
            raise JobStopped("stopped on request")

    def kill_horse(self, sig: Any = None) -> None:
        """Stop the running job (rq's stop-job command): raise `JobStopped` in it."""
        thread = self._jobs_thread
        if thread is None:
            return
        if thread == threading.main_thread().ident:
            signal.pthread_kill(thread, STOP_JOB_SIGNAL)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread), ctypes.py_object(JobStopped)
            )

    def _jobs_execute(self, job: Job, queue: Queue) -> None:
        """Run one job in the app context; a success ends in a single round trip."""
        worker: Any = self
        attempt = job.attempt if isinstance(job, FlaskJob) else 1
        started = time.monotonic()
        execution = self._jobs_start(job, attempt)
        exc_info: Any = None
        value: Any = None
        self._jobs_performing = True
        self._jobs_thread = threading.get_ident()
        try:
            with self._app().app_context():
                try:
                    timeout = job.timeout or worker.queue_class.DEFAULT_TIMEOUT
                    with worker.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                        value = job.perform()
                    if not isinstance(value, RQRetry):
                        job.ended_at = now()
                        job._result = value
                        job._status = JobStatus.FINISHED
                        execute_success_callback(job, worker.death_penalty_class, value)
                except:  # noqa: E722 - as RQ: whatever a job raises (SystemExit too) fails it
                    exc_info = sys.exc_info()
                if exc_info is not None:
                    worker._finalize_failure(job, queue, execution, exc_info)
                elif isinstance(value, RQRetry):
                    worker._finalize_success(job, queue, execution, value)
        finally:
            self._jobs_thread = None
            self._jobs_performing = False
        if exc_info is not None or isinstance(value, RQRetry):
            self.job_ended(job, attempt, time.monotonic() - started)
            worker.set_state(WorkerStatus.IDLE)
            self._jobs_check_memory()
            return
        seconds = time.monotonic() - started
        if self._jobs_durations is not None:
            self._jobs_durations[job.func_name or ""] = seconds
        self.job_ended(job, attempt, seconds)
        self._jobs_finish(job, queue, execution)

    def _jobs_finish(self, job: Job, queue: Queue, execution: Execution) -> None:
        """RQ's writes for a finished job, the worker's stats and heartbeat, and the
        attempt's history events: one transaction."""
        worker: Any = self
        assert job.started_at is not None and job.ended_at is not None
        result_ttl = job.get_result_ttl(worker.default_result_ttl)
        outbox, self._jobs_outbox = self._jobs_outbox, None
        ended = utcformat(job.ended_at)
        with worker.connection.pipeline(transaction=False) as pipe:
            pipe.hincrby(worker.key, "successful_job_count", 1)
            pipe.hincrbyfloat(
                worker.key,
                "total_working_time",
                (job.ended_at - job.started_at).total_seconds(),
            )
            if result_ttl != 0:
                # RQ's Job._handle_success, without rewriting the whole job hash.
                job._status = JobStatus.FINISHED
                pipe.hset(job.key, mapping={"status": JobStatus.FINISHED, "ended_at": ended})
                Result.create(
                    job,
                    Result.Type.SUCCESSFUL,
                    return_value=job._result,
                    ttl=result_ttl,
                    worker_name=worker.name,
                    pipeline=pipe,
                    execution_id=execution.id,
                    execution_started_at=execution.created_at,
                    execution_ended_at=job.ended_at,
                )
                job.finished_job_registry.add(job, result_ttl, pipe)
            if job.repeats_left is not None and job.repeats_left > 0:
                from rq.repeat import Repeat

                Repeat.schedule(job, queue, pipeline=pipe)
            else:
                job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
                job._status = JobStatus.FINISHED
            worker.cleanup_execution(job, pipeline=pipe, execution=execution)
            # The worker's key got a TTL of the job's timeout + 60 s when the job
            # started, and an idle worker heartbeats every few seconds: no EXPIRE here.
            worker._state = WorkerStatus.IDLE
            worker.last_heartbeat = now()
            pipe.hset(worker.key, mapping=self._jobs_worker_fields(WorkerStatus.IDLE))
            if outbox:
                stream = self._jobs_state().history_settings.stream
                for event in outbox:
                    pipe.xadd(stream, event)
            pipe.exists(job.dependents_key)
            self._jobs_done += 1
            # Claim the next job in this round trip, unless this worker stops after this one.
            stopping = (
                not self._jobs_claims
                or worker._stop_requested
                or (self._jobs_max is not None and self._jobs_done >= self._jobs_max)
                or self._jobs_check_memory()
            )
            has_dependents = self._jobs_send(pipe, claim_next=not stopping)
        self._jobs_fresh_heartbeat = True
        if has_dependents:
            worker._enqueue_dependents_safely(queue, job)
        job.send_webhooks(JobStatus.FINISHED)
        if job.has_rate_limit:
            release_slot(job)
