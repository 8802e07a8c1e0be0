"""Jobs for the threaded lean worker's tests: thread-safe ones, and ones that meet."""

from __future__ import annotations

import time

import jobs_app
from flask_jobs import thread_safe

jobs = jobs_app.jobs


def _meet(key: str, count: int, wait: float) -> bool:
    """Check in under ``key``; True once ``count`` jobs have, False after ``wait`` seconds."""
    connection = jobs.connection
    connection.incr(key)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if int(connection.get(key) or 0) >= count:
            return True
        time.sleep(0.02)
    return False


@jobs.job
@thread_safe
def meet_safe(key: str, count: int) -> bool:
    """Declared thread-safe: may run beside others."""
    return _meet(key, count, wait=10.0)


@jobs.job
def alone(key: str) -> int:
    """Not declared: runs alone. Returns how many such jobs ran while it did."""
    connection = jobs.connection
    connection.incr(key)
    time.sleep(0.3)
    running = int(connection.get(key) or 0)
    connection.decr(key)
    return running


@thread_safe
@jobs.job(timeout=1)
def nap(seconds: float) -> str:
    """Declared (above the decorator this time), with a 1 s timeout; runs Python code
    between short sleeps, where a thread's timeout can interrupt it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "rested"


@jobs.job(timeout=60)
@thread_safe
def pause(seconds: float) -> str:
    """A thread-safe job that takes a while (in short sleeps: a stop or a timeout in a
    thread lands between two of them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"
