"""Jobs the reliability scenarios enqueue; workers import them as ``reliability.tasks``."""

from __future__ import annotations

import os
import random
import time

from jobs_app import jobs

#: Redis keys the jobs below write, so the tests can see what ran.
PID_KEY = "rel:pid:{}"
ATTEMPTS_KEY = "rel:attempts"
TICKS_KEY = "rel:ticks"


@jobs.job
def pid_then_sleep(seconds: float) -> int:
    """Publish this process's pid, then sleep on the first attempt only (a retry is quick)."""
    job = jobs.get_current_job()
    assert job is not None
    jobs.connection.set(PID_KEY.format(job.id), os.getpid(), ex=600)
    if job.attempt == 1:
        time.sleep(seconds)
    return job.attempt


@jobs.job
def nap(seconds: float) -> str:
    """Sleep, then say so."""
    time.sleep(seconds)
    return "rested"


@jobs.job
def soak(n: int, failure_rate: float) -> int:
    """Count the attempt; fail at random with ``failure_rate``."""
    jobs.connection.incr(ATTEMPTS_KEY)
    if random.random() < failure_rate:
        raise RuntimeError(f"random failure of job {n}")
    return n


@jobs.job
def tick() -> None:
    """A scheduled job: count the run."""
    jobs.connection.incr(TICKS_KEY)


@jobs.job
def echo_back(value: str) -> str:
    """Return the argument (for XSS payloads in results)."""
    return value


@jobs.job
def raise_with(message: str) -> None:
    """Fail with ``message`` (for payloads in exception messages and tracebacks)."""
    raise ValueError(message)
