"""The example app's pages: request a report, watch it being built, and stir up some failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from rq.job import JobStatus
from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_jobs import JobsConnectionError, UnknownJobError

from .extensions import db, jobs
from .models import TITLE_MAX_LENGTH, Report, utcnow
from .tasks import build_report, flaky_sync, send_welcome_email

__all__ = ["bp"]

bp = Blueprint("main", __name__)

#: How many reports the page lists, newest first.
PAGE_SIZE = 50
FLAKY_JOBS = 5
ADDRESS_MAX_LENGTH = 254

_JOB_DEAD = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


@dataclass
class ReportRow:
    """A report as the page shows it: its row, plus live progress from its RQ job."""

    report: Report
    status: str
    progress: float | None = None
    message: str | None = None

    @property
    def unfinished(self) -> bool:
        """Whether the page should keep refreshing for this report."""
        return self.status in ("pending", "running")


def _report_rows(reports: list[Report]) -> tuple[list[ReportRow], str | None]:
    """The page rows for ``reports``, and a warning when the job queue could not be read."""
    rows: list[ReportRow] = []
    queue_error: str | None = None
    for report in reports:
        row = ReportRow(report, report.status)
        rows.append(row)
        if report.finished or not report.job_id or queue_error is not None:
            continue
        try:
            job = jobs.fetch_job(report.job_id)
        except UnknownJobError:
            row.status, row.message = "failed", "its job is gone from the queue (expired?)"
            continue
        except JobsConnectionError as exc:
            # The list lives in SQL: show it anyway, without live progress.
            current_app.logger.warning("cannot read job progress: %s", exc)
            queue_error = "The job queue is unavailable: progress cannot be shown right now."
            continue
        if job.get_status(refresh=False) in _JOB_DEAD:
            # The job died without updating the row (killed, or a timeout in a lost work horse).
            row.status, row.message = "failed", "its job failed; see the jobs dashboard"
            continue
        progress = job.meta.get("progress")
        if isinstance(progress, dict):
            row.progress = float(progress.get("fraction") or 0.0)
            row.message = progress.get("message")
    return rows, queue_error


def _render_index(*, error: str | None = None, title: str = "") -> str:
    reports = list(db.session.scalars(select(Report).order_by(Report.id.desc()).limit(PAGE_SIZE)))
    rows, queue_error = _report_rows(reports)
    context: dict[str, Any] = {
        "rows": rows,
        "error": error,
        "queue_error": queue_error,
        "title": title,
        "title_max_length": TITLE_MAX_LENGTH,
        # A page that answers a failed POST must not refresh: the reload could post again.
        "refresh": error is None and any(row.unfinished for row in rows),
    }
    return render_template("index.html", **context)


def _title_error(title: str) -> str | None:
    if not title:
        return "Please give the report a title."
    if len(title) > TITLE_MAX_LENGTH:
        return f"The title is {len(title)} characters long; the limit is {TITLE_MAX_LENGTH}."
    return None


@bp.app_context_processor
def dashboard_link() -> dict[str, str | None]:
    """The jobs dashboard's URL for every page (None when JOBS_DASHBOARD_ENABLED is off)."""
    enabled = "jobs_dashboard" in current_app.blueprints and has_request_context()
    return {"dashboard_url": url_for("jobs_dashboard.index") if enabled else None}


@bp.get("/")
def index() -> str:
    """The form, and the reports with their status, progress and result."""
    return _render_index()


@bp.post("/reports")
def create_report() -> Response | tuple[str, int]:
    """Store a new report and queue the job that builds it."""
    title = request.form.get("title", "").strip()
    error = _title_error(title)
    if error is not None:
        return _render_index(error=error, title=title), 400
    report = Report(title=title)
    db.session.add(report)
    # Committed before the enqueue: a fast worker must find the row when the job starts.
    db.session.commit()
    try:
        job = build_report.enqueue(report.id)
    except JobsConnectionError:
        report.status = "failed"
        report.result = "could not be queued: the job queue was unavailable"
        report.finished_at = utcnow()
        db.session.commit()
        raise  # the app's error handler answers 503
    report.job_id = job.id
    db.session.commit()
    flash(f"Report {report.id} queued.")
    return redirect(url_for("main.index"), 303)


@bp.post("/flaky")
def queue_flaky() -> Response:
    """Queue a few `flaky_sync` jobs, so failures and retries show up in the dashboard."""
    for number in range(1, FLAKY_JOBS + 1):
        flaky_sync.enqueue(f"source-{number}")
    flash(f"{FLAKY_JOBS} flaky_sync jobs queued: some will fail and be retried.")
    return redirect(url_for("main.index"), 303)


def _address_error(address: str) -> str | None:
    if not address:
        return "Please give an e-mail address."
    if len(address) > ADDRESS_MAX_LENGTH:
        return f"The address is {len(address)} characters long; the limit is {ADDRESS_MAX_LENGTH}."
    local, at, domain = address.rpartition("@")
    # No line breaks: they would let the address add headers of its own to the message.
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return f"{address!r} does not look like an e-mail address."
    return None


@bp.post("/welcome")
def queue_welcome() -> Response | tuple[str, int]:
    """Queue the welcome e-mail for an address."""
    address = request.form.get("address", "").strip()
    error = _address_error(address)
    if error is not None:
        return _render_index(error=error), 400
    send_welcome_email.enqueue(address)
    flash(f"Welcome e-mail to {address} queued; it shows up in the mailbox once sent.")
    return redirect(url_for("main.index"), 303)


@bp.get("/mailbox")
def mailbox() -> str:
    """The messages the example's SMTP sink received, newest first."""
    # Imported here so that `python -m example_app.mailsink` does not import itself twice.
    from .mailsink import read_mailbox

    return render_template(
        "mailbox.html", mails=read_mailbox(current_app.config["EXAMPLE_MAILBOX"])
    )
