"""The dependents of a job that ended: RQ 3's release of the ones whose dependencies are
all met (``Queue.enqueue_dependents``), checked and written by one Lua script
(``dependents.lua``).

Why one script: RQ's release WATCHes only the ending job's own keys, so two workers
ending the two parents of one child at the same moment can both find the child ready and
enqueue it twice (a chord's callback called twice). The script reads the dependent's
status and its dependencies' and enqueues it in one atomic step: whichever parent's
release runs second finds the child no longer deferred, and leaves it.

Every key a script touches is declared in its KEYS, and a dependent's keys are known only
once its parent's dependents set is read: a cheap reading comes first (the set, then each
dependent's origin and dependencies in one pipeline), then the script, which
checks again under its atomicity and writes nothing when a set changed in between. The
release then reads again, a bounded number of times.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rq.utils import current_timestamp, now, utcformat

from ..keys import (
    DEPENDENTS_OWED_KEY,
    deferred_key,
    dependencies_key,
    dependents_key,
    job_key,
    queue_key,
    ready_key,
)

if TYPE_CHECKING:
    import redis
    from rq import Queue
    from rq.job import Job

    from .scripts import Script

__all__ = ["ATTEMPTS", "Dependents", "Reading", "release_keys"]

log = logging.getLogger("flask_jobs.worker")

#: Readings a release makes at most when the dependents keep changing under it.
ATTEMPTS = 10

#: A reading: each dependent's id and origin, and the ids of their dependencies.
Reading = tuple[list[tuple[str, str]], list[str]]


def release_keys(
    job_id: str, reading: Reading, at: Any, default_timeout: int
) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of ``dependents.lua`` for the dependents in ``reading``."""
    dependents, dependencies = reading
    keys = [job_key(job_id), dependents_key(job_id)]
    args: list[Any] = [
        job_id,
        utcformat(at),
        current_timestamp(),
        default_timeout,
        len(dependents),
        len(dependencies),
    ]
    for dependent, origin in dependents:
        keys += [
            job_key(dependent),
            dependencies_key(dependent),
            dependents_key(dependent),
            deferred_key(origin),
            queue_key(origin),
            ready_key(origin),
        ]
        args += [dependent, origin]
    keys += [job_key(d) for d in dependencies]
    keys.append(DEPENDENTS_OWED_KEY)  # the script settles the release it makes
    args += dependencies
    return keys, args


class Dependents:
    """Releases the dependents of the jobs a worker process ends."""

    def __init__(self, connection: redis.Redis, script: Script) -> None:
        self.connection = connection
        self.script = script

    def release(self, job: Job, queue: Queue) -> None:
        """Enqueue ``job``'s dependents that no longer wait for anything (RQ's rules)."""
        try:
            for _ in range(ATTEMPTS):
                reading = self.read(job.id)
                if reading is None:
                    self.settled(job.id)
                    return
                keys, args = release_keys(job.id, reading, now(), queue.DEFAULT_TIMEOUT)
                reply = self.script(keys=keys, args=args)
                outcome = reply[0].decode()
                if outcome == "ok":
                    self._limited(queue, reply[2])
                    return
                if outcome == "gone":
                    log.warning("job %s is gone: its dependents are not released", job.id)
                    return
            log.error(
                "the dependents of job %s changed under %s releases in a row; left deferred",
                job.id,
                ATTEMPTS,
            )
        except Exception:
            log.exception("could not enqueue the dependents of job %s", job.id)

    def settled(self, job_id: str) -> None:
        """``job_id`` has no dependents left to release: it is owed no release. (The script
        settles the releases it makes; one left unsettled is made again by a worker's
        maintenance, and a release is idempotent.)"""
        self.connection.zrem(DEPENDENTS_OWED_KEY, job_id)

    def read(self, job_id: str) -> Reading | None:
        """The dependents of job ``job_id`` with their origins and dependencies, or None
        when it has none."""
        members = [m.decode() for m in self.connection.smembers(dependents_key(job_id))]  # type: ignore[union-attr]
        if not members:
            return None
        with self.connection.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hget(job_key(member), "origin")
                pipe.smembers(dependencies_key(member))
            replies = pipe.execute()
        dependents = []
        dependencies: dict[str, None] = {}  # in order, once each
        for member, origin, ids in zip(members, replies[::2], replies[1::2], strict=True):
            dependents.append((member, origin.decode() if origin else ""))
            for dependency in (i.decode() for i in ids):
                if dependency != job_id:
                    dependencies[dependency] = None
        return dependents, list(dependencies)

    def _limited(self, queue: Queue, flat: list[bytes]) -> None:
        """RQ's enqueue of the concurrency-limited dependents the script moved to their
        queues' ready registries (a slot now, or a wait for one)."""
        by_queue: dict[str, list[str]] = {}
        for origin, job_id in zip(flat[::2], flat[1::2], strict=True):
            by_queue.setdefault(origin.decode(), []).append(job_id.decode())
        if by_queue:
            queue.enqueue_ready_jobs_by_queue(by_queue)
