"""The jobs list's filters, and "requeue all matching" (a background job for large sets)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from flask import abort, current_app

from flask_jobs.config import QUEUE_NAME
from flask_jobs.events import STATUSES
from flask_jobs.history_query import MAX_PAGE, HistoryQuery

from .jobs_common import MATCHING_CAP, fetch, perform_all, statuses, text_field
from .web import state

__all__ = [
    "BATCH",
    "FILTERS",
    "INLINE_LIMIT",
    "Filters",
    "matching_ids",
    "requeue_ids",
    "requeue_matching",
]

#: The filters of the jobs list, with the longest value each accepts.
FILTERS = {
    "status": 20,
    "queue": 100,
    "function": 255,
    "origin": 255,
    "since": 40,
    "until": 40,
    "text": 200,
}
#: Up to this many matching jobs are requeued within the request; more go to a background job.
INLINE_LIMIT = 200
#: Jobs requeued per Redis status read (and per progress update of the background job).
BATCH = 500
#: The background job's import path (it runs on a worker, inside the app context).
JOB_PATH = "flask_jobs.dashboard.matching:requeue_matching"


def _moment(name: str, raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        abort(400, f"'{name}' must be a date and time like 2024-05-01T13:45 (UTC), not {raw!r}.")


@dataclasses.dataclass(frozen=True)
class Filters:
    """The jobs list's filters, validated, as the strings the form shows."""

    status: str = ""
    queue: str = ""
    function: str = ""
    origin: str = ""
    since: str = ""
    until: str = ""
    text: str = ""

    @classmethod
    def parse(cls, source: Mapping[str, str]) -> Filters:
        """The filters in ``source`` (query or form); a 400 that says why when one is bad."""
        values = {name: text_field(source, name, limit) for name, limit in FILTERS.items()}
        if values["status"] and values["status"] not in STATUSES:
            abort(400, f"'status' must be one of {', '.join(STATUSES)}, not {values['status']!r}.")
        if values["queue"] and not QUEUE_NAME.match(values["queue"]):
            abort(400, f"'queue' {values['queue']!r} is not a queue name.")
        filters = cls(**values)
        filters.search_arguments()  # a bad date is a 400 now, not later
        return filters

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `HistoryQuery.search`."""
        return {
            "status": self.status or None,
            "queue": self.queue or None,
            "function": self.function or None,
            "origin": self.origin or None,
            "since": _moment("since", self.since),
            "until": _moment("until", self.until),
            "text": self.text or None,
        }

    def query(self) -> dict[str, Any]:
        """The filters that are set, as query arguments."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value}


def matching_ids(query: HistoryQuery, filters: Filters) -> tuple[list[str], bool]:
    """Distinct job ids of the rows matching ``filters``, newest first; whether capped."""
    seen: dict[str, None] = {}
    cursor = None
    while len(seen) <= MATCHING_CAP:
        page = query.search(**filters.search_arguments(), cursor=cursor, limit=MAX_PAGE)
        seen.update(dict.fromkeys(row["job_id"] for row in page.rows))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    ids = list(seen)
    return ids[:MATCHING_CAP], len(ids) > MATCHING_CAP


def requeue_ids(ids: list[str], *, report: bool = False) -> tuple[int, int]:
    """Requeue those of ``ids`` that are failed in Redis now: (requeued, skipped)."""
    done = skipped = 0
    jobs = state().jobs
    for start in range(0, len(ids), BATCH):  # a status pipeline per batch, then only failed ones
        batch = ids[start : start + BATCH]
        failed = [i for i, s in zip(batch, statuses(batch), strict=True) if s == "failed"]
        d, s = perform_all("requeue", (fetch(job_id) for job_id in failed))
        done, skipped = done + d, skipped + s
        if report:
            handled = min(len(ids), start + BATCH)
            jobs.set_progress(
                handled / len(ids), f"{handled} of {len(ids)} checked, {done} requeued"
            )
    return done, skipped


def requeue_matching(filters: dict[str, str]) -> dict[str, Any]:
    """Requeue every failed job the jobs list's ``filters`` match (dashboard, in the background)."""
    parsed = dataclasses.replace(Filters.parse(filters), status="failed")
    jobs_state = state()
    query = HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]
    ids, capped = matching_ids(query, parsed)
    done, skipped = requeue_ids(ids, report=True)
    current_app.logger.info(
        "dashboard: requeued %d failed job(s) matching %s (%d skipped)", done, filters, skipped
    )
    return {"matched": len(ids), "requeued": done, "skipped": skipped, "capped": capped}
