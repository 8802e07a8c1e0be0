"""Paused queues: workers skip the queues in the paused set (`flask_jobs.ops.queues` writes it)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import redis
from rq.worker import WorkerStatus

from ..keys import PAUSED_QUEUES_KEY

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job

__all__ = ["PAUSED_CHECK", "PAUSED_REFRESH", "QueuePausingMixin"]

log = logging.getLogger("flask_jobs.worker")

#: Seconds a worker trusts its last read of the paused set.
PAUSED_REFRESH = 1.0
#: Longest an idle worker blocks on its queues before it looks at the paused set again.
PAUSED_CHECK = 5


class QueuePausingMixin:
    """An RQ worker mixin: dequeue only from queues that are not paused."""

    _jobs_paused: frozenset[str] = frozenset()
    _jobs_paused_read = float("-inf")
    _jobs_queue_order: list[Queue] | None = None

    def _paused_queue_names(self) -> frozenset[str]:
        """The paused queues (dashboard or CLI), read at most once per `PAUSED_REFRESH`."""
        clock = time.monotonic()
        if clock - self._jobs_paused_read >= PAUSED_REFRESH:
            worker: Any = self
            self._jobs_paused_read = clock
            try:
                members: Any = worker.connection.smembers(PAUSED_QUEUES_KEY)
            except redis.RedisError as exc:  # RQ's dequeue below waits the outage out
                log.debug("could not read the paused queues, using the last known: %s", exc)
            else:
                self._jobs_paused = frozenset(m.decode() for m in members)
        return self._jobs_paused

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's dequeue, skipping paused queues (the ``flask_jobs:paused_queues`` set).

        An idle worker blocks for at most `PAUSED_CHECK` seconds at a time (not RQ's
        ~400), so a pause or resume reaches it within seconds. In burst mode a worker
        whose queues are all paused is done; otherwise it waits for a resume.
        """
        worker: Any = self
        if self._jobs_queue_order is None:
            # RQ rotates or shuffles `_ordered_queues` after each job (its dequeue
            # strategy); we keep the full order here and hand RQ the unpaused part.
            self._jobs_queue_order = list(worker._ordered_queues)
        started = time.monotonic()
        heartbeat_at = started
        while True:
            left = None if max_idle_time is None else max_idle_time - (time.monotonic() - started)
            if timeout is not None and left is not None and left <= 0:
                return None
            paused = self._paused_queue_names()
            order = self._jobs_queue_order
            active = [queue for queue in order if queue.name not in paused]
            if not active:
                if timeout is None:
                    return None  # burst: nothing it may run is left
                if worker.get_state() != WorkerStatus.IDLE:
                    worker.set_state(WorkerStatus.IDLE)
                    worker.procline("All queues paused: " + ",".join(worker.queue_names()))
                if time.monotonic() - heartbeat_at >= PAUSED_CHECK:
                    worker.heartbeat()
                    heartbeat_at = time.monotonic()
                    if worker.should_run_maintenance_tasks:
                        worker.run_maintenance_tasks()
                time.sleep(PAUSED_REFRESH if left is None else max(0.0, min(PAUSED_REFRESH, left)))
                continue
            worker._ordered_queues = active
            if timeout is None:
                result: tuple[Job, Queue] | None = super().dequeue_job_and_maintain_ttl(  # type: ignore[misc]
                    None, max_idle_time
                )
            else:
                block = min(timeout, PAUSED_CHECK)
                if left is not None:
                    block = min(block, max(1, int(left + 0.999)))
                # RQ's own idle limit makes it return None after one empty wait.
                result = super().dequeue_job_and_maintain_ttl(block, block)  # type: ignore[misc]
            heartbeat_at = time.monotonic()
            if result is not None:
                worker._ordered_queues = order
                worker.reorder_queues(reference_queue=result[1])
                self._jobs_queue_order = list(worker._ordered_queues)
                return result
            if timeout is None:
                return None
