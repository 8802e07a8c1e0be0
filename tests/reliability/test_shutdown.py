"""Scenario 5: warm shutdown under load loses no job; a second signal stops at once."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus

import jobs_app
from conftest import drain_history, flask_command, wait_for
from flask_jobs import Retry
from reliability import tasks
from reliability.conftest import Processes, report, scaled

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_sigterm_during_a_burst_loses_no_job(
    app: Flask, ctx: None, rel_env: Any, processes: Processes
) -> None:
    count = scaled(400, 60)
    signals = scaled(10, 2)
    conn = jobs_app.jobs.connection
    queued = [tasks.nap.enqueue(0.02) for _ in range(count)]
    worker = flask_command("jobs", "worker", "--concurrency", "2")

    def finished() -> int:
        return conn.zcard("rq:finished:default")

    for round_ in range(signals):
        proc = processes.start(worker, rel_env())
        goal = (round_ + 1) * count // (signals + 2)
        wait_for(lambda goal=goal: finished() >= goal, timeout=120)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        statuses = [job.get_status() for job in queued]
        # nothing half-done: every job finished or still waits its turn
        assert set(statuses) <= {JobStatus.FINISHED, JobStatus.QUEUED}, set(statuses)
        assert statuses.count(JobStatus.QUEUED) == conn.llen("rq:queue:default")
    processes.start([*worker, "--burst"], rel_env()).wait(300)
    drain_history(app)
    assert [job.get_status() for job in queued].count(JobStatus.FINISHED) == count
    rows = [jobs_app.jobs.history.get(job.id) for job in queued]
    assert all([r["status"] for r in attempts] == ["finished"] for attempts in rows)
    report(
        f"warm shutdown: SIGTERM x{signals} during a burst of {count} jobs on 2 processes: "
        f"{count}/{count} finished exactly once, none lost or half-run"
    )


@pytest.mark.parametrize("retry", [False, True], ids=["no-retry", "retry"])
def test_second_signal_stops_at_once_and_marks_the_job(
    app: Flask, ctx: None, rel_env: Any, processes: Processes, retry: bool
) -> None:
    policy = Retry(1, delay=0, jitter=False) if retry else None
    job = tasks.pid_then_sleep.options(timeout=600, retry=policy).enqueue(300.0)
    proc = processes.start(flask_command("jobs", "worker"), rel_env())
    wait_for(lambda: jobs_app.jobs.connection.get(tasks.PID_KEY.format(job.id)), timeout=60)
    worker_key = f"rq:worker:{jobs_app.jobs.fetch_job(job.id).worker_name}"
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: jobs_app.jobs.connection.hget(worker_key, "shutdown_requested_date"))
    time.sleep(1.2)  # RQ takes a repeat within 1 s for the same Ctrl-C reaching it twice
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)  # at once, not after the job's 300 s
    drain_history(app, claim=True)
    status = job.get_status()
    attempts = [row["status"] for row in jobs_app.jobs.history.get(job.id)]
    if retry:
        assert status == JobStatus.QUEUED, status
        assert attempts == ["retried", "queued"], attempts
    else:
        assert status in (JobStatus.FAILED, JobStatus.STOPPED), status
        assert attempts in (["failed"], ["stopped"]), attempts
