"""The example app's background jobs: a slow report, a flaky sync, a welcome e-mail, cleanup."""

from __future__ import annotations

import random
import smtplib
import time
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import func, select

from flask_jobs import Retry

from .extensions import db, jobs
from .models import Report, utcnow

__all__ = [
    "REPORT_STEPS",
    "build_report",
    "cleanup_old_reports",
    "flaky_sync",
    "record_heartbeat",
    "send_weekly_digest",
    "send_welcome_email",
]

REPORT_STEPS = 5


@jobs.job(timeout=60)
def build_report(report_id: int) -> str:
    """Build report ``report_id`` in a few slow steps, recording progress as it goes."""
    report = db.session.get(Report, report_id)
    if report is None:
        raise LookupError(f"report {report_id} does not exist (deleted before its job ran?)")
    report.status = "running"
    db.session.commit()
    step_seconds = float(current_app.config["EXAMPLE_REPORT_STEP_SECONDS"])
    try:
        jobs.set_progress(0.0, "starting")
        for step in range(1, REPORT_STEPS + 1):
            time.sleep(step_seconds)  # stands in for real work: queries, an API call, rendering
            jobs.set_progress(step / REPORT_STEPS, f"step {step} of {REPORT_STEPS}")
        total = db.session.scalar(select(func.count()).select_from(Report))
        report.result = (
            f"{report.title}: built in {REPORT_STEPS} steps; "
            f"{total} report(s) in the database at {utcnow():%Y-%m-%d %H:%M:%S} UTC."
        )
        report.status = "done"
        report.finished_at = utcnow()
        db.session.commit()
    except Exception as exc:
        # Without this the row would say "running" forever after a crash or a timeout.
        db.session.rollback()
        report.status = "failed"
        report.result = f"{type(exc).__name__}: {exc}"[:1000]
        report.finished_at = utcnow()
        db.session.commit()
        raise
    return f"report {report_id} done"


@jobs.job(retry=Retry(max=3, backoff="exponential", delay=2))
def flaky_sync(source: str) -> int:
    """Pretend to sync ``source``; fails at ``EXAMPLE_FLAKY_FAILURE_RATE`` to show retries."""
    rate = float(current_app.config["EXAMPLE_FLAKY_FAILURE_RATE"])
    if random.random() < rate:
        raise RuntimeError(f"sync of {source!r} failed: the upstream server did not answer")
    synced = random.randint(1, 100)
    current_app.logger.info("synced %d record(s) from %s", synced, source)
    return synced


# smtplib's errors are OSErrors: a mail server that is down or refuses is worth a retry.
@jobs.job(retry=Retry(max=3, delay=5, on=(OSError,)))
def send_welcome_email(address: str) -> str:
    """Send the welcome e-mail to ``address`` through the SMTP server EXAMPLE_SMTP_HOST/PORT."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["EXAMPLE_MAIL_FROM"]
    message["To"] = address
    message["Subject"] = "Welcome to the reports"
    message.set_content(
        f"Hello {address},\n\nyour reports are built in the background; "
        "you will find them on the reports page.\n"
    )
    host, port = config["EXAMPLE_SMTP_HOST"], int(config["EXAMPLE_SMTP_PORT"])
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)
    current_app.logger.info("sent a welcome e-mail to %s via %s:%d", address, host, port)
    return f"sent to {address}"


@jobs.job
def record_heartbeat() -> str:
    """Every 10 seconds (JOBS_SCHEDULE["heartbeat"]): something to watch on the dashboard."""
    reports = db.session.scalar(select(func.count()).select_from(Report)) or 0
    current_app.logger.info("heartbeat: %d report(s) so far", reports)
    return f"{reports} report(s)"


@jobs.job
def cleanup_old_reports(days: int = 30) -> int:
    """Nightly (JOBS_SCHEDULE["nightly-cleanup"]): delete finished reports older than ``days``."""
    cutoff = utcnow() - timedelta(days=days)
    old = db.session.scalars(
        select(Report).where(Report.created_at < cutoff, Report.status.in_(("done", "failed")))
    ).all()
    for report in old:
        db.session.delete(report)
    db.session.commit()
    current_app.logger.info("cleanup: deleted %d report(s) older than %d days", len(old), days)
    return len(old)


@jobs.job
def send_weekly_digest() -> str:
    """Sundays at 17:03 Berlin time (JOBS_SCHEDULE["weekly-digest"]): log a summary."""
    done = db.session.scalar(
        select(func.count()).select_from(Report).where(Report.status == "done")
    )
    message = f"weekly digest: {done or 0} report(s) built"
    current_app.logger.info(message)
    return message
