"""Jobs the differential scenarios enqueue: plain functions, importable by any worker.

Both sides enqueue them by the same path (``differential.tasks.<name>``): plain RQ
imports the `JobFunction` and calls it, which runs the function in-process.

The thread-safe ones take a few milliseconds (`LANE_SECONDS`): a threaded worker
runs a thread-safe job whose last run took under 2 ms in its main thread, and hands
the others to a thread, so a quick job's path would depend on the machine's speed.
"""

from __future__ import annotations

import time

from flask_jobs import thread_safe
from jobs_app import jobs

#: A few milliseconds: each run goes to a thread in the threads mode.
LANE_SECONDS = 0.005


@thread_safe
@jobs.job
def add(a: int, b: int) -> int:
    """Succeed with a return value."""
    time.sleep(LANE_SECONDS)
    return a + b


@thread_safe
@jobs.job
def fail(message: str) -> None:
    """Fail with a known exception."""
    time.sleep(LANE_SECONDS)
    raise ValueError(message)


@thread_safe
@jobs.job
def sleep_for(seconds: float) -> str:
    """Sleep (stopped, timed out or killed on the way), then say so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "woke up"


@jobs.job
def sleep_alone(seconds: float) -> str:
    """As `sleep_for`, but not thread-safe: a threaded worker runs it in its main thread."""
    return sleep_for(seconds)
