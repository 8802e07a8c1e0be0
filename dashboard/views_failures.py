"""The failures page: failed attempts grouped by function and exception, and group actions."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, request, url_for
from flask.typing import ResponseReturnValue
from rq.job import JobStatus

from flask_jobs.history.query import MAX_PAGE, HistoryQuery
from flask_jobs.jobs.flask_job import FlaskJob
from flask_jobs.ops.matching import MATCHING_CAP

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
    text_field,
)
from .views_audit import note
from .web import arg_choice, render

__all__ = ["failures", "failures_delete_group", "failures_requeue_group"]

WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def _group_attempts(query: HistoryQuery, func: str, exc_type: str) -> dict[str, set[int]]:
    """Per job id, its failed attempts that raised ``exc_type`` in ``func``."""
    found: dict[str, set[int]] = {}
    with reading_history():
        for status in ("failed", "abandoned"):
            cursor = None
            while len(found) < MATCHING_CAP:
                page = query.search(
                    status=status, function=func, text=exc_type, cursor=cursor, limit=MAX_PAGE
                )
                for row in page.rows:
                    if row["exc_type"] == exc_type:
                        found.setdefault(row["job_id"], set()).add(row["attempt"])
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    return found


def _still_failed(job: FlaskJob | None, attempts: set[int]) -> bool:
    """Whether ``job`` is in the failed registry and its last failure is one of ``attempts``."""
    return (
        job is not None
        and job.get_status(refresh=False) == JobStatus.FAILED
        and job.attempt in attempts
    )


# -- views ---------------------------------------------------------------------------


def failures() -> ResponseReturnValue:
    """Failed attempts grouped by function and exception type over a window."""
    window = arg_choice("window", tuple(WINDOWS), "7d")
    query = history()
    if query is None:
        return history_off()
    with reading_history():
        groups = query.top_exceptions(WINDOWS[window], limit=100)
    return render("flask_jobs/failures.html", None, groups=groups, window=window, windows=WINDOWS)


def _group_action(action: str) -> ResponseReturnValue:
    func = text_field(request.form, "function", 255)
    exc_type = text_field(request.form, "exc_type", 255)
    window = request.form.get("window", "")
    back = url_for(".failures", window=window if window in WINDOWS else None)
    if not func or not exc_type:
        abort(400, "Say which group: 'function' and 'exc_type' are both needed.")
    query = history()
    if query is None:
        return history_off()
    attempts = _group_attempts(query, func, exc_type)
    jobs_of_group = (fetch(job_id) for job_id in attempts)
    if action == "delete" and request.form.get("confirm") != "yes":
        count = sum(
            status == "failed" for status in statuses(list(attempts))
        )  # a cheap upper bound
        return confirm_page(
            "Delete failed jobs",
            f"Delete the failed jobs of {func} that raised {exc_type} from Redis "
            f"(up to {count})? Their history stays.",
            url_for(".failures_delete_group"),
            [("function", func), ("exc_type", exc_type), ("window", window)],
            button="Delete",
            danger=True,
            cancel_url=back,
            can_confirm=count > 0,
        )
    chosen = (
        job for job in jobs_of_group if job is not None and _still_failed(job, attempts[job.id])
    )
    outcome = perform_all(action, chosen)
    message, category = counted(outcome, f"failed job(s) of {func} with {exc_type}")
    note(action, f"{func} / {exc_type}", outcome.done, message)
    return redirect_with(back, message, category)


def failures_requeue_group() -> ResponseReturnValue:
    """Requeue every job of one failure group still in RQ's failed registry."""
    return _group_action("requeue")


def failures_delete_group() -> ResponseReturnValue:
    """Delete every job of one failure group still in RQ's failed registry (confirmed first)."""
    return _group_action("delete")
