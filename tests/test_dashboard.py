"""The dashboard's frame: access rules, the overview, errors, and a real browser."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from rq.job import JobStatus

import jobs_app
from browser import browser_page, serve
from conftest import wait_for


def test_overview_shows_counts_and_workers(app: Flask, ctx: None, client: Any, work: Any) -> None:
    jobs_app.add.enqueue(1, 2)
    jobs_app.fail.enqueue("x")
    work()
    jobs_app.add.options(queue="high").enqueue(1, 2)
    page = client.get("/jobs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Overview</h1>" in html and "high" in html
    assert "fj-chart" in html  # the throughput chart, from the history
    assert "jobs_app.fail" in html  # among the failing functions
    live = client.get("/jobs/?range=24h", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "<html" not in live.get_data(as_text=True)


def test_bad_range_is_a_400(app: Flask, client: Any) -> None:
    page = client.get("/jobs/?range=forever")
    assert page.status_code == 400
    assert "must be one of 1h, 24h, 7d" in page.get_data(as_text=True)


def test_closed_outside_debug_without_an_auth_hook(redis_url: str, redis_client: Any) -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "TESTING": False})
    page = app.test_client().get("/jobs/")
    assert page.status_code == 403
    assert "set JOBS_DASHBOARD_AUTH" in page.get_data(as_text=True)


def test_auth_hook_decides(redis_url: str, redis_client: Any) -> None:
    allowed = {"value": False}
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "TESTING": False,
            "JOBS_DASHBOARD_AUTH": lambda: allowed["value"],
        }
    )
    client = app.test_client()
    assert client.get("/jobs/").status_code == 403
    allowed["value"] = True
    assert client.get("/jobs/").status_code == 200


def test_redis_down_is_a_503_page() -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": "redis://127.0.0.1:1/0"})
    page = app.test_client().get("/jobs/")
    assert page.status_code == 503
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in page.get_data(as_text=True)


def test_history_database_down_keeps_the_overview(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "JOBS_HISTORY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/x",
        }
    )
    page = app.test_client().get("/jobs/")
    assert page.status_code == 200
    assert "history is off or unavailable" in page.get_data(as_text=True)


def test_overview_in_a_real_browser(app: Flask, ctx: None, work: Any) -> None:
    jobs_app.fail.enqueue("seen in the browser")
    work()
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/")
        assert page.locator("h1").inner_text() == "Overview"
        assert page.locator("#fj-queue-counts").inner_text().count("default") == 1
        assert page.locator("svg.fj-chart").count() == 1
        # htmx is loaded and polls the live part (every 5 s by default)
        assert page.evaluate("typeof htmx") == "object"
        assert page.locator("#fj-overview-live[hx-trigger]").count() == 1
        # the operator turns polling off: the choice sticks in a cookie
        with page.expect_navigation():
            page.select_option("select[name=poll]", "0")
        assert page.locator("#fj-overview-live[hx-trigger]").count() == 0
        page.goto(f"{base}/jobs/")
        assert page.locator("#fj-overview-live[hx-trigger]").count() == 0


def _token(client: Any, path: str = "/jobs/queues") -> str:
    client.get(path)
    cookie = client.get_cookie("flask_jobs_csrf")
    assert cookie is not None
    return str(cookie.value)


def test_per_action_permissions(redis_url: str, redis_client: Any) -> None:
    asked: list[str] = []

    def auth(action: str) -> bool:
        asked.append(action)
        return action in ("view", "pause_queue")

    app = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "JOBS_DASHBOARD_AUTH": auth})
    client = app.test_client()
    token = _token(client)
    paused = client.post("/jobs/queues/default/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    emptied = client.post("/jobs/queues/default/empty", data={"csrf_token": token, "confirm": "1"})
    assert emptied.status_code == 403
    assert "not allowed to empty queue" in emptied.get_data(as_text=True)
    assert {"view", "pause_queue", "empty_queue"} <= set(asked)


def test_post_from_another_origin_is_refused(app: Flask, client: Any) -> None:
    token = _token(client)
    evil = client.post(
        "/jobs/queues/default/pause",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 400 and "another site" in evil.get_data(as_text=True)
    same = client.post(
        "/jobs/queues/default/pause",
        data={"csrf_token": token},
        headers={"Origin": "http://localhost"},
    )
    assert same.status_code == 303


def test_xss_in_job_arguments_is_escaped(app: Flask, ctx: None, client: Any, work: Any) -> None:
    job = jobs_app.fail.enqueue("<script>alert(1)</script>")
    work()
    for path in (f"/jobs/job/{job.id}", "/jobs/jobs", "/jobs/failures"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/jobs/job/{job.id}").get_data(
        as_text=True
    )


def test_requeue_click_in_a_real_browser(app: Flask, ctx: None, work: Any) -> None:
    failing = jobs_app.fail.enqueue("clicked back to life")
    work()
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/job/{failing.id}")
        assert "RuntimeError: clicked back to life" in page.content()  # the traceback
        with page.expect_navigation():
            page.get_by_role("button", name="Requeue").click()
        wait_for(lambda: failing.get_status() == JobStatus.QUEUED, timeout=10)
        # a real worker runs it again (it fails again: a new attempt in the history)
        work()
        page.goto(f"{base}/jobs/job/{failing.id}")
        assert page.locator("text=Attempt 2").count() == 1


def test_pause_a_schedule_in_a_real_browser(
    redis_url: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'b.db'}",
            "JOBS_SCHEDULE": {"tick": {"job": "jobs_app:add", "args": [1, 2], "every": "10s"}},
        }
    )
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/schedules")
        with page.expect_navigation():
            page.get_by_role("button", name="Pause").click()
        assert "paused" in page.locator("table").inner_text()
    with app.app_context():
        (row,) = jobs_app.jobs.schedules.list()
        assert row["paused"] is True
