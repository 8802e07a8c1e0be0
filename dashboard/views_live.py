"""Live lists from Redis (not the history): the jobs failed now, and the jobs scheduled."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.errors import UnknownQueueError
from flask_jobs.ops.live import registry_jobs
from flask_jobs.ops.queues import known_queue

from .web import arg_int, render, state

__all__ = ["register"]

PAGE_SIZE = 50
#: Each list: its endpoint, the registry it reads, and the bulk actions it offers.
LIVE = {
    "failed_now": ("failed", ("requeue", "delete")),
    "scheduled_now": ("scheduled", ("cancel", "delete")),
}


def _live_list(endpoint: str) -> ResponseReturnValue:
    """One page of a live list, of one queue (``?queue=``) or of all."""
    kind, actions = LIVE[endpoint]
    jobs_state = state()
    queue = request.args.get("queue") or None
    if queue is not None:
        try:
            queue = known_queue(jobs_state, queue)
        except UnknownQueueError:
            abort(404, f"There is no queue named {queue[:100]!r}.")
    offset = arg_int("offset", 0, minimum=0, maximum=1_000_000)
    total, rows = registry_jobs(
        jobs_state,
        kind,
        queue,
        offset=offset,
        limit=PAGE_SIZE,
        app=current_app._get_current_object(),  # type: ignore[attr-defined]
    )
    here: dict[str, Any] = {"queue": queue} if queue else {}
    more = offset + PAGE_SIZE < total
    return render(
        "flask_jobs/live_jobs.html",
        None,
        kind=kind,
        endpoint=endpoint,
        actions=actions,
        rows=rows,
        total=total,
        queue=queue,
        next_url=url_for(f".{endpoint}", **here, offset=offset + PAGE_SIZE) if more else None,
        first_url=url_for(f".{endpoint}", **here) if offset else None,
    )


def failed_now() -> ResponseReturnValue:
    """The jobs in RQ's failed registries now, latest failure first, with bulk actions."""
    return _live_list("failed_now")


def scheduled_now() -> ResponseReturnValue:
    """Delayed jobs and failed attempts waiting for their retry, soonest due first."""
    return _live_list("scheduled_now")


def register(bp: Blueprint) -> None:
    """Add the live lists to the dashboard blueprint."""
    bp.add_url_rule("/failed", "failed_now", failed_now)
    bp.add_url_rule("/scheduled", "scheduled_now", scheduled_now)
