"""The example app's own login in front of the dashboard: admin may act, viewer may look."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import JobStatus

from example_app import create_app, jobs
from example_app.tasks import build_report

from .support import REDIS_URL, login


def test_dashboard_asks_for_login_first(client: FlaskClient) -> None:
    response = client.get("/jobs/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/jobs/"
    assert client.get("/jobs/api/overview").status_code == 302
    page = client.get("/login?next=/jobs/").get_data(as_text=True)
    assert 'name="next" value="/jobs/"' in page


def test_wrong_password_is_refused(client: FlaskClient) -> None:
    response = login(client, "admin", "nope")
    assert response.status_code == 401
    assert "Unknown name or wrong password." in response.get_data(as_text=True)
    assert login(client, "nobody", "admin").status_code == 401
    assert client.get("/jobs/").status_code == 302


def test_login_never_redirects_off_site(client: FlaskClient) -> None:
    for target in ("//evil.example/", "https://evil.example/"):
        response = client.post(
            "/login", data={"name": "admin", "password": "admin", "next": target}
        )
        assert response.headers["Location"] == "/"


def test_admin_may_act_and_viewer_may_only_look(
    app: Flask, client: FlaskClient, work: Callable[[], bool]
) -> None:
    with app.app_context():
        job = build_report.enqueue(9999)  # no such report: fails, and has no retries
    work()

    response = login(client, "viewer", "viewer")
    assert response.status_code == 303
    assert response.headers["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200
    assert client.get(f"/jobs/job/{job.id}").status_code == 200
    client.get("/jobs/jobs")
    token = client.get_cookie("flask_jobs_csrf")
    assert token is not None
    refused = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": token.value})
    assert refused.status_code == 403
    with app.app_context():
        assert jobs.fetch_job(job.id).get_status() == JobStatus.FAILED

    client.post("/logout")
    assert client.get("/jobs/").status_code == 302
    assert login(client, "admin", "admin").status_code == 303
    done = client.post(f"/jobs/job/{job.id}/requeue", data={"csrf_token": token.value})
    assert done.status_code in (200, 303)
    with app.app_context():
        assert jobs.fetch_job(job.id).get_status() == JobStatus.QUEUED


def test_a_production_app_needs_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        create_app(
            {"JOBS_REDIS_URL": REDIS_URL, "SQLALCHEMY_DATABASE_URI": "sqlite://"},
            instance_path=str(tmp_path / "instance"),
        )


def test_dashboard_header_names_the_user_and_signs_out(client: FlaskClient) -> None:
    login(client, "viewer", "viewer")
    page = client.get("/jobs/").get_data(as_text=True)
    assert "signed in as</span> <strong>viewer</strong>" in page and ">read-only<" in page
    assert '<form class="fj-inline" method="post" action="/logout">' in page
    assert client.post("/logout").status_code == 303
    assert client.get("/jobs/").status_code == 302  # signed out
    login(client, "admin", "admin")
    page = client.get("/jobs/").get_data(as_text=True)
    assert "<strong>admin</strong>" in page and ">read-only<" not in page
