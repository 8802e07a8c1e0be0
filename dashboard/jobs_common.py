"""What the jobs, job detail and failures pages share: history access, job actions, redirects."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from flask_jobs.errors import HistoryUnavailable
from flask_jobs.history.query import HistoryQuery
from flask_jobs.jobs.flask_job import FlaskJob
from flask_jobs.ops import jobs as ops

from .web import state

__all__ = [
    "DONE",
    "confirm_page",
    "counted",
    "fetch",
    "first_line",
    "history",
    "history_down",
    "history_off",
    "perform",
    "perform_all",
    "reading_history",
    "redirect_with",
    "statuses",
    "template_helpers",
    "text_field",
    "when",
]

#: How a message says that each of `flask_jobs.ops.jobs.ACTIONS` was done.
DONE = {
    "requeue": "Requeued",
    "cancel": "Canceled",
    "delete": "Deleted",
    "stop": "Asked to stop",
    "run_now": "Queued",
}


# -- input at the edge -----------------------------------------------------------


def text_field(source: Mapping[str, str], name: str, limit: int) -> str:
    """The stripped text ``name`` in ``source``; a 400 when too long or with control characters."""
    value = (source.get(name) or "").strip()
    if len(value) > limit:
        abort(400, f"'{name}' is too long: {len(value)} characters, at most {limit}.")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        abort(400, f"'{name}' must not contain control characters.")
    return value


# -- reading -----------------------------------------------------------------------


def history() -> HistoryQuery | None:
    """A query over the job history, or None when the history is off."""
    jobs_state = state()
    if not jobs_state.history_enabled:
        return None
    return HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]


@contextmanager
def reading_history() -> Iterator[None]:
    """Turn a database error into `HistoryUnavailable` (the blueprint's 503 page)."""
    try:
        yield
    except SQLAlchemyError as exc:
        current_app.logger.warning("dashboard: history unavailable: %s", exc)
        raise HistoryUnavailable() from exc


def history_off() -> ResponseReturnValue:
    """The page shown instead of one that reads the history when the history is off."""
    return render_template(
        "flask_jobs/jobs_message.html",
        title="The job history is off",
        message="This page reads the job history, and JOBS_HISTORY_ENABLED is False. "
        "The overview shows the live queues.",
    )


def history_down(exc: HistoryUnavailable) -> ResponseReturnValue:
    message = (
        "The job history database cannot be read right now (the app's log says why). "
        "The overview still shows the live queues."
    )
    return render_template(
        "flask_jobs/jobs_message.html", title="History unavailable", message=message
    ), 503


def fetch(job_id: str) -> FlaskJob | None:
    """The job in Redis, or None when it is gone (or its data cannot be read)."""
    return ops.load_job(state(), job_id)


def statuses(job_ids: list[str]) -> list[str | None]:
    """The RQ status of each job (None: not in Redis)."""
    return ops.job_statuses(state(), job_ids)


# -- changing ------------------------------------------------------------------------


def perform(action: str, job: FlaskJob) -> None:
    """Requeue, cancel or delete ``job``; `JobsError` when its state does not allow it."""
    ops.perform(state(), action, job)


def perform_all(action: str, jobs: Iterable[FlaskJob | None]) -> ops.Outcome:
    """``action`` on each job: how many were done, and why the others were skipped."""
    return ops.perform_each(state(), action, jobs)


def counted(outcome: ops.Outcome, what: str = "job(s)", *, invalid: int = 0) -> tuple[str, str]:
    """The message and flash category after an action on many jobs: why any were skipped."""
    message = f"{DONE[outcome.action]} {outcome.done} {what}."
    reasons = [outcome.why()] if outcome.skipped else []
    if invalid:
        reasons.append(f"{invalid} not a job id")
    skipped = outcome.skipped_count + invalid
    if skipped:
        message += f" Skipped {skipped}: {'; '.join(reasons)}."
    return message, "error" if skipped and not outcome.done else "message"


# -- responses -----------------------------------------------------------------------


def redirect_with(url: str, message: str, category: str = "message") -> Response:
    """A 303 to ``url`` with ``message``, flashed if the app has a secret key, else in ``done``."""
    if current_app.secret_key:
        flash(message, category)
    else:
        url += ("&" if "?" in url else "?") + urlencode({"done": message})
    return redirect(url, 303)


def confirm_page(
    title: str, message: str, action_url: str, fields: list[tuple[str, str]], **extra: Any
) -> ResponseReturnValue:
    """A page that asks before a destructive action, re-posting ``fields`` to ``action_url``."""
    return render_template(
        "flask_jobs/job_confirm.html",
        title=title,
        message=message,
        action_url=action_url,
        fields=fields,
        **extra,
    )


def job_url_maker() -> Callable[[str], str]:
    """A fast ``url_for(".job", job_id=...)`` for long lists: one ``url_for``, then joins."""
    marker = "0"
    prefix = url_for("jobs_dashboard.job", job_id=marker)[: -len(marker)]

    def job_url(job_id: str) -> str:
        return prefix + quote(str(job_id), safe="")

    return job_url


def jobs_url_maker() -> Callable[..., str]:
    """A fast ``url_for(".jobs", **filters)`` for links in long lists (set filters only)."""
    base = url_for("jobs_dashboard.jobs")

    def jobs_url(**filters: Any) -> str:
        kept = {name: value for name, value in filters.items() if value}
        return base + ("?" + urlencode(kept) if kept else "")

    return jobs_url


def first_line(text: str | None, limit: int = 100) -> str:
    """The first line of ``text``, cut to ``limit`` characters with an ellipsis when cut."""
    line = (text or "").strip().partition("\n")[0].rstrip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def when(moment: datetime | str | None) -> str:
    """A time from the history as UTC, to the second."""
    if moment is None:
        return "-"
    if isinstance(moment, str):  # an aggregate SQLite hands back as text
        return moment[:19]
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(" ", "seconds")[:19]  # strftime's "%Y-%m-%d %H:%M:%S", faster


def from_now(moment: datetime | None, now: datetime | None = None) -> str:
    """How far ``moment`` is from ``now`` (default: now), in words ("in 3 min", "2 h ago")."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    size, unit = 1, "s"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")):  # noqa: B007
        if abs(seconds) >= size:
            break
    amount = f"{abs(seconds) / size:.0f} {unit}"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


def template_helpers() -> dict[str, object]:
    """The dashboard's template helpers: ``when``, ``job_url``, ``jobs_url``, ..."""
    return {
        "when": when,
        "job_url": job_url_maker(),
        "jobs_url": jobs_url_maker(),
        "first_line": first_line,
        "from_now": from_now,
    }
