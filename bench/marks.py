"""What the benchmark jobs of every system do: nothing, except mark the first and last job.

The suite times a drain from the start of the first job to the end of the
last one (worker start-up is not measured), and enqueue-to-start latency
from a timestamp passed as the argument. Two marks per drain cost two
commands out of thousands of jobs.
"""

from __future__ import annotations

import asyncio
import os
import time

import redis

FIRST = "bench:first"
LAST = "bench:last"
LATENCY = "bench:latency"

_client: redis.Redis | None = None


def client() -> redis.Redis:
    """One connection per process (a forked work horse makes its own)."""
    global _client
    if _client is None or getattr(_client, "_bench_pid", None) != os.getpid():
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
        _client._bench_pid = os.getpid()  # type: ignore[attr-defined]
    return _client


def mark(i: int, n: int) -> None:
    """Record when the first job started and when the last one ended."""
    if n and i == 0:
        client().set(FIRST, repr(time.time()))
    elif n and i == n - 1:
        client().set(LAST, repr(time.time()))


async def asleep10(i: int, n: int = 0) -> None:
    """An I/O-bound coroutine job: 10 ms asleep on the event loop."""
    if i == 0:
        mark(i, n)
    await asyncio.sleep(0.01)
    if i:
        mark(i, n)


def noop(i: int, n: int = 0) -> None:
    """A no-op job (marks only)."""
    mark(i, n)


def sleep10(i: int, n: int = 0) -> None:
    """An I/O-bound job: 10 ms asleep."""
    if i == 0:
        mark(i, n)
    time.sleep(0.01)
    if i:
        mark(i, n)


def latency(sent: float) -> None:
    """Report how long after ``sent`` (the producer's clock before enqueue) this job started."""
    started = time.time()
    client().rpush(LATENCY, repr(started - sent))
