"""Queue actions: pause, resume and empty a queue, and which queues there are.

A paused queue keeps taking jobs; our workers leave them alone until it is
resumed (they skip the names in `flask_jobs.keys.PAUSED_QUEUES_KEY`). A plain
``rq worker`` does not know of pausing and keeps working the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import UnknownQueueError
from ..keys import PAUSED_QUEUES_KEY, QUEUE_NAME, RQ_QUEUE_PREFIX, RQ_QUEUES_KEY

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "empty_queue",
    "known_queue",
    "pause_queue",
    "paused_queues",
    "queue_names",
    "read_queue_names",
    "resume_queue",
]


def paused_queues(state: JobsState) -> set[str]:
    """The names of the queues that are paused now."""
    members: Any = state.connection.smembers(PAUSED_QUEUES_KEY)
    return _names(members)


def _names(members: Any) -> set[str]:
    return {member.decode("utf-8", "replace") for member in members}


def queue_names(state: JobsState, paused: set[str] | None = None) -> list[str]:
    """``JOBS_QUEUES`` in order, then any other queue RQ knows of in this Redis (by name),
    then paused names no longer among them (``paused``: the paused set, if already read).

    One round trip (see `read_queue_names` to send it with other commands).
    """
    with state.connection.pipeline(transaction=False) as pipe:
        names = read_queue_names(state, pipe, paused)
        return names(pipe.execute())


def read_queue_names(
    state: JobsState, pipe: Any, paused: set[str] | None = None
) -> Callable[[list[Any]], list[str]]:
    """`queue_names` as commands queued on ``pipe``: returns what makes the names of their
    replies (the first replies of the pipeline, given whole or from the first on)."""
    pipe.smembers(RQ_QUEUES_KEY)
    if paused is None:
        pipe.smembers(PAUSED_QUEUES_KEY)

    def names(replies: list[Any]) -> list[str]:
        return _queue_names(state, replies[0], _names(replies[1]) if paused is None else paused)

    return names


def _queue_names(state: JobsState, registered: Any, paused: set[str]) -> list[str]:
    names = list(state.config.queues)
    known = set(names)
    width = len(RQ_QUEUE_PREFIX)
    # RQ's registry of queues holds their keys; a queue made by plain RQ may have a name
    # we would refuse: leave it out
    found = {key[width:] for key in _names(registered) if key.startswith(RQ_QUEUE_PREFIX)}
    names += sorted(name for name in found if name not in known and QUEUE_NAME.match(name))
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
