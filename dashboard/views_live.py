"""Live sets from Redis (not the history): the jobs failed now, running, waiting for a
retry, and scheduled for later; each a list with bulk actions, and in the JSON API."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.errors import UnknownQueueError
from flask_jobs.ops.queues import known_queue
from flask_jobs.ops.sets import LivePage, live_set

from .live_html import BUTTON_LABELS, ROW_ACTION, rows_html
from .security import allowed, can_write
from .views_alerts import read_banner
from .web import arg_int, json_ready, render, state

__all__ = ["LIVE", "api_live", "failed_now", "retrying", "running", "scheduled_now"]

PAGE_SIZE = 50
#: The page sizes a live list offers.
PER_PAGE = (50, 100, 200)
#: Each list, by endpoint: the live set it reads, its title, and the actions it offers.
LIVE = {
    "failed_now": ("failed", "Failed now", ("requeue", "delete")),
    "running": ("running", "Running", ("stop",)),
    "retrying": ("retrying", "Retrying", ("run_now", "cancel", "delete")),
    "scheduled_now": ("scheduled", "Scheduled", ("run_now", "cancel", "delete")),
}


def _queue() -> str | None:
    """The ``?queue=`` filter: a queue this dashboard knows, or a 404."""
    queue = request.args.get("queue") or None
    if queue is None:
        return None
    try:
        return known_queue(state(), queue)
    except UnknownQueueError:
        abort(404, f"There is no queue named {queue[:100]!r}.")


def _page(kind: str, *, banner: bool = False) -> tuple[str | None, int, int, LivePage]:
    """The query's queue, offset and limit, and that page of ``kind`` (with the alert
    banner's reads in its round trip when the page shows the ``banner``)."""
    queue = _queue()
    offset = arg_int("offset", 0, minimum=0, maximum=1_000_000)
    limit = arg_int("limit", PAGE_SIZE, minimum=1, maximum=500)
    page = live_set(
        state(),
        kind,
        queue,
        offset=offset,
        limit=limit,
        app=current_app._get_current_object(),  # type: ignore[attr-defined]
        also=read_banner if banner else None,
    )
    return queue, offset, limit, page


def _live_list(endpoint: str) -> ResponseReturnValue:
    """One page of a live list, of one queue (``?queue=``) or of all."""
    kind, title, actions = LIVE[endpoint]
    htmx = request.headers.get("HX-Request") == "true"  # only the rows: no banner
    queue, offset, limit, page = _page(kind, banner=not htmx)
    here: dict[str, Any] = {"queue": queue} if queue else {}
    if limit != PAGE_SIZE:
        here["limit"] = limit
    more = offset + limit < page.total
    labels = dict(BUTTON_LABELS, run_now="Retry now" if kind == "retrying" else "Run now")
    writable = can_write() and any(allowed(action) for action in actions)
    row_action = ROW_ACTION[kind]
    one_button = writable and allowed(row_action)
    columns = 7 + (1 if writable else 0)
    return render(
        "flask_jobs/live_jobs.html",
        "flask_jobs/_live_rows.html",
        kind=kind,
        title=title,
        endpoint=endpoint,
        actions=actions,
        page=page,
        rows=page.rows,
        queue=queue,
        offset=offset,
        limit=limit,
        per_page=PER_PAGE,
        labels=labels,
        writable=writable,
        row_action=row_action,
        one_button=one_button,
        rows_html=rows_html(
            page.rows,
            kind,
            endpoint,
            selectable=writable,
            button=labels[row_action] if one_button else None,
            columns=columns,
        ),
        next_url=url_for(f".{endpoint}", **here, offset=offset + limit) if more else None,
        prev_url=(
            url_for(f".{endpoint}", **here, offset=max(0, offset - limit)) if offset else None
        ),
    )


def failed_now() -> ResponseReturnValue:
    """The jobs in RQ's failed registries now, latest failure first, with bulk actions."""
    return _live_list("failed_now")


def running() -> ResponseReturnValue:
    """The jobs running now, longest running first: progress, elapsed time, worker, stop."""
    return _live_list("running")


def retrying() -> ResponseReturnValue:
    """Failed attempts waiting for their retry, soonest first, with "retry now"."""
    return _live_list("retrying")


def scheduled_now() -> ResponseReturnValue:
    """Delayed jobs (``enqueue_in``, ``enqueue_at``), soonest due first, with "run now"."""
    return _live_list("scheduled_now")


def api_live(kind: str) -> ResponseReturnValue:
    """One page of a live set as JSON: ``total``, ``exact``, ``jobs``."""
    _, offset, limit, page = _page(kind)
    more = offset + limit < page.total
    return jsonify(
        json_ready(
            {
                "total": page.total,
                "exact": page.exact,
                "jobs": [{k: v for k, v in row.items() if k != "elapsed"} for row in page.rows],
                "next_offset": offset + limit if more else None,
            }
        )
    )
