"""Scenario 1: workers killed mid-job (SIGKILL of the work horse, and of the whole worker)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus

import jobs_app
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs import Retry
from reliability import tasks
from reliability.conftest import Processes, report, scaled

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _enqueue(index: int) -> Any:
    # Every other job may retry once; the rest fail on their first loss.
    retry = Retry(1, delay=0, jitter=False) if index % 2 else None
    return tasks.pid_then_sleep.options(timeout=600, retry=retry).enqueue(300.0)


def _pid_of(job: Any) -> int | None:
    raw = jobs_app.jobs.connection.get(tasks.PID_KEY.format(job.id))
    return int(raw) if raw else None


def test_sigkill_of_work_horses_and_whole_workers_loses_no_job(
    app: Flask, ctx: None, rel_env: Any, processes: Processes
) -> None:
    kills = scaled(20, 2)
    env = rel_env()
    conn = jobs_app.jobs.connection
    worker = flask_command("jobs", "worker", "--worker-class", "fork")

    # 1. The whole worker (supervisor-less worker, its work horse and its recorder) dies.
    whole = []
    for index in range(kills):
        job = _enqueue(index)
        proc = processes.start(worker, env)
        wait_for(lambda job=job: _pid_of(job), timeout=60)
        processes.kill_group(proc)
        whole.append(job)
    assert all(job.get_status() == JobStatus.STARTED for job in whole)  # stranded, for now

    # 2. Only the work horse dies; its worker lives on and runs the next job.
    horses = []
    proc = processes.start(worker, env)
    for index in range(kills):
        job = _enqueue(index)
        pid = wait_for(lambda job=job: _pid_of(job), timeout=60)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda job=job: job.get_status() != JobStatus.STARTED, timeout=60)
        horses.append(job)
    wait_for(lambda: all(_settled(job) for job in horses), timeout=60)
    assert proc.poll() is None  # the worker outlived every work horse
    stop_process(proc)

    # 3. RQ finds the stranded jobs once their heartbeat expires: a fresh worker's cleanup
    # marks them abandoned (retrying those that may), then runs the retries.
    expiry = max(score for _, score in conn.zrange("rq:wip:default", 0, -1, withscores=True))
    wait_for(lambda: time.time() > expiry + 1, timeout=120, interval=0.5)
    processes.start([*worker, "--burst"], env).wait(120)
    drain_history(app, claim=True)

    lost = []
    for kind, group in (("horse", horses), ("whole", whole)):
        for index, job in enumerate(group):
            expected = JobStatus.FINISHED if index % 2 else JobStatus.FAILED
            status = job.get_status()
            attempts = jobs_app.jobs.history.get(job.id)
            statuses = [row["status"] for row in attempts]
            first = "failed" if kind == "horse" else "abandoned"
            want = [first] if not index % 2 else [
                "retried" if kind == "horse" else "abandoned", "finished"
            ]  # fmt: skip
            if status != expected or statuses != want:
                lost.append((kind, job.id, status, statuses, want))
    report(
        f"worker SIGKILL: {kills} work horses and {kills} whole workers killed mid-job; "
        f"{2 * kills - len(lost)}/{2 * kills} jobs accounted for (finished after a retry, "
        "or failed/abandoned), history agreeing"
    )
    assert not lost


def _settled(job: Any) -> bool:
    return job.get_status() in (JobStatus.FINISHED, JobStatus.FAILED)
