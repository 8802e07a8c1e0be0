"""The benchmark tasks for Celery (its defaults; no result backend, as in a fire-and-forget job)."""

from __future__ import annotations

import os

import marks
from celery import Celery

app = Celery("peer_celery", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task
def noop(i: int, n: int = 0) -> None:
    """Do nothing."""
    marks.noop(i, n)


@app.task
def sleep10(i: int, n: int = 0) -> None:
    """Sleep 10 ms."""
    marks.sleep10(i, n)


@app.task
def latency(sent: float) -> None:
    """Report the enqueue-to-start latency."""
    marks.latency(sent)
