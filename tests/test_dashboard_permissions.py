"""Who may do what on the jobs pages: a read-only viewer, and per-action permissions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus

import jobs_app
from conftest import csrf, failed_jobs, status_of, text


@pytest.fixture
def read_only(app: Flask, redis_url: str, database_url: str) -> Iterator[Flask]:
    """A second app on the same Redis and database whose auth hook says read-only."""
    viewer = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JOBS_DASHBOARD_AUTH": lambda: "read",
        }
    )
    yield viewer
    with viewer.app_context():
        jobs_app.db.engine.dispose()


def test_read_only_users_see_no_buttons_and_cannot_post(
    app: Flask, ctx: None, work: Any, read_only: Flask
) -> None:
    (job,) = failed_jobs(work, "x")
    viewer = read_only.test_client()
    for url in ("/jobs/jobs", f"/jobs/job/{job.id}", "/jobs/failures", "/jobs/jobs?status=failed"):
        page = viewer.get(url)
        assert page.status_code == 200
        body = text(page)
        assert 'method="post"' not in body and 'name="job_ids"' not in body
        # the copy buttons of job ids change nothing: they stay
        main = re.sub(r'<button type="button" class="fj-copy".*?</button>', "", body)
        assert "<button" not in main.split("</header>", 1)[1].replace(
            '<button type="submit" class="fj-primary">Filter</button>', ""
        )
    assert job.id in text(viewer.get("/jobs/jobs"))
    token = csrf(viewer)
    for url in (f"/jobs/job/{job.id}/requeue", "/jobs/jobs/bulk", "/jobs/failures/delete-group"):
        response = viewer.post(url, data={"csrf_token": token, "job_ids": job.id})
        assert response.status_code == 403
    assert status_of(job.id) == JobStatus.FAILED


def test_buttons_follow_the_per_action_permissions(
    app: Flask, ctx: None, work: Any, redis_url: str, database_url: str
) -> None:
    asked: list[str] = []

    def requeue_only(action: str) -> bool:
        asked.append(action)
        return action in ("view", "requeue")

    operator = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JOBS_DASHBOARD_AUTH": requeue_only,
        }
    )
    (job,) = failed_jobs(work, "x")
    client = operator.test_client()
    listing = text(client.get("/jobs/jobs?status=failed"))
    assert 'value="requeue">Requeue</button>' in listing
    assert "Requeue all matching failed jobs" in listing
    assert 'value="cancel"' not in listing and 'value="delete"' not in listing
    detail = text(client.get(f"/jobs/job/{job.id}"))
    assert f"/jobs/job/{job.id}/requeue" in detail
    assert f"/jobs/job/{job.id}/delete" not in detail and f"/jobs/job/{job.id}/copy" not in detail
    failures = text(client.get("/jobs/failures"))
    assert "Requeue failed</button>" in failures and "Delete failed" not in failures
    queues = text(client.get("/jobs/queues"))
    assert "/pause" not in queues and "/empty" not in queues
    assert asked.count("delete") <= 3  # asked once per request, not once per button
    token = csrf(client)
    denied = client.post(f"/jobs/job/{job.id}/delete", data={"csrf_token": token})
    assert denied.status_code == 403
    done = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": token})
    assert done.status_code == 303 and status_of(job.id) == JobStatus.QUEUED
    with operator.app_context():
        jobs_app.db.engine.dispose()
