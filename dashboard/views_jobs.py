"""The jobs list: history rows with filters, bulk actions and "requeue all matching"."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import abort, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.history.events import STATUSES
from flask_jobs.history.query import MAX_PAGE, HistoryPage
from flask_jobs.keys import JOB_ID
from flask_jobs.ops.matching import JOB_PATH, MATCHING_CAP, matching_ids, requeue_ids

from .filters import FILTERS, INLINE_LIMIT, Filters
from .jobs_common import (
    confirm_page,
    counted,
    fetch,
    history,
    history_off,
    perform_all,
    reading_history,
    redirect_with,
    statuses,
)
from .listing import jobs_page
from .views_audit import note
from .views_live import LIVE
from .web import arg_choice, arg_int, render, state

__all__ = ["jobs", "jobs_bulk", "jobs_requeue_matching"]

PAGE_SIZE = 50
#: What a bulk form can do to the jobs ticked.
BULK_ACTIONS = ("requeue", "cancel", "delete", "run_now", "stop")
#: The bulk actions asked about on a page of their own first: (title, question, button).
CONFIRMED = {
    "delete": (
        "Delete jobs",
        "Delete {n} job(s) from Redis? Running jobs are skipped; their history stays.",
        "Delete",
    ),
    "stop": (
        "Stop jobs",
        "Stop {n} running job(s)? Each worker ends its job as stopped, which cannot be "
        "undone; a stopped job can be requeued.",
        "Stop",
    ),
}
#: At most this many ids in one bulk form (a page holds at most MAX_PAGE rows).
BULK_CAP = 1_000
#: What a row of the list shows (tracebacks, arguments and results stay in the database).
LIST_COLUMNS = (
    "job_id", "func", "queue", "status", "attempt", "enqueued_at", "run_seconds", "origin",
    "exc_type", "exc_message",
)  # fmt: skip


# -- input at the edge -----------------------------------------------------------


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
    """The list the bulk form came from (its filters only, so never another site)."""
    given = dict(parse_qsl(request.form.get("back", "")[:4000]))
    back_to = request.form.get("back_to")
    if back_to in LIVE:
        queue: dict[str, Any] = {"queue": given["queue"][:100]} if given.get("queue") else {}
        return url_for(f".{back_to}", **queue)
    kept: dict[str, Any] = {
        name: given[name][:300]
        for name in (*FILTERS, "cursor", "limit", "attempts")
        if given.get(name)
    }
    return url_for(".jobs", **kept)


# -- views ---------------------------------------------------------------------------


def _clean_url() -> str | None:
    """This URL without its empty parameters (a form sends every field), if it had any."""
    if all(value for _, value in request.args.items(multi=True)):
        return None
    kept = [(name, value) for name, value in request.args.items(multi=True) if value]
    return request.path + ("?" + urlencode(kept) if kept else "")


def _toggled(here: dict[str, Any], every: bool) -> dict[str, Any]:
    """The list's arguments with the other view: every attempt, or one row per job."""
    kept = {name: value for name, value in here.items() if name != "attempts"}
    return kept if every else {**kept, "attempts": "all"}


def jobs() -> ResponseReturnValue:
    """Jobs from the history, newest enqueued first, filtered, a page at a time."""
    clean = _clean_url()
    if clean is not None and request.headers.get("HX-Request") != "true":
        return redirect(clean, 303)
    filters = Filters.parse(request.args)
    # "retried" names an attempt that was followed by another: never a job's latest one
    every = arg_choice("attempts", ("latest", "all"), "latest") == "all" or (
        filters.status == "retried"
    )
    limit = arg_int("limit", PAGE_SIZE, minimum=1, maximum=MAX_PAGE)
    cursor = _cursor()
    query = history()
    if query is None:
        return history_off()
    problem = filters.problem()
    if problem is not None:
        page = HistoryPage(rows=[], next_cursor=None)
    else:
        with reading_history():
            page = jobs_page(
                query,
                **filters.search_arguments(),
                cursor=cursor,
                limit=limit,
                columns=LIST_COLUMNS,
                every_attempt=every,
            )
    here = filters.query()
    if every:
        here["attempts"] = "all"
    if limit != PAGE_SIZE:
        here["limit"] = str(limit)
    context = {
        "problem": problem,
        "rows": page.rows,
        "filters": filters,
        "every": every,
        "toggle_url": url_for(".jobs", **_toggled(here, every)),
        "statuses": STATUSES,
        "limit": limit,
        "page_size": PAGE_SIZE,
        "next_url": url_for(".jobs", **here, cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": url_for(".jobs", **here) if cursor is not None else None,
        "back": urlencode({**here, "cursor": cursor} if cursor is not None else here),
    }
    if request.headers.get("HX-History-Restore-Request") == "true":
        return render_template("flask_jobs/jobs_list.html", **context)
    response = make_response(
        render("flask_jobs/jobs_list.html", "flask_jobs/_job_rows.html", **context)
    )
    if clean is not None:  # htmx sent the filter form: show the clean URL in the address bar
        response.headers["HX-Push-Url"] = clean
    return response


def jobs_bulk() -> ResponseReturnValue:
    """Requeue, cancel or delete the jobs ticked on a page of the list."""
    action = request.form.get("action", "")
    if action not in BULK_ACTIONS:
        abort(400, f"'action' must be one of {', '.join(BULK_ACTIONS)}, not {action[:40]!r}.")
    ids, invalid = _job_ids(request.form.getlist("job_ids"))
    back = _back()
    if not ids:
        return redirect_with(back, "No jobs were selected.", "error")
    if action in CONFIRMED and request.form.get("confirm") != "yes":
        title, question, button = CONFIRMED[action]
        fields = [("action", action), ("back", request.form.get("back", ""))]
        if request.form.get("back_to") in LIVE:
            fields.append(("back_to", request.form.get("back_to", "")))
        return confirm_page(
            title,
            question.format(n=len(ids)),
            url_for(".jobs_bulk"),
            fields + [("job_ids", job_id) for job_id in ids],
            button=button,
            danger=True,
            cancel_url=back,
        )
    outcome = perform_all(action, (fetch(job_id) for job_id in ids))
    message, category = counted(outcome, invalid=invalid)
    target = ids[0] if len(ids) == 1 else f"{len(ids)} selected jobs"
    note(action, target, outcome.done, message)
    return redirect_with(back, message, category)


def jobs_requeue_matching() -> ResponseReturnValue:
    """Requeue every failed job the list's filters match, after a confirmation page.

    Up to ``INLINE_LIMIT`` jobs are requeued within the request; more are requeued by
    a background job on the first queue, whose page shows its progress and result.
    """
    filters = dataclasses.replace(Filters.parse(request.form), status="failed")
    back = url_for(".jobs", **filters.query())
    query = history()
    if query is None:
        return history_off()
    with reading_history():
        ids, capped = matching_ids(query, filters.query())
    failed = sum(status == "failed" for status in statuses(ids))
    queue = state().config.queues[0]
    background = failed > INLINE_LIMIT
    if request.form.get("confirm") != "yes":
        notes = [
            f"{len(ids)} job(s) in the history match; {failed} of them are failed in Redis "
            "now, and only those are requeued."
        ]
        if capped:
            notes.append(
                f"That is capped at {MATCHING_CAP:,} jobs, the newest: run it again for the rest."
            )
        if background:
            notes.append(
                f"More than {INLINE_LIMIT} jobs: a background job on queue '{queue}' requeues "
                "them (a worker must listen on it); its page shows the progress."
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
    if background:
        job = (
            state()
            .jobs.function(JOB_PATH)
            .options(
                queue=queue,
                description=f"Requeue all failed jobs matching {filters.query()}",
                origin="dashboard",
            )
            .enqueue(filters.query())
        )
        note(
            "requeue", f"failed jobs matching {filters.query()}", failed, f"background job {job.id}"
        )
        return redirect_with(
            url_for(".job", job_id=job.id),
            f"Requeuing {failed} failed job(s) in the background: this job does it.",
        )
    done, skipped = requeue_ids(state(), ids)
    note("requeue", f"failed jobs matching {filters.query()}", done)
    message = f"Requeued {done} failed job(s)" + (f", skipped {skipped}" if skipped else "") + "."
    if capped:
        message += f" Capped at {MATCHING_CAP:,}: run it again for the rest."
    return redirect_with(back, message)
