"""The jobs list: history rows with filters, bulk actions and "requeue all matching"."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.config import QUEUE_NAME
from flask_jobs.events import STATUSES
from flask_jobs.history_query import MAX_PAGE, HistoryQuery

from .jobs_common import (
    ACTIONS,
    JOB_ID,
    MATCHING_CAP,
    confirm_page,
    counted,
    fetch,
    history,
    history_off,
    perform_all,
    reading_history,
    redirect_with,
    statuses,
    text_field,
)
from .web import arg_int, render

__all__ = ["register"]

PAGE_SIZE = 50
#: At most this many ids in one bulk form (a page holds at most MAX_PAGE rows).
BULK_CAP = 1_000
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


# -- input at the edge -----------------------------------------------------------


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


def _cursor() -> int | None:
    if not request.args.get("cursor"):
        return None
    return arg_int("cursor", 0, minimum=1, maximum=2**63 - 1)


def _job_ids(values: list[str]) -> tuple[list[str], int]:
    """The distinct valid ids among ``values``, and how many were not ids at all."""
    if len(values) > BULK_CAP:
        abort(400, f"Select at most {BULK_CAP} jobs at once, not {len(values)}.")
    ids = list(dict.fromkeys(v for v in values if JOB_ID.fullmatch(v)))
    return ids, len(set(values)) - len(ids)


def _back() -> str:
    """The jobs list the bulk form came from (its filters only, so never another site)."""
    given = dict(parse_qsl(request.form.get("back", "")[:4000]))
    kept: dict[str, Any] = {
        name: given[name][:300] for name in (*FILTERS, "cursor", "limit") if given.get(name)
    }
    return url_for(".jobs", **kept)


def _matching_ids(query: HistoryQuery, filters: Filters) -> tuple[list[str], bool]:
    """Distinct job ids of the rows matching ``filters``, newest first; whether capped."""
    seen: dict[str, None] = {}
    cursor = None
    with reading_history():
        while len(seen) <= MATCHING_CAP:
            page = query.search(**filters.search_arguments(), cursor=cursor, limit=MAX_PAGE)
            seen.update(dict.fromkeys(row["job_id"] for row in page.rows))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    ids = list(seen)
    return ids[:MATCHING_CAP], len(ids) > MATCHING_CAP


# -- views ---------------------------------------------------------------------------


def jobs() -> ResponseReturnValue:
    """Jobs from the history, newest first, filtered, a page at a time."""
    filters = Filters.parse(request.args)
    limit = arg_int("limit", PAGE_SIZE, minimum=1, maximum=MAX_PAGE)
    cursor = _cursor()
    query = history()
    if query is None:
        return history_off()
    with reading_history():
        page = query.search(**filters.search_arguments(), cursor=cursor, limit=limit)
    here = filters.query()
    if limit != PAGE_SIZE:
        here["limit"] = str(limit)
    context = {
        "rows": page.rows,
        "filters": filters,
        "statuses": STATUSES,
        "limit": limit,
        "page_size": PAGE_SIZE,
        "next_url": url_for(".jobs", **here, cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": url_for(".jobs", **here) if cursor is not None else None,
        "back": urlencode({**here, "cursor": cursor} if cursor is not None else here),
    }
    if request.headers.get("HX-History-Restore-Request") == "true":
        return render_template("flask_jobs/jobs_list.html", **context)
    return render("flask_jobs/jobs_list.html", "flask_jobs/_job_rows.html", **context)


def jobs_bulk() -> ResponseReturnValue:
    """Requeue, cancel or delete the jobs ticked on a page of the list."""
    action = request.form.get("action", "")
    if action not in ACTIONS:
        abort(400, f"'action' must be one of {', '.join(ACTIONS)}, not {action[:40]!r}.")
    ids, invalid = _job_ids(request.form.getlist("job_ids"))
    back = _back()
    if not ids:
        return redirect_with(back, "No jobs were selected.", "error")
    if action == "delete" and request.form.get("confirm") != "yes":
        fields = [("action", "delete"), ("back", request.form.get("back", ""))]
        return confirm_page(
            "Delete jobs",
            f"Delete {len(ids)} job(s) from Redis? Running jobs are skipped; their history stays.",
            url_for(".jobs_bulk"),
            fields + [("job_ids", job_id) for job_id in ids],
            button="Delete",
            danger=True,
            cancel_url=back,
        )
    done, skipped = perform_all(action, (fetch(job_id) for job_id in ids))
    return redirect_with(back, *counted(action, done, skipped + invalid))


def jobs_requeue_matching() -> ResponseReturnValue:
    """Requeue every failed job the list's filters match, after a confirmation page."""
    filters = dataclasses.replace(Filters.parse(request.form), status="failed")
    back = url_for(".jobs", **filters.query())
    query = history()
    if query is None:
        return history_off()
    ids, capped = _matching_ids(query, filters)
    if request.form.get("confirm") != "yes":
        failed = sum(status == "failed" for status in statuses(ids))
        notes = [
            f"{len(ids)} job(s) in the history match; {failed} of them are failed in Redis "
            "now, and only those are requeued."
        ]
        if capped:
            notes.append(
                f"That is capped at {MATCHING_CAP:,} jobs, the newest: run it again for the rest."
            )
        return confirm_page(
            "Requeue all matching failed jobs",
            f"Requeue {failed} failed job(s)?",
            url_for(".jobs_requeue_matching"),
            list(filters.query().items()),
            notes=notes,
            button=f"Requeue {failed} job(s)",
            cancel_url=back,
            can_confirm=failed > 0,
        )
    done = skipped = 0
    for start in range(0, len(ids), 500):  # batches: a status pipeline, then only failed ones
        batch = ids[start : start + 500]
        failed_ids = [i for i, s in zip(batch, statuses(batch), strict=True) if s == "failed"]
        d, s = perform_all("requeue", (fetch(job_id) for job_id in failed_ids))
        done, skipped = done + d, skipped + s
    message = f"Requeued {done} failed job(s)" + (f", skipped {skipped}" if skipped else "") + "."
    if capped:
        message += f" Capped at {MATCHING_CAP:,}: run it again for the rest."
    return redirect_with(back, message)


def register(bp: Blueprint) -> None:
    """Add the jobs list, its bulk actions and "requeue all matching" to the dashboard blueprint."""
    bp.add_url_rule("/jobs", "jobs", jobs)
    bp.add_url_rule("/jobs/bulk", "jobs_bulk", jobs_bulk, methods=["POST"])
    bp.add_url_rule(
        "/jobs/requeue-matching", "jobs_requeue_matching", jobs_requeue_matching, methods=["POST"]
    )
