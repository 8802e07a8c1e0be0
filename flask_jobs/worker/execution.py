"""One job, start to end: the start script, the call in a fresh app context under its
timeout, and the end: the finish script (with the next claim) on success, or the failure
path (`flask_jobs.worker.failure`); every middleware hook on the way."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from base64 import b64encode
from typing import TYPE_CHECKING, Any, Protocol

from rq.callbacks import execute_failure_callback, execute_success_callback
from rq.defaults import UNSERIALIZABLE_RETURN_VALUE_PAYLOAD
from rq.job import JobStatus
from rq.job import Retry as RQRetry
from rq.queue import Queue
from rq.rate_limit import release_slot
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, now, utcformat

from ..errors import JobStopped
from ..history.events import forget_traceback, formatted_traceback, packed
from ..keys import (
    DEPENDENTS_OWED_KEY,
    dependencies_key,
    dependents_key,
    execution_key,
    executions_key,
    finished_key,
    intermediate_key,
    job_key,
    queue_key,
    results_key,
    started_key,
    worker_executions_key,
    worker_key,
)
from .control import COLD, ColdShutdown
from .deadlines import penalty_for_this_thread
from .failure import Failure, Run, failure
from .scripts import claim_keys, parse_claim
from .soft import soft_limit

if TYPE_CHECKING:
    import threading as _threading

    import redis
    from flask import Flask
    from rq.job import Job

    from .control import Control
    from .middleware import MiddlewareChain
    from .registration import Registration
    from .scripts import Claimed, Scripts


class JobsWorker(Protocol):
    """What running a job needs of the worker loop (`flask_jobs.worker.loop.JobsWorker`)."""

    name: str
    mode: str
    app: Flask
    connection: redis.Redis
    serializer: Any
    result_ttl: int
    stream: str
    stream_maxlen: int
    scripts: Scripts
    control: Control
    middleware: MiddlewareChain
    running: dict[str, Any]
    state_lock: _threading.Lock
    #: The state last written to RQ's worker hash ("busy" is written by a job's start).
    written_state: str
    registration: Registration

    def take_events(self) -> list[dict[str, str]]: ...
    def flush_events(self) -> None: ...
    def call(self, script: Any, keys: list[str], args: list[Any]) -> Any: ...
    def fail(self, written: Failure) -> Any: ...
    def queue(self, name: str) -> Any: ...
    def enqueue_dependents(self, job: Job) -> None: ...
    def took(self, job: Job) -> None: ...


__all__ = [
    "DEFAULT_TIMEOUT",
    "MONITORING_SECONDS",
    "conclude",
    "execute",
    "fail",
    "heartbeat_ttl",
    "start",
]

log = logging.getLogger("flask_jobs.worker")

#: RQ's SimpleWorker's heartbeat TTL for a job without a timeout.
DEFAULT_WORKER_TTL = 420
#: A job's timeout when neither it nor its queue has one (RQ's).
DEFAULT_TIMEOUT = Queue.DEFAULT_TIMEOUT


#: How often the fork mode's parent renews a running child's heartbeat (RQ's
#: ``job_monitoring_interval``): a dead worker's job is found abandoned this long + 60 s on.
MONITORING_SECONDS = 30


def heartbeat_ttl(worker: JobsWorker, job: Job) -> int:
    """The TTL of a run's heartbeat: RQ's SimpleWorker's (the job's timeout + 60 s) when
    the worker runs the job itself; RQ's forking worker's (renewed every
    `MONITORING_SECONDS`) when a child does."""
    if worker.mode == "fork":
        timeout = job.timeout if job.timeout and job.timeout > 0 else MONITORING_SECONDS
        return int(min(timeout, MONITORING_SECONDS)) + 60
    if job.timeout == -1:
        return DEFAULT_WORKER_TTL
    return int(job.timeout or DEFAULT_WORKER_TTL) + 60


def _flat(events: list[dict[str, str]]) -> list[Any]:
    """The events as a script's arguments (see events.lua)."""
    return [len(events), *map(packed, events)]


def _run_keys(worker: JobsWorker, job: Job, run: Run) -> list[str]:
    """The keys of a run both its start and its end write (KEYS 1 to 6 of both scripts)."""
    return [
        job_key(job.id),
        execution_key(job.id, run.execution_id),
        executions_key(job.id),
        started_key(job.origin),
        worker_key(worker.name),
        worker_executions_key(worker.name),
    ]


def start(worker: JobsWorker, job: Job, execution_id: str | None = None) -> Run:
    """Mark ``job`` started (one script call, carrying the "started" events), sent without
    waiting for its reply: the job's end (the finish or fail script, on this thread's
    channel) reads it before writing anything."""
    moment = now()
    job.worker_name = worker.name
    job.started_at = job.last_heartbeat = moment
    job._status = JobStatus.STARTED
    run = Run(job.id, execution_id or uuid.uuid4().hex, moment, job.origin)
    worker.middleware.emit("before_job", worker, job)
    ttl = heartbeat_ttl(worker, job)
    stamp = moment.timestamp()
    with worker.state_lock:
        worker.running[job.id] = run
        state = "" if worker.written_state == "busy" else "busy"
        worker.written_state = "busy"
    keys = [*_run_keys(worker, job, run), intermediate_key(queue_key(job.origin)), worker.stream]
    args = [
        job.id,
        run.execution_id,
        worker.name,
        utcformat(moment),
        repr(stamp),
        int(stamp),
        ttl,
        state,
        "1" if worker.registration.lease(ttl) else "",
        worker.stream_maxlen,
        *_flat(worker.take_events()),
    ]
    worker.call(worker.scripts.start.send, keys, args)
    return run


def _return_value(worker: JobsWorker, value: Any) -> str:
    if value is None:
        return ""
    try:
        data = worker.serializer.dumps(value)
    except Exception:  # as RQ: a result it cannot store is replaced by a marker
        data = worker.serializer.dumps(UNSERIALIZABLE_RETURN_VALUE_PAYLOAD)
    return b64encode(data).decode()


def _worked(worker: JobsWorker, seconds: float) -> str:
    """The seconds of a success for the finish script to add to RQ's counters now, or ""
    when the worker adds them up with its heartbeat (a forked child has no next one)."""
    if worker.mode == "fork":
        return repr(seconds)
    worker.registration.count_success(seconds)
    return ""


def finish(worker: JobsWorker, job: Job, run: Run, value: Any, claim: list[str]) -> Claimed:
    """Write the success of ``job`` and claim the next job from ``claim`` (one call)."""
    assert job.ended_at is not None
    result_ttl = job.get_result_ttl(worker.result_ttl)
    if result_ttl < 0:
        score: Any = "+inf" if result_ttl == -1 else result_ttl
    else:
        score = current_timestamp() + result_ttl
    if worker.control.stop_requested:
        claim = []  # a warm stop came while the job ran: nothing new
    claim_k, claim_a = claim_keys(claim) if claim else ([], [0])
    with worker.state_lock:
        worker.running.pop(job.id, None)
    keys = [
        *_run_keys(worker, job, run),
        results_key(job.id),
        finished_key(job.origin),
        dependents_key(job.id),
        dependencies_key(job.id),
        worker.stream,
        DEPENDENTS_OWED_KEY,
        *claim_k,
    ]
    args = [
        job.id,
        run.execution_id,
        worker.name,
        utcformat(job.ended_at),
        _worked(worker, (job.ended_at - run.started).total_seconds()),
        result_ttl,
        score,
        _return_value(worker, value),
        repr(run.started.timestamp()),
        repr(job.ended_at.timestamp()),
        worker.stream_maxlen,
        "1" if job._dependency_ids else "",
        *_flat(worker.take_events()),
        *claim_a,
    ]
    has_dependents, found = worker.call(worker.scripts.finish, keys, args)
    if has_dependents:
        worker.enqueue_dependents(job)
    if result_ttl == 0:
        job.delete(remove_from_queue=False)
    if job.has_rate_limit:
        release_slot(job)
    return parse_claim(found)


def conclude(
    worker: JobsWorker,
    job: Job,
    run: Run,
    value: Any,
    exc_info: Any,
    penalty: Any,
    claim: list[str],
    clock: float,
) -> tuple[Claimed, Any]:
    """End a run whose call returned ``value`` or raised ``exc_info`` (in its app
    context): finish it (claiming the next job) or fail it; the claim, and the
    exception it failed with (None on success)."""
    job.ended_at = now()
    job._jobs_seconds = time.monotonic() - clock  # type: ignore[attr-defined]
    if exc_info is None and not isinstance(value, RQRetry):
        job._status = JobStatus.FINISHED
        job._result = value
        try:
            execute_success_callback(job, penalty, value)
        except BaseException:
            exc_info = sys.exc_info()
    if exc_info is None and not isinstance(value, RQRetry):
        worker.middleware.emit("after_job", worker, job, value)
        return finish(worker, job, run, value, claim), None
    if exc_info is None:
        exc_info = (ValueError, ValueError("a job returning rq.Retry is not supported"), None)
    fail(worker, job, run, exc_info, penalty)
    return None, exc_info


def execute(
    worker: JobsWorker, job: Job, claim: list[str], execution_id: str | None = None
) -> Claimed:
    """Run ``job`` in a fresh app context; on success, also claim the next job from
    ``claim`` (empty: claim nothing). Never raises but for a cold shutdown."""
    job._jobs_attempt = job.attempt if hasattr(job, "attempt") else 1  # type: ignore[attr-defined]
    clock = time.monotonic()
    penalty = penalty_for_this_thread()
    ident = threading.get_ident()
    with worker.app.app_context():
        run = start(worker, job, execution_id)
        value: Any = None
        exc_info: Any = None
        worker.control.threads[job.id] = ident
        try:
            timeout = job.timeout or DEFAULT_TIMEOUT
            with penalty(timeout, JobTimeoutException, job_id=job.id), soft_limit(job):
                value = job.perform()
        except BaseException:  # as RQ: whatever a job raises (SystemExit too) fails it
            exc_info = sys.exc_info()
        finally:
            worker.control.threads.pop(job.id, None)
        found, exc_info = conclude(worker, job, run, value, exc_info, penalty, claim, clock)
        if exc_info is None:
            return found
    if isinstance(exc_info[1], ColdShutdown) or worker.control.cold:
        raise ColdShutdown(1)
    return None


def fail(
    worker: JobsWorker, job: Job, run: Run, exc_info: Any, penalty: Any, exc_string: str = ""
) -> None:
    """The failure path: RQ's failure callback, the write (retried or not), the hooks.
    ``exc_info`` None: the job's process died without a word (``exc_string`` says how)."""
    stopped = job.id in worker.control.stopping
    worker.control.stopping.discard(job.id)
    job._status = JobStatus.FAILED
    if exc_info is not None:
        stopped = stopped or isinstance(exc_info[1], JobStopped)
        if isinstance(exc_info[1], ColdShutdown):
            exc_info = (ColdShutdown, ColdShutdown(COLD), exc_info[2])
        job._jobs_exc_type = exc_info[0]  # type: ignore[attr-defined]  # for the retry policy
        job._jobs_exc_info = exc_info  # type: ignore[attr-defined]
        try:
            execute_failure_callback(job, penalty, *exc_info)
        except BaseException:
            exc_info = sys.exc_info()
    queue = worker.queue(job.origin)
    with worker.state_lock:
        worker.running.pop(job.id, None)
    try:
        written = failure(
            job,
            queue,
            run,
            worker.name,
            exc_string or formatted_traceback(*exc_info),
            worker.stream,
            stopped=stopped,
        )
    except Exception:
        forget_traceback()
        log.exception("worker %s: could not record the failure of job %s", worker.name, job.id)
        return
    # Before the write, as "after_job" is before the finish: the hooks' history events go
    # out in the same call.
    worker.middleware.emit("on_retry" if written.retried else "on_failure", worker, job, exc_info)
    job._jobs_exc_info = None  # type: ignore[attr-defined]  # no traceback kept alive
    forget_traceback()
    try:
        reply = worker.fail(written)
    except Exception:
        log.exception("worker %s: could not record the failure of job %s", worker.name, job.id)
        return
    if written.releases(reply):
        worker.enqueue_dependents(job)
    if job.has_rate_limit:  # RQ's rule: kept by a run queued again at once, else freed
        release_slot(job)
