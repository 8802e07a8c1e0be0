"""The example app end to end: pages, login, mail, and its jobs run by a real burst worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import JobStatus
from sqlalchemy import func, select

from example_app import db, jobs
from example_app.mailsink import MailSink, read_mailbox
from example_app.models import Report
from example_app.tasks import flaky_sync, send_welcome_email
from flask_jobs import Retry

from .support import make_app, reports


def test_index_renders_form_and_dashboard_link(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'action="/reports"' in page
    assert 'name="title"' in page
    assert 'href="/jobs/"' in page
    assert "No reports yet" in page
    assert 'http-equiv="refresh"' not in page  # nothing to wait for


def test_report_is_queued_then_built_by_a_worker(
    app: Flask, client: FlaskClient, work: Callable[[], bool]
) -> None:
    response = client.post("/reports", data={"title": "  Quarterly <numbers>  "})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"

    [report] = reports(app)
    assert report.title == "Quarterly <numbers>"
    assert report.status == "pending"
    assert report.job_id is not None
    with app.app_context():
        job = jobs.fetch_job(report.job_id)
        assert job.get_status() == JobStatus.QUEUED
        assert job.args == [report.id]
        assert job.id in jobs.get_queue().job_ids

    page = client.get("/").get_data(as_text=True)
    assert "Report 1 queued." in page
    assert "Quarterly &lt;numbers&gt;" in page  # autoescaped
    assert '<meta http-equiv="refresh" content="2">' in page

    work()

    [report] = reports(app)
    assert report.status == "done"
    assert report.result is not None
    assert report.result.startswith("Quarterly <numbers>: built in 5 steps")
    assert report.finished_at is not None
    with app.app_context():
        job = jobs.fetch_job(report.job_id)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == f"report {report.id} done"
        assert job.meta["progress"]["fraction"] == 1.0
        assert job.meta["progress"]["message"] == "step 5 of 5"

    page = client.get("/").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert "built in 5 steps" in page


def test_index_shows_progress_of_an_unfinished_report(app: Flask, client: FlaskClient) -> None:
    client.post("/reports", data={"title": "halfway"})
    [report] = reports(app)
    with app.app_context():
        job = jobs.fetch_job(report.job_id)
        job.meta["progress"] = {"fraction": 0.4, "message": "step 2 of 5"}
        job.save_meta()
    page = client.get("/").get_data(as_text=True)
    assert '<progress value="0.4" max="1">' in page
    assert "step 2 of 5" in page


def test_index_marks_a_report_whose_job_is_gone(app: Flask, client: FlaskClient) -> None:
    client.post("/reports", data={"title": "lost"})
    with app.app_context():
        jobs.connection.flushdb()
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "its job is gone from the queue" in page
    assert 'http-equiv="refresh"' not in page  # it will never finish: stop refreshing


@pytest.mark.parametrize(
    ("title", "message"),
    [("", "Please give the report a title."), ("   ", "Please give the report a title.")],
)
def test_blank_title_is_refused(app: Flask, client: FlaskClient, title: str, message: str) -> None:
    response = client.post("/reports", data={"title": title})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert reports(app) == []
    with app.app_context():
        assert jobs.get_queue().count == 0


def test_missing_and_too_long_titles_are_refused(app: Flask, client: FlaskClient) -> None:
    assert client.post("/reports", data={}).status_code == 400
    response = client.post("/reports", data={"title": "x" * 201})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "the limit is 200" in page
    assert 'http-equiv="refresh"' not in page  # a reload could post the form again
    assert client.post("/reports", data={"title": "x" * 200}).status_code == 303
    assert [r.title for r in reports(app)] == ["x" * 200]


def test_flaky_jobs_fail_and_are_scheduled_for_retry(
    app: Flask, client: FlaskClient, work: Callable[[], bool]
) -> None:
    app.config["EXAMPLE_FLAKY_FAILURE_RATE"] = 1
    response = client.post("/flaky")
    assert response.status_code == 303
    with app.app_context():
        job_ids = jobs.get_queue().job_ids
    assert len(job_ids) == 5

    work()

    with app.app_context():
        assert jobs.registry("failed").count == 0
        assert sorted(jobs.registry("scheduled").get_job_ids()) == sorted(job_ids)
        for job_id in job_ids:
            job = jobs.fetch_job(job_id)
            assert job.get_status() == JobStatus.SCHEDULED
            assert job.retries_left == 2  # one of three retries used


def test_flaky_job_ends_up_failed_after_its_retries(app: Flask, work: Callable[[], bool]) -> None:
    app.config["EXAMPLE_FLAKY_FAILURE_RATE"] = 1
    with app.app_context():
        # No delay, so the burst worker runs every retry now instead of scheduling it.
        job = flaky_sync.options(retry=Retry(max=2, backoff="fixed", delay=0)).enqueue("crm")

    work()

    with app.app_context():
        job = jobs.fetch_job(job.id)
        assert job.get_status() == JobStatus.FAILED
        assert job.retries_left == 0  # so it ran three times: the first attempt and two retries
        assert job.id in jobs.registry("failed").get_job_ids()
        assert "upstream server did not answer" in job.latest_result().exc_string


def test_flaky_job_succeeds_when_upstream_is_healthy(app: Flask, work: Callable[[], bool]) -> None:
    app.config["EXAMPLE_FLAKY_FAILURE_RATE"] = 0
    with app.app_context():
        job = flaky_sync.enqueue("crm")
    work()
    with app.app_context():
        job = jobs.fetch_job(job.id)
        assert job.get_status() == JobStatus.FINISHED
        assert 1 <= job.return_value() <= 100


def test_welcome_email_goes_through_smtp_to_the_mailbox(
    app: Flask, client: FlaskClient, sink: MailSink, work: Callable[[], bool]
) -> None:
    app.config["EXAMPLE_SMTP_PORT"] = sink.server_address[1]
    response = client.post("/welcome", data={"address": " ada@example.com "})
    assert response.status_code == 303
    assert client.get("/mailbox").get_data(as_text=True).count("Welcome to the reports") == 0
    work()
    [mail] = read_mailbox(app.config["EXAMPLE_MAILBOX"])
    assert mail.to == "ada@example.com"
    assert mail.subject == "Welcome to the reports"
    assert "Hello ada@example.com" in mail.body
    page = client.get("/mailbox").get_data(as_text=True)
    assert "Welcome to the reports" in page
    assert "ada@example.com" in page


def test_welcome_email_is_retried_while_the_mail_server_is_down(
    app: Flask, work: Callable[[], bool], caplog: pytest.LogCaptureFixture
) -> None:
    app.config["EXAMPLE_SMTP_PORT"] = 1  # refuses at once
    with app.app_context():
        job = send_welcome_email.enqueue("ada@example.com")
    work()
    with app.app_context():
        job = jobs.fetch_job(job.id)
        assert job.get_status() == JobStatus.SCHEDULED
        assert job.retries_left == 2


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "a@b", "two words@example.com", "a@example.com\nBcc: x@y.z"]
)
def test_bad_address_is_refused(app: Flask, client: FlaskClient, address: str) -> None:
    response = client.post("/welcome", data={"address": address})
    assert response.status_code == 400
    assert 'class="error"' in response.get_data(as_text=True)
    with app.app_context():
        assert jobs.get_queue().count == 0


def test_final_failure_reaches_the_failure_hook(
    app: Flask, work: Callable[[], bool], caplog: pytest.LogCaptureFixture
) -> None:
    app.config["EXAMPLE_FLAKY_FAILURE_RATE"] = 1
    caplog.set_level(logging.INFO, logger=app.logger.name)
    with app.app_context():
        job = flaky_sync.options(retry=Retry(max=1, backoff="fixed", delay=0)).enqueue("crm")
    work()
    assert f"job {job.id} (example_app.tasks.flaky_sync) failed after 2 attempt(s)" in caplog.text


def test_unreachable_redis_gives_503_and_keeps_the_report(tmp_path: Path) -> None:
    # Port 1 on loopback refuses at once: no Redis needed for this test.
    app = make_app(tmp_path, JOBS_REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()

    response = client.post("/reports", data={"title": "during an outage"})
    assert response.status_code == 503
    assert "job queue is unavailable" in response.get_data(as_text=True)
    [report] = reports(app)
    assert report.status == "failed"
    assert report.result == "could not be queued: the job queue was unavailable"

    assert client.post("/flaky").status_code == 503
    assert client.get("/").status_code == 200  # the list is in SQL and still shows

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 1
        db.session.remove()
        db.engine.dispose()
    jobs.state(app).close()


def test_every_schedule_of_the_example_runs(app: Flask, work: Callable[[], bool]) -> None:
    app.config["EXAMPLE_FLAKY_FAILURE_RATE"] = 0.0
    with app.app_context():
        control = jobs.schedules
        names = sorted(row["name"] for row in control.list())
        assert names == ["crm-sync", "heartbeat", "nightly-cleanup", "weekly-digest"]
        triggers = {row["name"]: row["trigger"] for row in control.list()}
        assert triggers["weekly-digest"] == "every Sunday at 17:03 (Europe/Berlin)"
        assert triggers["heartbeat"] == "every 10 seconds"
        ids = [control.run(name) for name in names]
    work()
    with app.app_context():
        for job_id in ids:
            job = jobs.fetch_job(job_id)
            assert job.get_status() == JobStatus.FINISHED, job_id
            assert job.meta["origin"].startswith("schedule:")
