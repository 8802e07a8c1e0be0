"""The benchmark actors for Dramatiq (its default middleware, Redis broker)."""

from __future__ import annotations

import os

import dramatiq
import marks
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))


@dramatiq.actor
def noop(i: int, n: int = 0) -> None:
    """Do nothing."""
    marks.noop(i, n)


@dramatiq.actor
def sleep10(i: int, n: int = 0) -> None:
    """Sleep 10 ms."""
    marks.sleep10(i, n)


@dramatiq.actor
def latency(sent: float) -> None:
    """Report the enqueue-to-start latency."""
    marks.latency(sent)
