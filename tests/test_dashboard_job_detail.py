"""The dashboard's page for one job, and the actions on that one job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import JobStatus

import jobs_app
from conftest import csrf, drain_history, failed_jobs, status_of, text
from flask_jobs import FlaskJob


def test_detail_shows_every_attempt_with_its_traceback(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    job = jobs_app.always_fails.enqueue(7)
    work()
    page = client.get(f"/jobs/job/{job.id}")
    assert page.status_code == 200
    body = text(page)
    assert "jobs_app.always_fails" in body and "fj-status-failed" in body
    for attempt in (1, 2, 3):
        assert f"<strong>Attempt {attempt}</strong>" in body
    # the job's own frames first, open; every frame (ours and RQ's too) behind a toggle
    assert body.count("<summary>Traceback (the job's own frames)</summary><pre>Traceback") == 3
    assert body.count("frame(s) of flask-jobs and RQ</summary><pre>Traceback") == 3
    assert body.count("ValueError: failure 7") >= 6  # the line above each traceback, and its end
    assert "raise ValueError(f&#34;failure {n}&#34;)" in body  # escaped, never raw
    assert ">Requeue</button>" in body and ">Cancel</button>" not in body
    # the live part alone, for htmx
    live = client.get(f"/jobs/job/{job.id}", headers={"HX-Request": "true"})
    assert "<html" not in text(live) and "Attempt 3" in text(live)


def test_detail_redacts_live_arguments_and_shows_progress(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    job = jobs_app.echo.enqueue(1, password="hunter2", nested={"api_key": "k", "ok": 1})
    body = text(client.get(f"/jobs/job/{job.id}"))
    assert "hunter2" not in body and "&#34;password&#34;: &#34;***&#34;" in body
    assert "&#34;api_key&#34;: &#34;***&#34;" in body and "&#34;ok&#34;: 1" in body
    assert "fj-status-queued" in body and "hx-trigger" in body  # refreshes while queued
    progress = jobs_app.report_progress.enqueue()
    work()
    body = text(client.get(f"/jobs/job/{progress.id}"))
    assert 'class="fj-progress"' in body and "width: 50%" in body and "half way" in body
    assert "&#39;done&#39;" in body  # the result's repr, from the history
    assert "hx-trigger" not in body  # finished: nothing left to refresh


def test_requeue_with_the_csrf_token(app: Flask, ctx: None, client: Any, work: Any) -> None:
    (job,) = failed_jobs(work, "first")
    token = csrf(client)
    response = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location.startswith(f"/jobs/job/{job.id}?done=")
    assert status_of(job.id) == JobStatus.QUEUED
    page = client.get(response.location)
    assert f"Requeued job {job.id}." in text(page)
    # requeueing a queued job again is refused, with a message, not an error page
    again = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": token})
    assert again.status_code == 303 and "Could+not+requeue" in again.location
    work()
    drain_history(app)
    body = text(client.get(f"/jobs/job/{job.id}"))
    assert "<strong>Attempt 2</strong>" in body
    assert f'<a href="/jobs/job/{job.id}">requeue:{job.id}#1</a>' in body


def test_messages_are_flashed_when_the_app_has_a_secret_key(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    app.secret_key = "test"
    (job,) = failed_jobs(work, "x")
    response = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": csrf(client)})
    assert response.status_code == 303 and response.location == f"/jobs/job/{job.id}"
    assert f"Requeued job {job.id}." in text(client.get(response.location))


def test_cancel_copy_and_delete_one_job(
    app: Flask, ctx: None, client: Any, redis_client: redis.Redis
) -> None:
    token = csrf(client)
    later = jobs_app.echo.enqueue_in(timedelta(hours=1), 3, secret="s3")
    body = text(client.get(f"/jobs/job/{later.id}"))
    assert ">Cancel</button>" in body and ">Requeue</button>" not in body
    response = client.post(f"/jobs/job/{later.id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303 and status_of(later.id) == JobStatus.CANCELED

    response = client.post(f"/jobs/job/{later.id}/copy", data={"csrf_token": token})
    assert response.status_code == 303
    copy_id = response.location.split("?")[0].rsplit("/", 1)[1]
    copy = jobs_app.jobs.fetch_job(copy_id)
    assert copy.id != later.id and copy.args == [3] and copy.kwargs == {"secret": "s3"}
    assert copy.origin_label == f"copy:{later.id}" and copy.get_status() == JobStatus.QUEUED

    # delete asks first, on a page of its own, then deletes
    confirm = client.post(f"/jobs/job/{later.id}/delete", data={"csrf_token": token})
    assert confirm.status_code == 200 and "Delete job" in text(confirm)
    assert FlaskJob.exists(later.id, connection=redis_client)
    assert 'name="confirm" value="yes"' in text(confirm)
    response = client.post(
        f"/jobs/job/{later.id}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert response.status_code == 303
    assert not FlaskJob.exists(later.id, connection=redis_client)
    drain_history(app)
    gone = client.get(f"/jobs/job/{later.id}")  # the history still knows it
    assert gone.status_code == 200 and "no longer in Redis" in text(gone)
    assert ">Requeue</button>" not in text(gone)
    response = client.post(f"/jobs/job/{later.id}/requeue", data={"csrf_token": token})
    assert response.status_code == 303 and "no+longer+in+Redis" in response.location
    assert (
        client.post(f"/jobs/job/{later.id}/explode", data={"csrf_token": token}).status_code == 404
    )


@pytest.mark.parametrize(
    "job_id",
    [
        "0123456789abcdef0123456789abcdef",
        "%00",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "a/b/c",
        "caf%C3%A9",
        "x" * 500,
        "a:b",
        "..",
        "%27%20OR%201%3D1%20--",
    ],
)
def test_unknown_or_odd_job_ids_are_a_404(app: Flask, client: Any, job_id: str) -> None:
    page = client.get(f"/jobs/job/{job_id}")
    assert page.status_code == 404
    body = text(page)
    assert "No job with id" in body or "is not a job id" in body
    assert "<script>alert" not in body
    token = csrf(client)
    action = client.post(f"/jobs/job/{job_id}/requeue", data={"csrf_token": token})
    assert action.status_code in (303, 404, 405)  # 405: a "/" in the id leaves no such action
