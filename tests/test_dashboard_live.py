"""The live sets (Running, Retrying, Scheduled, Failed now), run now / retry now, the
workers page with our worker fields and the scheduler processes, and their JSON API."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from rq.job import JobStatus
from rq.worker import Worker
from test_dashboard_oncall import ROW_ID, make_app

import jobs_app
from conftest import csrf, flask_command, stop_process, text, wait_for
from flask_jobs import Retry
from flask_jobs.keys import (
    WORKER_MODE_FIELD,
    WORKER_RSS_FIELD,
    WORKER_SLOTS_FIELD,
    WORKER_SUPERVISOR_FIELD,
    worker_executions_key,
)
from flask_jobs.ops import sets
from flask_jobs.ops.jobs import stop
from flask_jobs.scheduler.loop import Scheduler

#: What the workers page shows for a field a worker did not write.
DASH = "\u2013"


def _audit(client: Any) -> list[tuple[str, str, str | None, int]]:
    entries = client.get("/jobs/api/audit").get_json()["entries"]
    return [(e["source"], e["action"], e["target"], e["count"]) for e in entries]


def test_retry_now_and_run_now_from_the_lists_the_job_page_and_the_cli(
    app: Flask, ctx: None, client: Any, runner: FlaskCliRunner, work: Any
) -> None:
    # attempt 1 fails; attempt 2 is due in a minute (not a second: a slow burst worker
    # would otherwise run it too)
    retrying = jobs_app.flaky.options(retry=Retry(3, backoff="fixed", delay=60)).enqueue(
        "flaky-live", 10
    )
    work()
    delayed = jobs_app.add.enqueue_in(timedelta(hours=2), 1, 2)
    other = jobs_app.add.enqueue_in(timedelta(hours=3), 3, 4)
    page = text(client.get("/jobs/retrying"))
    assert "<h1>Retrying</h1>" in page and "Live now, in Redis" in page
    assert "<b>1</b> job(s)" in page and ROW_ID.findall(page) == [retrying.id]
    # the attempt it will run as, and the error it is retried after
    cells = re.search(f'value="{retrying.id}" aria-label.*?</tr>', page, re.S)
    assert cells and '<td class="fj-num">2</td>' in cells.group(0)
    assert "ConnectionError: attempt 1 failed" in page
    token = csrf(client)
    # "Retry now" on a row posts that one job, and comes back to the list
    done = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": token, "action": "run_now", "back_to": "retrying",
              "job_ids": retrying.id},
    )  # fmt: skip
    assert done.status_code == 303 and done.location.startswith("/jobs/retrying")
    assert jobs_app.jobs.fetch_job(retrying.id).get_status() == JobStatus.QUEUED
    assert "Queued 1 job(s)." in text(client.get(done.location))
    assert retrying.id in jobs_app.jobs.connection.lrange("rq:queue:default", 0, -1)[0].decode()
    # run now from the job's page
    detail = text(client.get(f"/jobs/job/{delayed.id}"))
    assert ">Run now</button>" in detail
    client.post(f"/jobs/job/{delayed.id}/run_now", data={"csrf_token": token})
    assert jobs_app.jobs.fetch_job(delayed.id).get_status() == JobStatus.QUEUED
    # and from the CLI: a job that is not scheduled is one clear line
    result = runner.invoke(args=["jobs", "run-now", other.id])
    assert result.exit_code == 0, result.output
    assert f"queued {other.id} on default to run now (attempt 1)" in result.output
    refused = runner.invoke(args=["jobs", "run-now", other.id])
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"Error: job {other.id} is queued; only scheduled jobs (delayed, or waiting for a "
        "retry) can be run now"
    )
    assert ROW_ID.findall(text(client.get("/jobs/scheduled"))) == []
    assert _audit(client)[:4] == [
        ("cli", "run_now", other.id, 0),
        ("cli", "run_now", other.id, 1),
        ("dashboard", "run_now", delayed.id, 1),
        ("dashboard", "run_now", retrying.id, 1),
    ]
    # the retried job runs its next attempt, and the policy keeps counting
    work()
    job = jobs_app.jobs.fetch_job(retrying.id)
    assert job.get_status() == JobStatus.SCHEDULED and job.attempt == 3


def test_running_lists_progress_worker_and_stops_after_a_confirmation(
    app: Flask, ctx: None, client: Any, subprocess_env: dict[str, str]
) -> None:
    job = jobs_app.whoami.options(timeout=120).enqueue(pause=60.0)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        running = jobs_app.jobs.fetch_job(job.id)
        running.meta["progress"] = {"fraction": 0.4, "message": "step <2>"}
        running.save_meta()
        page = text(client.get("/jobs/running"))
        assert "<h1>Running</h1>" in page and ROW_ID.findall(page) == [job.id]
        assert '40% <span class="fj-muted">step &lt;2&gt;</span>' in page
        (worker,) = Worker.all(connection=jobs_app.jobs.connection)
        assert f"#worker-{worker.name}" in page and re.search(
            r"<td title=\"started [^\"]+\">\d+ s</td>", page
        )
        assert ">Stop…</button>" in page
        token = csrf(client)
        form = {"csrf_token": token, "action": "stop", "back_to": "running", "job_ids": job.id}
        confirm = client.post("/jobs/jobs/bulk", data=form)
        assert confirm.status_code == 200 and "Stop 1 running job(s)?" in text(confirm)
        assert 'name="back_to" value="running"' in text(confirm)
        assert job.get_status() == JobStatus.STARTED  # nothing before the confirmation
        done = client.post("/jobs/jobs/bulk", data={**form, "confirm": "yes"})
        assert done.status_code == 303 and done.location.startswith("/jobs/running")
        wait_for(lambda: job.get_status() == JobStatus.STOPPED)
        assert "No job is running now." in text(client.get("/jobs/running"))
        assert _audit(client)[0] == ("dashboard", "stop", job.id, 1)
    finally:
        with contextlib.suppress(Exception):
            stop(jobs_app.jobs.state(app), jobs_app.jobs.fetch_job(job.id))
        stop_process(proc)


def test_scheduled_split_counts_pages_and_estimates(
    app: Flask, ctx: None, client: Any, monkeypatch: Any
) -> None:
    conn = jobs_app.jobs.connection
    delayed = [jobs_app.add.enqueue_in(timedelta(minutes=10 + n), n, n) for n in range(7)]
    # three that ran before: waiting for a retry
    for job in delayed[:3]:
        conn.hset(job.key, "started_at", "2026-12-01T10:00:00.000000Z")
    state = jobs_app.jobs.state(app)
    assert sets.live_counts(state) == {"failed": 0, "running": 0, "retrying": 3, "scheduled": 4}
    first = client.get("/jobs/scheduled?limit=3")
    assert ROW_ID.findall(text(first)) == [j.id for j in delayed[3:6]]
    assert 'href="/jobs/scheduled?limit=3&amp;offset=3"' in text(first)
    second = text(client.get("/jobs/scheduled?limit=3&offset=3"))
    assert ROW_ID.findall(second) == [delayed[6].id] and "« Previous page" in second
    # past the cap, the counts are estimates from the entries read, and say so
    monkeypatch.setattr(sets, "SPLIT_CAP", 4)  # reads d0-d2 (retrying) and d3
    page = sets.live_set(state, "scheduled", limit=2)
    assert not page.exact and page.total == 2 and [r["id"] for r in page.rows] == [delayed[3].id]
    assert "<b>about 2</b> job(s)" in text(client.get("/jobs/scheduled?limit=2"))
    monkeypatch.undo()
    data = client.get("/jobs/api/live/retrying").get_json()
    assert data["total"] == 3 and [j["id"] for j in data["jobs"]] == [j.id for j in delayed[:3]]
    assert client.get("/jobs/api/live/scheduled?queue=nope").status_code == 404
    assert client.get("/jobs/api/live/nope").get_json()["status"] == 404
    assert client.get("/jobs/retrying?limit=0").status_code == 400


def test_workers_page_shows_our_fields_grouped_by_supervisor(
    app: Flask, ctx: None, client: Any
) -> None:
    conn = jobs_app.jobs.connection
    state = jobs_app.jobs.state(app)
    running = jobs_app.whoami.enqueue()
    running.meta["progress"] = {"fraction": 0.5}
    running.save_meta()
    conn.hset(running.key, "started_at", "2026-12-01T10:00:00.000000Z")
    workers = []
    for n in range(3):
        worker = Worker([state.queue("default")], name=f"w{n}", connection=conn)
        worker.register_birth()
        workers.append(worker)
    conn.hset(workers[0].key, mapping={
        WORKER_MODE_FIELD: "threads", WORKER_SLOTS_FIELD: "4", WORKER_RSS_FIELD: str(150 * 2**20),
        WORKER_SUPERVISOR_FIELD: "sup-a",
    })  # fmt: skip
    # the jobs a worker runs are RQ's: its execution set, "<job id>:<execution id>" members
    conn.sadd(worker_executions_key("w0"), f"{running.id}:e1", "gone-1:e2")
    conn.hset(workers[1].key, mapping={WORKER_SUPERVISOR_FIELD: "sup-a", WORKER_MODE_FIELD: "fork"})
    conn.sadd(worker_executions_key("w2"), "not a member")
    page = text(client.get("/jobs/workers"))
    assert "supervisor <code>sup-a</code>: 2 process(es)" in page and "2 of 5 slot(s) busy" in page
    assert "workers on their own" in page and "<b>3</b> worker process(es)" in page
    first = page.split('id="worker-w0"')[1].split("</tr>")[0]
    assert "<td>threads</td>" in first and '<td class="fj-num">4</td>' in first
    assert "150 MB" in first and running.id[:9] in first and "whoami" in first
    assert "50%" in first and "gone-1" in first  # an id whose job is gone shows alone
    second = page.split('id="worker-w1"')[1].split("</tr>")[0]
    assert "<td>fork</td>" in second and second.count(DASH) >= 2 and "idle" in second
    third = page.split('id="worker-w2"')[1].split("</tr>")[0]
    assert f"<td>{DASH}</td>" in third  # unreadable or absent fields show as a dash
    assert "No scheduler process is running" in page
    data = client.get("/jobs/api/workers").get_json()
    by_name = {w["name"]: w for w in data["workers"]}
    assert by_name["w0"]["rss"] == 150 * 2**20 and by_name["w0"]["busy"] == 2
    assert by_name["w2"]["mode"] is None and by_name["w2"]["busy"] == 0
    assert [j["id"] for j in by_name["w0"]["jobs"]] == [running.id, "gone-1"]


def test_workers_page_shows_the_scheduler_processes_and_the_leader(
    app: Flask, ctx: None, client: Any
) -> None:
    state = jobs_app.jobs.state(app)
    leader, standby = Scheduler(app, state), Scheduler(app, state)
    threads = [threading.Thread(target=s.run, daemon=True) for s in (leader, standby)]
    threads[0].start()
    wait_for(lambda: leader.leading)
    threads[1].start()
    try:
        wait_for(lambda: len(client.get("/jobs/api/workers").get_json()["schedulers"]) == 2)
        page = text(client.get("/jobs/workers"))
        assert page.index(leader.token) < page.index(standby.token)
        assert ">leads</span>" in page and ">stands by</span>" in page
        data = client.get("/jobs/api/workers").get_json()["schedulers"]
        assert [(s["token"], s["leads"]) for s in data] == [
            (leader.token, True),
            (standby.token, False),
        ]
        assert data[0]["pid"] is not None and data[0]["last_tick"].endswith("+00:00")
    finally:
        for s in (leader, standby):
            s.stop()
        for thread in threads:
            thread.join(10)
    # a stopped process leaves the set at once
    assert client.get("/jobs/api/workers").get_json()["schedulers"] == []


def test_viewers_see_no_live_actions_and_get_403(
    redis_url: str, redis_client: Any, tmp_path: Any
) -> None:
    app = make_app(redis_url, tmp_path, JOBS_DASHBOARD_AUTH=lambda: "read")
    client = app.test_client()
    with app.app_context():
        jobs_app.db.create_all()
        job = jobs_app.add.enqueue_in(timedelta(hours=1), 1, 2)
    for url in ("/jobs/scheduled", "/jobs/retrying", "/jobs/running", "/jobs/failed"):
        body = text(client.get(url)).split("</header>", 1)[1]
        body = re.sub(r'<button type="button" class="fj-copy".*?</button>', "", body)
        assert 'method="post"' not in body and "<button" not in body, url
    token = csrf(client)
    for action in ("run_now", "stop"):
        answer = client.post(
            "/jobs/jobs/bulk", data={"csrf_token": token, "action": action, "job_ids": job.id}
        )
        assert answer.status_code == 403
    assert client.post(f"/jobs/job/{job.id}/run_now", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert jobs_app.jobs.fetch_job(job.id).get_status() == JobStatus.SCHEDULED
