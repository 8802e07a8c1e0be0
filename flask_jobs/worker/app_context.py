"""What every worker of ours adds to RQ's: each job in a fresh Flask app context, its history
events, its log line and failure hooks, and a history recorder process beside the worker."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask
from rq.job import Job, JobStatus
from rq.utils import now
from rq.worker import SimpleWorker, SpawnWorker, Worker

from ..forking import dispose_db_pools
from ..history.recorder import start_recorder_process, stop_recorder_process
from ..jobs.app import job_app
from ..jobs.flask_job import FlaskJob
from ..outbox import start_relay_process, stop_relay_process
from .delayed import DelayedJobsMixin
from .faults import REDIS_DOWN, FaultsMixin
from .memory import over_limit
from .pausing import QueuePausingMixin
from .reporting import job_ended, job_started, remember_exception
from .stopping import WarmStopMixin

if TYPE_CHECKING:
    from rq import Queue
    from rq.executions import Execution

    from ..state import JobsState

__all__ = [
    "AppContextWorkerMixin",
    "FlaskForkWorker",
    "FlaskSimpleWorker",
    "FlaskSpawnWorker",
]

log = logging.getLogger("flask_jobs.worker")


class AppContextWorkerMixin(FaultsMixin, WarmStopMixin, DelayedJobsMixin, QueuePausingMixin):
    """Runs every job in a fresh ``app.app_context()`` of the app the worker loaded once,
    and reports each attempt to the job history."""

    flask_app: Flask | None = None
    job_class = FlaskJob
    log_result_lifespan = False
    #: Whether this process runs a history recorder process beside it, and with JOBS_OUTBOX an
    #: outbox relay (off in lane threads, and in tests that drive their own).
    run_recorder = True
    _jobs_performing = False
    _jobs_outbox: list[dict[str, str]] | None = None
    #: ``--max-memory``: the most resident memory (MB) this process may keep between jobs.
    max_memory_mb: int | None = None
    #: Whether the worker stopped because it went over ``max_memory_mb`` (to be replaced).
    recycled = False

    def _jobs_state(self) -> JobsState:
        state: JobsState = self._app().extensions["jobs"]
        return state

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop, with a history recorder process (and an outbox relay) beside it."""
        state = self._jobs_state()
        recorder_pid = relay_pid = None
        if state.history_enabled and self.run_recorder:
            recorder_pid = start_recorder_process(self._app(), state, self.name)  # type: ignore[attr-defined]
        if state.config.outbox and self.run_recorder:
            relay_pid = start_relay_process(self._app(), state, self.name)  # type: ignore[attr-defined]
        try:
            worked: bool = super().work(*args, **kwargs)
            return worked
        finally:
            if recorder_pid is not None:
                stop_recorder_process(recorder_pid)
            if relay_pid is not None:
                stop_relay_process(relay_pid)

    def _jobs_check_memory(self) -> bool:
        """After a job: past ``max_memory_mb``, stop after it (as a warm stop) to be replaced."""
        worker: Any = self
        if self.recycled or not over_limit(worker.name, self.max_memory_mb):
            return self.recycled
        self.recycled = True
        worker._stop_requested = True
        return True

    def execute_job(self, job: Job, queue: Queue) -> Any:
        """Run ``job`` (RQ's way for this class), then check the memory limit."""
        try:
            return super().execute_job(job, queue)
        finally:
            self._jobs_check_memory()

    def _emit(self, *events: dict[str, str], later: bool = False) -> None:
        """Send history events now, or (``later``) with the worker's next heartbeat."""
        state = self._jobs_state()
        if not state.history_enabled or not events:
            return
        if later and not getattr(self, "_is_horse", False):
            # The work loop heartbeats right after each job: ride that round trip.
            self._jobs_outbox = [*(self._jobs_outbox or []), *events]
            return
        try:
            with state.connection.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(state.history_settings.stream, event)  # type: ignore[arg-type]
                pipe.execute()
        except redis.RedisError as exc:  # history must never fail a job
            log.warning("could not record %d history event(s): %s", len(events), exc)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat in one round trip (not three), carrying waiting history events."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)  # type: ignore[misc]
            return
        worker: Any = self
        outbox, self._jobs_outbox = self._jobs_outbox, None
        try:
            with worker.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(timeout, pipe)  # type: ignore[misc]
                if outbox:
                    stream = self._jobs_state().history_settings.stream
                    for event in outbox:
                        pipe.xadd(stream, event)
                pipe.execute()
        except REDIS_DOWN as exc:
            # RQ's work loop quits on any error outside its dequeue: the worker would be
            # gone for good after a Redis restart. Keep the events; the dequeue waits it out.
            self._jobs_outbox = [*(outbox or []), *(self._jobs_outbox or [])] or None
            self._redis_down("heartbeat", exc)

    def teardown(self) -> None:
        """Send events still waiting for a heartbeat, then RQ's teardown."""
        if self._jobs_outbox:
            self._emit(*self._jobs_outbox)
            self._jobs_outbox = None
        super().teardown()  # type: ignore[misc]

    def _outcome_events(
        self, job: Job, attempt: int, killed: str | None = None
    ) -> list[dict[str, str]]:
        """Events for how an attempt ended, and for the retry it queued, if any."""
        encoder = self._jobs_state().events
        status = job.get_status(refresh=False)
        exc: dict[str, str] = {}
        if killed is not None:
            exc = {"exc_type": "WorkHorseTerminated", "exc_message": killed, "traceback": killed}
        elif getattr(job, "_jobs_exc_fields", None):
            exc = job._jobs_exc_fields  # type: ignore[attr-defined]
        if status == JobStatus.FINISHED:
            result = encoder.result(getattr(job, "_result", None))
            return [encoder.from_job(job, "finished", attempt, arguments=False, result=result)]
        if status == JobStatus.STOPPED:
            return [encoder.from_job(job, "stopped", attempt, arguments=False, **exc)]
        if status in (JobStatus.SCHEDULED, JobStatus.QUEUED):
            return [
                encoder.from_job(job, "retried", attempt, arguments=False, **exc),
                encoder.from_job(job, "queued", attempt + 1),
            ]
        return [encoder.from_job(job, "failed", attempt, arguments=False, **exc)]

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's bookkeeping before a run, with the "started" history event in its round trip."""
        # The same writes as RQ's BaseWorker.prepare_job_execution (rq 3.0), plus our event.
        worker: Any = self
        state = self._jobs_state()
        with worker.connection.pipeline() as pipeline:
            heartbeat_ttl = worker.get_heartbeat_ttl(job)
            worker.heartbeat(heartbeat_ttl, pipeline=pipeline)
            job.heartbeat(now(), heartbeat_ttl, pipeline=pipeline)
            job.prepare_for_execution(worker.name, pipeline=pipeline)
            pipeline.persist(job.key)
            # RQ moves a job to an intermediate list when it dequeues from one queue,
            # and clears it only for one-queue workers; with queues paused a worker
            # of several may dequeue from one, so always clear (a no-op otherwise).
            queue = worker.queue_class(job.origin, connection=worker.connection)
            pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            if state.history_enabled:
                attempt = job.attempt if isinstance(job, FlaskJob) else 1
                event = state.events.from_job(job, "started", attempt, pid=os.getpid())
                pipeline.xadd(state.history_settings.stream, event)
            pipeline.execute()
        job_started(job, job.attempt if isinstance(job, FlaskJob) else 1)
        worker.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        """RQ's failure handling; when the work horse died (not a raised exception), record it."""
        attempt = job.attempt if isinstance(job, FlaskJob) else 1
        super().handle_job_failure(job, queue, *args, **kwargs)  # type: ignore[misc]
        if not self._jobs_performing:
            reason = str(kwargs.get("exc_string") or "work horse terminated").strip()
            self._emit(*self._outcome_events(job, attempt, killed=reason))
            self._report(job, attempt, None, killed=reason)

    def _report(self, job: Job, attempt: int, seconds: float | None, **kwargs: Any) -> None:
        """Log the outcome and call the ``JOBS_ON_FAILURE`` hooks, inside the app context."""
        app = self._app()
        with app.app_context():
            job_ended(app, job, attempt, seconds, **kwargs)

    def clean_registries(self) -> None:
        """RQ's registry cleanup, recording jobs it finds abandoned by a dead worker."""
        from rq.registry import StartedJobRegistry
        from rq.utils import current_timestamp

        worker: Any = self
        suspects: list[tuple[Any, int]] = []
        for queue in worker.queues:
            registry = StartedJobRegistry(queue=queue, job_class=FlaskJob)
            for job_id in registry.get_expired_job_ids(current_timestamp()):
                try:
                    job: Any = FlaskJob.fetch(
                        job_id, connection=worker.connection, serializer=worker.serializer
                    )
                except Exception:
                    continue
                if job.get_status(refresh=False) == JobStatus.STARTED:
                    suspects.append((job, job.attempt))
        super().clean_registries()  # type: ignore[misc]
        encoder = self._jobs_state().events
        events: list[dict[str, str]] = []
        for job, attempt in suspects:
            try:
                status = job.get_status(refresh=True)
                job.refresh()
            except Exception:
                continue
            if status == JobStatus.STARTED:
                continue  # another worker's maintenance has not got to it yet
            exc = {"exc_type": "AbandonedJobError", "exc_message": "the worker running it died"}
            events.append(encoder.from_job(job, "abandoned", attempt, arguments=True, **exc))
            if status in (JobStatus.SCHEDULED, JobStatus.QUEUED):
                events.append(encoder.from_job(job, "queued", attempt + 1))
        self._emit(*events)

    def _app(self) -> Flask:
        if self.flask_app is None:
            # A spawned work horse starts from nothing: load the app the way `flask` did.
            self.flask_app = job_app()
        return self.flask_app

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """Entry of a forked or spawned work horse: forget the parent's database connections."""
        app = self._app()
        dispose_db_pools(app)
        app.extensions["jobs"].history.dispose()
        super().main_work_horse(job, queue)  # type: ignore[misc]

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run the job inside the app context, then log its outcome."""
        started = time.monotonic()
        attempt = job.attempt if isinstance(job, FlaskJob) else 1
        self._jobs_performing = True
        try:
            with self._app().app_context():
                ok: bool = super().perform_job(job, queue, execution)  # type: ignore[misc]
        finally:
            self._jobs_performing = False
        self.job_ended(job, attempt, time.monotonic() - started)
        return ok

    def job_ended(self, job: Job, attempt: int, seconds: float) -> None:
        """Everything after an attempt ran, for every worker class: history events, log line,
        ``JOBS_ON_FAILURE`` hooks."""
        # The events wait for the worker's next round trip (a heartbeat, or the lean
        # worker's job-end pipeline).
        self._emit(*self._outcome_events(job, attempt), later=True)
        self._report(job, attempt, seconds)

    def handle_exception(self, job: Job, *exc_info: Any) -> Any:
        """Remember the exception type so the retry policy can filter on it."""
        remember_exception(job, exc_info)
        if isinstance(job, FlaskJob) and exc_info:
            job._jobs_exc_type = exc_info[0]
            job._jobs_exc_fields = self._jobs_state().events.exception(exc_info)  # type: ignore[attr-defined]
        return super().handle_exception(job, *exc_info)  # type: ignore[misc]

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        """Log a work horse that died without reporting (killed, out of memory, segfault)."""
        log.warning(
            "job %s %s lost its work horse (exit status %s); it is failed or retried",
            job.id,
            job.func_name,
            ret_val,
        )
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[misc]


class FlaskForkWorker(AppContextWorkerMixin, Worker):
    """RQ's forking worker: each job in a fresh work horse process."""


class FlaskSimpleWorker(AppContextWorkerMixin, SimpleWorker):
    """RQ's simple worker: jobs run in the worker process itself."""


class FlaskSpawnWorker(AppContextWorkerMixin, SpawnWorker):
    """RQ's spawn worker: each job in a freshly spawned interpreter (no fork)."""
