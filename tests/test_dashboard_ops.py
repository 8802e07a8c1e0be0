"""Dashboard pages for operators: queues (pause, resume, empty), workers, schedules."""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from rq.command import send_stop_job_command
from rq.job import JobStatus
from rq.worker import Worker

import jobs_app
from conftest import flask_command, stop_process, wait_for
from flask_jobs.keys import PAUSED_QUEUES_KEY

SCHEDULE = {
    "ten": {"job": "jobs_app:add", "args": [1, 1], "every": 10},
    "nightly": {"job": "jobs_app:add", "args": [2, 2], "cron": "30 2 * * *"},
    "off": {"job": "jobs_app:add", "args": [3, 3], "every": 60, "enabled": False},
}
BAD_NAMES = ["nope", "bad name", "ünïcödé", "' OR 1=1 --", "<script>x</script>", "a" * 300, "%00"]


@pytest.fixture
def make_app(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Callable[..., Flask]:
    """A jobs_app with extra config (the `app` fixture's Redis, flushed around the test)."""

    def make(**config: Any) -> Flask:
        app = jobs_app.create_app(
            {
                "JOBS_REDIS_URL": redis_url,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'ops.db'}",
                **config,
            }
        )
        app.instance_path = str(tmp_path / "instance")
        return app

    return make


def csrf(client: Any, path: str = "/jobs/queues") -> str:
    """GET a page, as a browser would first, and read the token its forms carry."""
    response = client.get(path)
    assert response.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, "the page has no form with a CSRF token"
    cookie = client.get_cookie("flask_jobs_csrf")
    assert cookie is not None and cookie.value == match.group(1)
    return match.group(1)


def row(page: str, name: str) -> list[str]:
    """The text of each cell of the table row that starts with ``name``."""
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = [
            re.sub(r"<[^>]+>", " ", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        ]
        cells = [" ".join(cell.split()) for cell in cells]
        if cells and cells[0].split(" ")[0] == html.escape(name):
            return cells
    raise AssertionError(f"no row for {name!r}")


def test_queues_page_lists_queues_with_counts(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    jobs_app.fail.enqueue("boom")
    work()
    jobs_app.add.enqueue(1, 2)
    jobs_app.add.enqueue(3, 4)
    jobs_app.add.options(queue="low").enqueue(5, 6)
    page = client.get("/jobs/queues")
    assert page.status_code == 200
    assert page.text.index("<code>default</code>") < page.text.index("<code>low</code>")
    # queue, state, queued, oldest, workers, started, scheduled, deferred, failed, finished, ...
    default = row(page.text, "default")
    assert default[1:3] == ["active", "2"]
    assert re.fullmatch(r"\d+ s", default[3])
    assert default[4] == "0"
    assert default[8] == "1"
    assert row(page.text, "low")[2] == "1"
    assert "hx-trigger=\"every 5s [document.visibilityState === 'visible']\"" in page.text

    partial = client.get("/jobs/queues", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "<code>low</code>" in partial.text
    assert "hx-get" not in client.get("/jobs/queues?poll=0").text


def test_oldest_age_survives_a_missing_job(app: Flask, ctx: None, client: Any) -> None:
    job = jobs_app.add.enqueue(1, 2)
    jobs_app.jobs.connection.delete(job.key)  # an id left in the list without its job
    assert row(client.get("/jobs/queues").text, "default")[2:4] == ["1", "?"]
    jobs_app.add.enqueue(3, 4)
    assert re.fullmatch(r"\d+ s", row(client.get("/jobs/queues").text, "default")[3])


def test_pause_and_resume_a_queue(app: Flask, ctx: None, client: Any, work: Any) -> None:
    token = csrf(client)
    response = client.post("/jobs/queues/default/pause", data={"csrf_token": token})
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.location).query) == {
        "done": ["queue-paused"],
        "name": ["default"],
    }
    assert jobs_app.jobs.connection.sismember(PAUSED_QUEUES_KEY, "default")
    page = client.get(response.location).text
    assert "Queue default is paused" in page
    assert row(page, "default")[1] == "paused" and ">Resume</button>" in page

    job = jobs_app.add.enqueue(1, 2)
    assert not work()
    assert job.get_status() == JobStatus.QUEUED

    response = client.post("/jobs/queues/default/resume", data={"csrf_token": token})
    assert response.status_code == 303
    assert not jobs_app.jobs.connection.sismember(PAUSED_QUEUES_KEY, "default")
    assert work()
    assert job.get_status() == JobStatus.FINISHED


def test_worker_skips_only_the_paused_queue(app: Flask, ctx: None, work: Any) -> None:
    conn = jobs_app.jobs.connection
    conn.sadd(PAUSED_QUEUES_KEY, "low")
    low = jobs_app.add.options(queue="low").enqueue(1, 1)
    high = [jobs_app.add.enqueue(i, i) for i in range(3)]
    assert work(queues=["default", "low"])
    assert [job.get_status() for job in high] == [JobStatus.FINISHED] * 3
    assert low.get_status() == JobStatus.QUEUED
    # With one queue left to dequeue from, RQ moves jobs through an intermediate list.
    assert conn.llen(jobs_app.jobs.get_queue().intermediate_queue_key) == 0

    conn.srem(PAUSED_QUEUES_KEY, "low")
    assert work(queues=["default", "low"])
    assert low.get_status() == JobStatus.FINISHED


def test_empty_asks_then_deletes(app: Flask, ctx: None, client: Any) -> None:
    jobs = [jobs_app.add.enqueue(i, i) for i in range(3)]
    token = csrf(client)
    confirm = client.post("/jobs/queues/default/empty", data={"csrf_token": token})
    assert confirm.status_code == 200
    assert "Delete 3 job(s)" in confirm.text and 'name="confirm" value="1"' in confirm.text
    assert jobs_app.jobs.get_queue().count == 3

    response = client.post("/jobs/queues/default/empty", data={"csrf_token": token, "confirm": "1"})
    assert response.status_code == 303
    assert "Queue default is emptied: 3 job(s) deleted." in client.get(response.location).text
    assert jobs_app.jobs.get_queue().count == 0
    assert not any(jobs_app.jobs.connection.exists(job.key) for job in jobs)

    bad = client.post("/jobs/queues/default/empty", data={"csrf_token": token, "confirm": "x"})
    assert bad.status_code == 400


def test_post_without_a_valid_token_is_refused(app: Flask, ctx: None, client: Any) -> None:
    csrf(client)
    assert client.post("/jobs/queues/default/pause").status_code == 400
    assert (
        client.post("/jobs/queues/default/pause", data={"csrf_token": "x" * 43}).status_code == 400
    )
    fresh = app.test_client()  # a form posted from elsewhere: no cookie at all
    assert fresh.post("/jobs/queues/default/pause", data={"csrf_token": "x"}).status_code == 400
    assert not jobs_app.jobs.connection.sismember(PAUSED_QUEUES_KEY, "default")
    assert client.get("/jobs/queues/default/pause").status_code == 405


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unknown_or_malformed_names_are_404(app: Flask, client: Any, name: str) -> None:
    token = csrf(client)
    for action in ("pause", "resume", "empty"):
        response = client.post(f"/jobs/queues/{name}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, (action, response.text)
    for action in ("run", "pause", "resume"):
        response = client.post(f"/jobs/schedules/{name}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, (action, response.text)
    assert "<script>x" not in response.text


@pytest.mark.parametrize(
    "query",
    ["done=bogus", "done=queue-paused&name=%3Cscript%3E", "done=queue-emptied&count=many"],
)
def test_bad_done_messages_are_400(app: Flask, client: Any, query: str) -> None:
    for page in ("/jobs/queues", "/jobs/schedules"):
        response = client.get(f"{page}?{query}")
        assert response.status_code == 400
        assert "<script>" not in response.text


def test_workers_page_shows_a_running_worker(
    app: Flask, ctx: None, client: Any, subprocess_env: dict[str, str]
) -> None:
    assert "No worker is running" in client.get("/jobs/workers").text
    job = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        running = jobs_app.jobs.fetch_job(job.id)
        running.meta["progress"] = {"fraction": 0.25, "message": "a quarter <done>"}
        running.save_meta()
        (worker,) = Worker.all(connection=jobs_app.jobs.connection)
        page = client.get("/jobs/workers").text
        cells = row(page, worker.name)
        # worker (host, pid, state), mode, slots, busy, RSS, queues, running now, heartbeat,
        # up for, finished, failed
        assert f"pid {proc.pid}" in cells[0] and cells[0].endswith(" busy")
        assert cells[3] == "1"  # RQ's current job, at least, when ours are not written
        assert cells[5] == "default"
        assert f'data-copy="{job.id}"' in page and job.id[:9] in cells[6]
        assert "whoami" in cells[6] and " for " in cells[6]
        assert "25% a quarter &lt;done&gt;" in cells[6]
        assert '<span style="width: 25%"></span>' in page
        assert cells[7].endswith(" ago") and cells[9:] == ["0", "0"]
        partial = client.get("/jobs/workers", headers={"HX-Request": "true"}).text
        assert "<html" not in partial and worker.name in partial
        assert row(client.get("/jobs/queues").text, "default")[4] == "1"
    finally:
        with contextlib.suppress(Exception):  # stop the job, so the worker exits at once
            send_stop_job_command(jobs_app.jobs.connection, job.id)
        stop_process(proc)


def test_schedules_page_and_actions(make_app: Callable[..., Flask]) -> None:
    app = make_app(JOBS_SCHEDULE=SCHEDULE)
    client = app.test_client()
    page = client.get("/jobs/schedules").text
    assert row(page, "ten")[1:4] == ["every 10 seconds", "UTC", "active"]
    assert row(page, "nightly")[1] == "every day at 02:30 (UTC)"
    assert row(page, "off")[3] == "disabled"
    assert row(page, "ten")[6] == "-"

    token = csrf(client, "/jobs/schedules")
    response = client.post("/jobs/schedules/ten/run", data={"csrf_token": token})
    assert response.status_code == 303
    job_id = parse_qs(urlsplit(response.location).query)["job"][0]
    with app.app_context():
        job = jobs_app.jobs.fetch_job(job_id)
        assert job.get_status() == JobStatus.QUEUED and job.meta["origin"] == "schedule:ten"
    page = client.get(response.location).text
    assert f"Schedule ten enqueued job {job_id}." in page
    assert job_id in row(page, "ten")[6] and "queued" in row(page, "ten")[6]

    assert client.post("/jobs/schedules/ten/pause", data={"csrf_token": token}).status_code == 303
    cells = row(client.get("/jobs/schedules").text, "ten")
    assert cells[3] == "paused" and cells[4] == "-" and "Resume" in cells[8]
    assert client.post("/jobs/schedules/ten/resume", data={"csrf_token": token}).status_code == 303
    cells = row(client.get("/jobs/schedules").text, "ten")
    assert cells[3] == "active" and cells[4].endswith(" UTC")


def test_messages_are_flashed_when_the_app_has_a_secret_key(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(SECRET_KEY="test", JOBS_SCHEDULE=SCHEDULE)
    client = app.test_client()
    token = csrf(client, "/jobs/schedules")
    response = client.post("/jobs/schedules/nightly/pause", data={"csrf_token": token})
    assert response.status_code == 303 and "done=" not in response.location
    assert "Schedule nightly is paused." in client.get(response.location).text
    assert "Schedule nightly is paused." not in client.get("/jobs/schedules").text


def test_read_only_users_see_no_buttons_and_cannot_post(make_app: Callable[..., Flask]) -> None:
    app = make_app(JOBS_DASHBOARD_AUTH=lambda: "read", JOBS_SCHEDULE=SCHEDULE)
    client = app.test_client()
    with app.app_context():
        jobs_app.add.enqueue(1, 2)
    for path in ("/jobs/queues", "/jobs/workers", "/jobs/schedules"):
        page = client.get(path)
        assert page.status_code == 200
        assert 'method="post"' not in page.text
        for button in ("Pause", "Resume", "Empty", "Run now"):
            assert f">{button}" not in page.text
    token = client.get_cookie("flask_jobs_csrf").value
    for path in ("/jobs/queues/default/pause", "/jobs/schedules/ten/run"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert not jobs_app.jobs.connection.sismember(PAUSED_QUEUES_KEY, "default")


def test_a_running_worker_waits_out_a_pause(
    app: Flask, ctx: None, client: Any, subprocess_env: dict[str, str]
) -> None:
    conn = jobs_app.jobs.connection
    conn.sadd(PAUSED_QUEUES_KEY, "default")
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: Worker.all(connection=conn))
        job = jobs_app.add.enqueue(1, 2)
        time.sleep(2.5)  # more than the worker's 1 s look at the paused set
        assert job.get_status() == JobStatus.QUEUED
        (worker,) = Worker.all(connection=conn)
        cells = row(client.get("/jobs/workers").text, worker.name)
        assert cells[0].endswith(" idle") and cells[3] == "0" and cells[6] == "idle"
        conn.srem(PAUSED_QUEUES_KEY, "default")
        wait_for(lambda: job.get_status() == JobStatus.FINISHED, timeout=10)
    finally:
        stop_process(proc)
