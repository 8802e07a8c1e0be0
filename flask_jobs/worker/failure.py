"""How a run that did not succeed is written: failed, stopped, retried (at once or later,
through RQ's scheduled registry), abandoned by a worker that died, or a job whose hash
cannot be read.

Python decides (the retry policy, the interval, the failed registry's score) and builds
the job's fields as RQ's ``to_dict`` does; one Lua call (``fail.lua``, every key in its
KEYS) writes what RQ 3's ``handle_job_failure``, ``Job.retry``, ``Queue.schedule_job``
and ``Queue._enqueue_job`` write, with the execution's cleanup, the worker's counters and
the attempt's history events. `Failure` is that call's KEYS and ARGV; the caller adds the
events and runs it on its own script channel, so the job's start, sent ahead, is read
first. A call sent twice (its reply lost) writes once: the run's started-registry entry,
gone after the first, says it was written.
"""

from __future__ import annotations

import calendar
import logging
import zlib
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from rq.defaults import DEFAULT_FAILURE_TTL
from rq.job import JobStatus
from rq.results import Result
from rq.utils import current_timestamp, now, utcformat

from ..keys import (
    DEPENDENTS_OWED_KEY,
    RQ_QUEUES_KEY,
    dependencies_key,
    dependents_key,
    execution_key,
    executions_key,
    failed_key,
    job_key,
    queue_key,
    results_key,
    scheduled_key,
    started_key,
    worker_executions_key,
    worker_key,
)

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

__all__ = ["Failure", "Run", "abandoned", "failure", "malformed"]

log = logging.getLogger("flask_jobs.worker")

#: RQ's type of a failure in its result stream.
_FAILED = str(Result.Type.FAILED.value)


@dataclass
class Run:
    """One execution of a job by this worker (RQ's ``Execution``, as its ids and times)."""

    job_id: str
    execution_id: str
    started: datetime
    queue: str

    @property
    def composite(self) -> str:
        """The execution's member in RQ's started registry."""
        return f"{self.job_id}:{self.execution_id}"


@dataclass
class Failure:
    """One call of the fail script: its KEYS, its ARGV but the events, and the outcome."""

    keys: list[str]
    args: list[Any]
    #: Whether the job goes back to its queue (or the scheduled registry) for a retry.
    retried: bool

    def call(self, maxlen: int, events: list[str]) -> tuple[list[str], list[Any]]:
        """The KEYS and ARGV with the history stream's max length and the packed events."""
        return self.keys, [*self.args, maxlen, len(events), *events]

    def releases(self, reply: Any) -> bool:
        """Whether, after the script replied ``reply``, the job's dependents are to be
        released: a failure for good of a job with dependents, or one whose first call's
        reply was lost (which may have had some)."""
        return not self.retried and reply != 1


def _value(value: Any) -> Any:
    """A hash value as redis-py would send it (hiredis packs str, bytes, int and float)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return repr(value)
    return value


def _flat(mapping: dict[str, Any]) -> list[Any]:
    flat: list[Any] = [len(mapping)]
    for name, value in mapping.items():
        flat += [name, _value(value)]
    return flat


def _keys(job_id: str, queue: str, execution_id: str, worker: str, stream: str) -> list[str]:
    return [
        job_key(job_id),
        execution_key(job_id, execution_id),
        executions_key(job_id),
        started_key(queue),
        worker_key(worker),
        worker_executions_key(worker),
        results_key(job_id),
        failed_key(queue),
        dependents_key(job_id),
        dependencies_key(job_id),
        queue_key(queue),
        scheduled_key(queue),
        RQ_QUEUES_KEY,
        stream,
        DEPENDENTS_OWED_KEY,
    ]


def _ttl(ttl: int | None) -> str:
    """RQ's ``Job.cleanup`` of a TTL: set when positive (0, which RQ reads as "delete the
    job", never comes from flask-jobs' settings)."""
    return str(ttl) if ttl and ttl > 0 else ""


def _retry(job: Job, queue: Queue) -> tuple[str, Any, dict[str, Any]]:
    """RQ's ``Job.retry`` in memory: the outcome, the script's ARGV[8] and the job's fields."""
    interval = job.get_retry_interval()
    assert job.retries_left
    job.retries_left -= 1
    if interval:
        at = now() + timedelta(seconds=interval)
        job._status = JobStatus.SCHEDULED
        return "scheduled", calendar.timegm(at.utctimetuple()), job.to_dict()
    # Queue._prepare_for_queue, as RQ's _enqueue_job runs it
    job.origin = queue.name
    job.enqueued_at = now()
    if job.timeout is None:
        job.timeout = queue._default_timeout
    job._status = JobStatus.QUEUED
    side = "front" if job.enqueue_at_front_on_retry else "back"
    return "queued", side, job.to_dict()


def _failed(job: Job, status: JobStatus, exc_string: str) -> tuple[Any, dict[str, Any]]:
    """RQ's failed registry entry (its score) and job fields of a failure."""
    job._status = status
    job._exc_info = exc_string
    ttl = DEFAULT_FAILURE_TTL if job.failure_ttl is None else job.failure_ttl
    score = ttl if ttl < 0 else current_timestamp() + ttl
    return score, job.to_dict(include_meta=False, include_result=False)


def _result(exc_string: str, worker: str, run: Run | None, ended: datetime | None) -> list[Any]:
    """RQ's ``Result.create_failure`` entry, as its ``serialize`` writes it."""
    fields: dict[str, Any] = {
        "type": _FAILED,
        "worker_name": worker,
        "exc_string": b64encode(zlib.compress(exc_string.encode())).decode(),
    }
    if run is not None:
        fields["execution_id"] = run.execution_id
        fields["execution_started_at"] = run.started.timestamp()
        if ended is not None:
            fields["execution_ended_at"] = ended.timestamp()
    return _flat(fields)


def _outcome(
    job: Job,
    queue: Queue,
    retry: bool,
    status: JobStatus,
    exc_string: str,
    worker: str,
    run: Run | None,
) -> tuple[str, list[Any]]:
    """The outcome, and the fail script's ARGV from the job's TTL on (see fail.lua)."""
    if retry:
        outcome, where, fields = _retry(job, queue)
        return outcome, [_ttl(job.ttl), where, "", *_flat(fields), 0]
    where, fields = _failed(job, status, exc_string)
    kept = job.failure_ttl
    ttl = _ttl(DEFAULT_FAILURE_TTL if kept is None else kept)
    result = _result(exc_string, worker, run, job.ended_at if run is not None else None)
    return "failed", [ttl, where, "" if kept is None else str(kept), *_flat(fields), *result]


def failure(
    job: Job,
    queue: Queue,
    run: Run | None,
    worker: str,
    exc_string: str,
    stream: str,
    *,
    stopped: bool = False,
) -> Failure:
    """A failed (or stopped) run as RQ's ``handle_job_failure`` writes it, retried when the
    job's policy allows. The job's status in memory is the outcome (failed, stopped,
    scheduled or queued); the job must not change again before the call."""
    retry = not stopped and job.should_retry
    worked = ""
    if job.started_at and job.ended_at:
        worked = repr((job.ended_at - job.started_at).total_seconds())
    execution = run.execution_id if run is not None else ""
    status = JobStatus.STOPPED if stopped else JobStatus.FAILED
    outcome, rest = _outcome(job, queue, retry, status, exc_string, worker, run)
    args = [job.id, outcome, execution, "run", "1", worked, *rest]
    return Failure(_keys(job.id, queue.name, execution, worker, stream), args, retry)


def abandoned(job: Job, queue: Queue, execution_id: str, stream: str) -> Failure:
    """A job left started by a worker that died, as RQ's ``StartedJobRegistry.cleanup``
    writes it: retried when it has retries left, else failed with no worker's name; only
    the run's started-registry entry goes (its execution expires on its own)."""
    retry = bool(job.retries_left and job.retries_left > 0)
    exc_string = f"Moved to FailedJobRegistry, due to AbandonedJobError, at {now()}"
    outcome, rest = _outcome(job, queue, retry, JobStatus.FAILED, exc_string, "", None)
    args = [job.id, outcome, execution_id, "started", "", "", *rest]
    return Failure(_keys(job.id, queue.name, execution_id, "", stream), args, retry)


def malformed(
    job_id: str, queue: str, ttl: int, exc: BaseException, stream: str
) -> tuple[Failure, str]:
    """A job whose hash cannot be read, marked failed (in RQ's failed registry), and the
    message that says why."""
    message = f"cannot read job {job_id}: {type(exc).__name__}: {exc}"[:2000]
    log.error("job %s in %s is malformed; marked failed (%s)", job_id, queue, message)
    fields = {"status": JobStatus.FAILED.value, "ended_at": utcformat(now())}
    score: Any = current_timestamp() + ttl if ttl > 0 else "+inf"
    args = [job_id, "failed", "", "", "", "", "", score, "", *_flat(fields), 0]
    return Failure(_keys(job_id, queue, "", "", stream), args, False), message
