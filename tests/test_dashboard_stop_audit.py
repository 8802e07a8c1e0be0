"""Stopping a running job (dashboard and CLI, with a real worker) and the audit log of actions."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskCliRunner
from rq.job import JobStatus
from test_dashboard_oncall import make_app

import jobs_app
from conftest import csrf, failed_jobs, flask_command, stop_process, text, wait_for
from flask_jobs.ops.jobs import stop


def test_stop_a_running_job_from_its_page_and_the_cli(
    app: Flask,
    ctx: None,
    client: Any,
    runner: FlaskCliRunner,
    subprocess_env: dict[str, str],
) -> None:
    first = jobs_app.whoami.options(timeout=120).enqueue(pause=60.0)
    second = jobs_app.whoami.options(timeout=120).enqueue(pause=60.0)
    waiting = jobs_app.add.options(queue="other").enqueue(1, 2)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: first.get_status() == JobStatus.STARTED)
        page = text(client.get(f"/jobs/job/{first.id}"))
        assert ">Stop…</button>" in page
        token = csrf(client)
        confirm = client.post(f"/jobs/job/{first.id}/stop", data={"csrf_token": token})
        assert confirm.status_code == 200 and "Stop job" in text(confirm)
        assert first.get_status() == JobStatus.STARTED  # nothing happens before the confirmation
        done = client.post(
            f"/jobs/job/{first.id}/stop", data={"csrf_token": token, "confirm": "yes"}
        )
        assert done.status_code == 303
        wait_for(lambda: first.get_status() == JobStatus.STOPPED)
        # the CLI stops the next one; a job that is not running is one clear line
        wait_for(lambda: second.get_status() == JobStatus.STARTED)
        result = runner.invoke(args=["jobs", "stop", second.id])
        assert result.exit_code == 0, result.output
        assert f"to stop {second.id}" in result.output
        wait_for(lambda: second.get_status() == JobStatus.STOPPED)
        refused = runner.invoke(args=["jobs", "stop", waiting.id, "no-such-job"])
        assert refused.exit_code == 1
        assert refused.output.strip() == (
            f"Error: job {waiting.id} is queued; only running jobs can be stopped; "
            "no job with id 'no-such-job'"
        )
        # a stopped job can be requeued from its page
        assert ">Requeue</button>" in text(client.get(f"/jobs/job/{first.id}"))
    finally:
        for job in (first, second):
            with contextlib.suppress(Exception):
                stop(jobs_app.jobs.state(app), jobs_app.jobs.fetch_job(job.id))
        stop_process(proc)


def test_stop_button_is_hidden_from_viewers_and_refused(
    redis_url: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    app = make_app(redis_url, tmp_path, JOBS_DASHBOARD_AUTH=lambda action: action != "stop")
    client = app.test_client()
    with app.app_context():
        job = jobs_app.add.enqueue(1, 2)
        jobs_app.jobs.connection.hset(job.key, mapping={"status": "started", "worker_name": "w"})
    page = text(client.get(f"/jobs/job/{job.id}"))
    assert "Stop…" not in page and ">Cancel</button>" not in page
    token = csrf(client)
    refused = client.post(f"/jobs/job/{job.id}/stop", data={"csrf_token": token})
    assert refused.status_code == 403


def test_audit_records_dashboard_and_cli_actions(
    app: Flask, ctx: None, client: Any, runner: FlaskCliRunner, work: Any
) -> None:
    app.context_processor(lambda: {"jobs_dashboard_user": {"name": "ann <ops>"}})

    first, second = failed_jobs(work, "a", "b")
    token = csrf(client)
    client.post(f"/jobs/job/{first.id}/requeue", data={"csrf_token": token})
    client.post("/jobs/queues/default/pause", data={"csrf_token": token})
    client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": token, "action": "cancel", "job_ids": [first.id, second.id]},
    )
    assert runner.invoke(args=["jobs", "requeue", second.id]).exit_code == 0
    assert runner.invoke(args=["jobs", "queue", "resume", "default"]).exit_code == 0
    page = client.get("/jobs/audit")
    assert page.status_code == 200
    body = text(page)
    assert "ann &lt;ops&gt;" in body and "<script" not in body.split("<main")[1]
    data = client.get("/jobs/api/audit").get_json()
    seen = [(e["source"], e["action"], e["target"], e["count"]) for e in data["entries"]]
    assert seen == [
        ("cli", "resume_queue", "default", 1),
        ("cli", "requeue", second.id, 1),
        ("dashboard", "cancel", "2 selected jobs", 1),
        ("dashboard", "pause_queue", "default", 1),
        ("dashboard", "requeue", first.id, 1),
    ]
    assert data["entries"][2]["detail"].startswith("Canceled 1 job(s). Skipped 1: 1 failed")
    assert {e["actor"] for e in data["entries"] if e["source"] == "dashboard"} == {"ann <ops>"}
    assert data["entries"][0]["at"].endswith("+00:00") and data["next_before"] is None
    older = client.get("/jobs/api/audit?limit=2").get_json()
    assert len(older["entries"]) == 2 and older["next_before"] is not None
    rest = client.get(f"/jobs/api/audit?before={older['next_before']}").get_json()
    assert len(rest["entries"]) == 3
    assert client.get("/jobs/api/audit?before=x").status_code == 400
