"""Requeue every failed job that a history search matches ("requeue all matching").

The dashboard runs it within a request for a few jobs, and as this module's
background job, `requeue_matching`, for many: a worker runs it, in the app
context, reporting its progress on the job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import current_app

from ..history.events import STATUSES
from ..history.query import MAX_PAGE, HistoryQuery
from ..jobs.progress import set_progress
from ..keys import JOB_ID, QUEUE_NAME
from .jobs import job_statuses, load_job, perform_all

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "BATCH",
    "JOB_PATH",
    "MATCHING_CAP",
    "matching_ids",
    "requeue_ids",
    "requeue_matching",
    "search_arguments",
]

#: At most this many jobs per "requeue all matching" or failure group (the rest: run it again).
MATCHING_CAP = 10_000
#: Jobs requeued per Redis status read (and per progress update of the background job).
BATCH = 500
#: The background job's import path (it runs on a worker, inside the app context).
JOB_PATH = "flask_jobs.ops.matching:requeue_matching"
#: The names of a search's filters, as the jobs list and the JSON API spell them.
FILTER_NAMES = ("status", "queue", "function", "origin", "since", "until", "text", "workflow")


def _moment(name: str, raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError(
            f"'{name}' must be a date and time like 2024-05-01T13:45 (UTC), not {raw!r}."
        ) from None


def search_arguments(filters: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for `HistoryQuery.search` from filters as text (empty: not set);
    `ValueError` saying which filter is wrong and why."""
    values = {name: str(filters.get(name) or "").strip() for name in FILTER_NAMES}
    if values["status"] and values["status"] not in STATUSES:
        raise ValueError(
            f"'status' must be one of {', '.join(STATUSES)}, not {values['status']!r}."
        )
    if values["queue"] and not QUEUE_NAME.match(values["queue"]):
        raise ValueError(f"'queue' {values['queue']!r} is not a queue name.")
    if values["workflow"] and not JOB_ID.match(values["workflow"]):
        raise ValueError(f"'workflow' {values['workflow']!r} is not a workflow id.")
    return {
        "status": values["status"] or None,
        "queue": values["queue"] or None,
        "function": values["function"] or None,
        "origin": values["origin"] or None,
        "since": _moment("since", values["since"]),
        "until": _moment("until", values["until"]),
        "text": values["text"] or None,
        "workflow": values["workflow"] or None,
    }


def matching_ids(query: HistoryQuery, filters: Mapping[str, str]) -> tuple[list[str], bool]:
    """Distinct job ids of the rows matching ``filters``, newest first; whether capped."""
    arguments = search_arguments(filters)
    seen: dict[str, None] = {}
    cursor = None
    while len(seen) <= MATCHING_CAP:
        page = query.search(**arguments, cursor=cursor, limit=MAX_PAGE)
        seen.update(dict.fromkeys(row["job_id"] for row in page.rows))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    ids = list(seen)
    return ids[:MATCHING_CAP], len(ids) > MATCHING_CAP


def requeue_ids(
    state: JobsState, ids: list[str], *, progress: Callable[[float, str], None] | None = None
) -> tuple[int, int]:
    """Requeue those of ``ids`` that are failed in Redis now: (requeued, skipped)."""
    done = skipped = 0
    for start in range(0, len(ids), BATCH):  # a status pipeline per batch, then only failed ones
        batch = ids[start : start + BATCH]
        statuses = job_statuses(state, batch)
        failed = [i for i, s in zip(batch, statuses, strict=True) if s == "failed"]
        d, s = perform_all(state, "requeue", (load_job(state, job_id) for job_id in failed))
        done, skipped = done + d, skipped + s
        if progress is not None:
            handled = min(len(ids), start + BATCH)
            progress(handled / len(ids), f"{handled} of {len(ids)} checked, {done} requeued")
    return done, skipped


def requeue_matching(filters: dict[str, str]) -> dict[str, Any]:
    """Requeue every failed job the jobs list's ``filters`` match (a background job)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state: JobsState = app.extensions["jobs"]
    query = HistoryQuery(state.history, app)
    ids, capped = matching_ids(query, {**filters, "status": "failed"})
    done, skipped = requeue_ids(state, ids, progress=set_progress)
    current_app.logger.info(
        "requeued %d failed job(s) matching %s (%d skipped)", done, filters, skipped
    )
    return {"matched": len(ids), "requeued": done, "skipped": skipped, "capped": capped}
