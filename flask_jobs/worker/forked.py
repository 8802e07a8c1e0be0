"""The fork mode: each job in a fresh child process (RQ's "work horse"), for isolation.

The child starts, runs and ends the job exactly as the serial mode does (the same
scripts and middleware), then exits. The parent waits for it: a stop-job command or a
cold shutdown kills the child; a child that died before writing how the job ended
(killed, out of memory, a crash in C code) fails the job as RQ's forking worker does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from typing import TYPE_CHECKING

from rq.job import JobStatus
from rq.utils import now, utcformat

from ..forking import dispose_db_pools
from ..keys import (
    execution_key,
    executions_key,
    job_key,
    started_key,
    worker_executions_key,
    worker_key,
)
from .control import ColdShutdown
from .execution import MONITORING_SECONDS, execute, fail, heartbeat_ttl
from .failure import Run

if TYPE_CHECKING:
    from rq.job import Job

    from .execution import JobsWorker

__all__ = ["STOPPED_MESSAGE", "execute_forked"]

log = logging.getLogger("flask_jobs.worker")

#: What a job stopped by killing its child records, as RQ's forking worker.
STOPPED_MESSAGE = "Job stopped by user, work-horse terminated."


def _child(worker: JobsWorker, job: Job, execution_id: str) -> None:
    """The work horse: forget the parent's connections and signals, run the job, exit."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        dispose_db_pools(worker.app)
        worker.app.extensions["jobs"].history.dispose()
        worker.control.threads.clear()
        execute(worker, job, [], execution_id)
        worker.flush_events()  # a failure's events wait for a next call this child never makes
        code = 0
    except BaseException:
        log.exception("work horse of job %s failed", job.id)
    finally:
        logging.shutdown()
        os._exit(code)


def execute_forked(worker: JobsWorker, job: Job) -> None:
    """Run ``job`` in a fresh child process and wait for it."""
    execution_id = uuid.uuid4().hex
    started = now()
    pid = os.fork()
    if pid == 0:
        _child(worker, job, execution_id)
    worker.control.horses[job.id] = pid
    run = Run(job.id, execution_id, started, job.origin)
    done = threading.Event()
    beats = threading.Thread(
        target=_monitor, args=(worker, job, run, done), name="flask-jobs-horse-monitor"
    )
    beats.start()
    status = 0
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except ColdShutdown:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                worker.control.cold = True
    finally:
        worker.control.horses.pop(job.id, None)
        done.set()
        beats.join()
    if status == 0 and not worker.control.cold:
        return
    _after_dead_child(worker, job, run, status)
    if worker.control.cold:
        raise ColdShutdown(1)


def _monitor(worker: JobsWorker, job: Job, run: Run, done: threading.Event) -> None:
    """Renew the running child's heartbeat every `MONITORING_SECONDS` (as RQ's forking
    worker does): if this whole worker dies, its job is found abandoned soon after."""
    ttl = heartbeat_ttl(worker, job)
    while not done.wait(MONITORING_SECONDS):
        at = time.time()
        try:
            with worker.connection.pipeline(transaction=False) as pipe:
                pipe.zadd(started_key(run.queue), {run.composite: int(at) + ttl}, xx=True)
                pipe.zadd(executions_key(job.id), {run.execution_id: int(at) + ttl + 60}, xx=True)
                pipe.expire(execution_key(job.id, run.execution_id), ttl)
                pipe.expire(worker_key(worker.name), ttl)
                pipe.expire(worker_executions_key(worker.name), ttl)
                pipe.hset(job_key(job.id), "last_heartbeat", utcformat(now()))
                pipe.execute()
        except Exception as exc:  # Redis away: the next beat tries again
            log.warning("heartbeat of job %s failed (%s)", job.id, exc)


def _after_dead_child(worker: JobsWorker, job: Job, run: Run, status: int) -> None:
    """Fail the job of a child that died before writing its end (or was killed)."""
    try:
        if job.get_status(refresh=True) != JobStatus.STARTED:
            return  # the child wrote the end itself (or never started the job)
        job.refresh()  # type: ignore[no-untyped-call]
    except Exception:  # the job is gone (its TTL, a delete): nothing to record
        return
    job.ended_at = now()
    if job.id in worker.control.stopping:
        message = STOPPED_MESSAGE
    elif worker.control.cold:
        message = "cold shutdown: the worker was stopped and killed the job"
    else:
        signalled = f" (signal {os.WTERMSIG(status)})" if os.WIFSIGNALED(status) else ""
        message = f"Work-horse terminated unexpectedly; waitpid returned {status}{signalled}; "
        log.warning("job %s lost its work horse (%s)", job.id, message.strip())
    job._jobs_attempt = getattr(job, "attempt", 1)  # type: ignore[attr-defined]
    with worker.app.app_context():
        fail(worker, job, run, None, None, message)
