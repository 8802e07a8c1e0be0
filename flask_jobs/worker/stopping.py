"""Warm shutdown that never drops a job taken off its queue but not started yet.

RQ's warm shutdown raises ``StopRequested`` from the signal handler whenever the
worker is not busy. A SIGTERM that lands after BLPOP or BLMOVE handed the worker
a job, and before the worker marked itself busy, leaves that job in no queue
(BLPOP) or in RQ's intermediate list until RQ's cleanup fails it as "stuck",
although it never ran (the reliability suite's SIGTERM-during-a-burst scenario
caught it on a loaded machine). Here the stop is raised at once only while the
worker waits in Redis with nothing in hand; anywhere else it is remembered, and
the worker stops after the job in hand, as a busy worker does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import StopRequested
from rq.worker import WorkerStatus

__all__ = ["StopSafeQueue", "WarmStopMixin", "waiting_in_redis"]

# One worker loop per process: whether it blocks in Redis now, and whether a warm
# stop came while it did not.
_loop = {"waiting": False, "stop": False}


@contextmanager
def waiting_in_redis() -> Iterator[None]:
    """Around a blocking pop: a warm stop may interrupt it; one asked for earlier ends here."""
    _loop["waiting"] = True
    try:
        if _loop["stop"]:
            raise StopRequested()
        yield
    finally:
        _loop["waiting"] = False


class StopSafeQueue(Queue):
    """RQ's queue whose blocking pops run inside `waiting_in_redis`."""

    @classmethod
    def lpop(
        cls, queue_keys: Sequence[str], timeout: int | None, connection: Redis | None = None
    ) -> Any:
        """RQ's BLPOP/LPOP over several queues."""
        if timeout is None:
            return super().lpop(queue_keys, timeout, connection)
        with waiting_in_redis():
            return super().lpop(queue_keys, timeout, connection)

    @classmethod
    def lmove(cls, connection: Redis, queue_key: str, timeout: int | None) -> Any:
        """RQ's BLMOVE/LMOVE of one queue into its intermediate list."""
        if timeout is None:
            return super().lmove(connection, queue_key, timeout)
        with waiting_in_redis():
            return super().lmove(connection, queue_key, timeout)


class WarmStopMixin:
    """An RQ worker mixin: a warm stop never interrupts the worker with a job in hand."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop, with this process's stop flag cleared first."""
        _loop["stop"] = _loop["waiting"] = False
        worked: bool = super().work(*args, **kwargs)  # type: ignore[misc]
        return worked

    def _shutdown(self) -> None:
        worker: Any = self
        if worker.get_state() == WorkerStatus.BUSY or _loop["waiting"]:
            super()._shutdown()  # type: ignore[misc]  # busy: after this job; waiting: now
            return
        # Between a pop and the job's start (or in a heartbeat, or maintenance): stop
        # at the next wait in Redis or the loop's next turn, after the job in hand.
        _loop["stop"] = True
        worker._stop_requested = True
        worker.set_shutdown_requested_date()
