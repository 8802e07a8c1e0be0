"""Live lists from Redis (not the history): the jobs that are failed now."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.errors import UnknownQueueError
from flask_jobs.ops.live import failed_now as failed_rows
from flask_jobs.ops.queues import known_queue

from .web import arg_int, render, state

__all__ = ["register"]

PAGE_SIZE = 50


def failed_now() -> ResponseReturnValue:
    """The jobs in RQ's failed registries now, latest failure first, with bulk actions."""
    jobs_state = state()
    queue = request.args.get("queue") or None
    if queue is not None:
        try:
            queue = known_queue(jobs_state, queue)
        except UnknownQueueError:
            abort(404, f"There is no queue named {queue[:100]!r}.")
    offset = arg_int("offset", 0, minimum=0, maximum=1_000_000)
    total, rows = failed_rows(jobs_state, queue, offset=offset, limit=PAGE_SIZE)
    here: dict[str, Any] = {"queue": queue} if queue else {}
    more = offset + PAGE_SIZE < total
    return render(
        "flask_jobs/failed_now.html",
        None,
        rows=rows,
        total=total,
        queue=queue,
        offset=offset,
        next_url=url_for(".failed_now", **here, offset=offset + PAGE_SIZE) if more else None,
        first_url=url_for(".failed_now", **here) if offset else None,
    )


def register(bp: Blueprint) -> None:
    """Add the live lists to the dashboard blueprint."""
    bp.add_url_rule("/failed", "failed_now", failed_now)
