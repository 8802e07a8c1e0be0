"""Queue actions: pause, resume and empty a queue, and which queues there are.

A paused queue keeps taking jobs; our workers leave them alone until it is
resumed (they skip the names in `flask_jobs.keys.PAUSED_QUEUES_KEY`). A plain
``rq worker`` does not know of pausing and keeps working the queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rq import Queue

from ..errors import UnknownQueueError
from ..keys import PAUSED_QUEUES_KEY, QUEUE_NAME

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "empty_queue",
    "known_queue",
    "pause_queue",
    "paused_queues",
    "queue_names",
    "resume_queue",
]


def paused_queues(state: JobsState) -> set[str]:
    """The names of the queues that are paused now."""
    members: Any = state.connection.smembers(PAUSED_QUEUES_KEY)
    return {member.decode("utf-8", "replace") for member in members}


def queue_names(state: JobsState, paused: set[str] | None = None) -> list[str]:
    """``JOBS_QUEUES`` in order, then any other queue RQ knows of in this Redis, then
    paused names no longer among them (``paused``: the paused set, if already read)."""
    names = list(state.config.queues)
    for queue in Queue.all(connection=state.connection):
        # a queue made by plain RQ may have a name we would refuse: leave it out
        if queue.name not in names and QUEUE_NAME.match(queue.name):
            names.append(queue.name)
    if paused is None:
        paused = paused_queues(state)
    names += sorted(name for name in paused if name not in names and QUEUE_NAME.match(name))
    return names


def known_queue(state: JobsState, name: str) -> str:
    """``name`` when it is one of `queue_names`; `UnknownQueueError` saying which are."""
    known = queue_names(state)
    if not isinstance(name, str) or not QUEUE_NAME.match(name) or name not in known:
        raise UnknownQueueError(
            f"there is no queue named {str(name)[:100]!r} (known: {', '.join(known)})"
        )
    return name


def pause_queue(state: JobsState, name: str) -> None:
    """Make our workers leave ``name``'s jobs alone (jobs can still be enqueued to it)."""
    state.connection.sadd(PAUSED_QUEUES_KEY, known_queue(state, name))


def resume_queue(state: JobsState, name: str) -> None:
    """Let our workers take ``name``'s jobs again."""
    state.connection.srem(PAUSED_QUEUES_KEY, known_queue(state, name))


def empty_queue(state: JobsState, name: str) -> int:
    """Delete every job waiting in ``name``; return how many (running, scheduled and failed
    jobs are kept)."""
    queue = state.queue(known_queue(state, name))
    return int(queue.empty())  # type: ignore[no-untyped-call]
