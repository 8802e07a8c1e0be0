"""Jobs for the threaded lean worker's tests: thread-safe ones, and ones that meet."""

from __future__ import annotations

import asyncio
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


# -- async def jobs: run on the worker's event loop ------------------------------------


@jobs.job
async def gather(key: str, count: int) -> bool:
    """Check in under ``key``; True once ``count`` jobs have (they run at once), False
    after 10 seconds."""
    connection = jobs.connection
    connection.incr(key)
    for _ in range(500):
        if int(connection.get(key) or 0) >= count:
            return True
        await asyncio.sleep(0.02)
    return False


@jobs.job
async def own_context(tag: str) -> bool:
    """Whether ``g`` keeps this job's value across an await while other jobs set theirs."""
    from flask import g

    g.tag = tag
    await asyncio.sleep(0.05)
    return bool(g.tag == tag)


@jobs.job(timeout=1)
async def async_nap(seconds: float) -> str:
    """Sleeps on the event loop (past its 1 s timeout when asked to)."""
    await asyncio.sleep(seconds)
    return "rested"


@jobs.job
async def async_fail(message: str) -> None:
    """Fails after an await."""
    await asyncio.sleep(0.01)
    raise ValueError(message)
