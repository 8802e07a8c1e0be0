"""Real worker processes: warm shutdown, --concurrency, fork, embedded Redis, plain RQ tools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus

import jobs_app
from conftest import flask_command, stop_process, wait_for
from flask_jobs.redis.embedded import EmbeddedRedis

RQ = str(Path(sys.executable).parent / "rq")


def test_warm_shutdown_finishes_the_current_job(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    slow = jobs_app.whoami.enqueue(pause=2.0)
    waiting = jobs_app.add.enqueue(1, 1)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: slow.get_status() == JobStatus.STARTED)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)
    assert slow.get_status() == JobStatus.FINISHED  # finished, not killed
    assert waiting.get_status() == JobStatus.QUEUED  # not started after the signal


def test_second_signal_is_a_cold_shutdown(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    slow = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: slow.get_status() == JobStatus.STARTED)
        worker_key = f"rq:worker:{jobs_app.jobs.fetch_job(slow.id).worker_name}"
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: jobs_app.jobs.connection.hget(worker_key, "shutdown_requested_date"))
        time.sleep(1.2)  # RQ ignores a repeat within 1 s (one Ctrl-C reaching two processes)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        stop_process(proc)
    assert slow.get_status() != JobStatus.FINISHED


def test_concurrency_two_drains_with_two_processes(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    queued = [jobs_app.whoami.enqueue(pause=0.2) for _ in range(12)]
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--burst", "--concurrency", "2", "--threads", "1"),
        env=subprocess_env,
    )
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        stop_process(proc)
    results = [job.return_value(refresh=True) for job in queued]
    assert all(r is not None for r in results)
    assert len({r["pid"] for r in results}) == 2
    assert len({r["worker"] for r in results}) == 2


def test_supervisor_restarts_a_child_that_dies(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--concurrency", "2", "--threads", "1"),
        env=subprocess_env,
    )
    try:

        def two_children(without: int = 0) -> list[int] | None:
            pids = _worker_pids(proc.pid)
            return pids if len(pids) == 2 and without not in pids else None

        first = wait_for(two_children)
        os.kill(first[0], signal.SIGKILL)
        replaced = wait_for(lambda: two_children(without=first[0]), timeout=20)
        assert first[1] in replaced
        job = jobs_app.add.enqueue(2, 2)
        wait_for(lambda: job.get_status() == JobStatus.FINISHED)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)


def _worker_pids(parent: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True, check=False
    )
    return sorted(int(p) for p in out.stdout.split())


def test_fork_worker_runs_in_app_context(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    job = jobs_app.read_config.enqueue("GREETING")
    done = subprocess.run(
        flask_command("jobs", "worker", "--burst", "--worker-class", "fork"),
        env=subprocess_env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert job.return_value(refresh=True) == "hello from config"


def test_two_processes_share_one_embedded_redis(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    instance = tmp_path / "shared-instance"
    env = dict(subprocess_env, JOBS_APP_INSTANCE_PATH=str(instance))
    del env["JOBS_APP_REDIS_URL"]
    app = jobs_app.create_app({"JOBS_REDIS_URL": None}, instance_path=str(instance))
    server = jobs_app.jobs.state(app).embedded
    assert server is not None
    try:
        with app.app_context():
            job = jobs_app.add.enqueue(20, 22)  # starts the server
        pid = server.pid
        assert pid is not None
        done = subprocess.run(
            flask_command("jobs", "worker", "--burst", "--threads", "1"),
            env=env,
            timeout=60,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert server.pid == pid  # the worker found the running server, it did not start one
        with app.app_context():
            assert job.return_value(refresh=True) == 42
        status = subprocess.run(
            flask_command("jobs", "embedded"), env=env, timeout=30, capture_output=True, text=True
        )
        assert f"running, pid {pid}" in status.stdout
    finally:
        assert server.stop()
    assert not server.is_running()


def test_embedded_redis_keeps_queued_jobs_across_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "persist")
    server.start()
    try:
        client = server.client()
        client.rpush("rq:queue:default", "job-1")
        client.close()
        server.stop()
        assert not server.is_running()
        server.start()
        client = server.client()
        assert client.lrange("rq:queue:default", 0, -1) == [b"job-1"]
        client.close()
    finally:
        server.stop()


def test_rq_info_lists_our_queues_and_rq_requeue_works(
    app: Flask, ctx: None, redis_url: str, work: Any
) -> None:
    jobs_app.add.options(queue="reports").enqueue(1, 2)
    failed = jobs_app.fail.enqueue("for rq requeue")
    work(queues=["default"])
    info = subprocess.run(
        [RQ, "info", "--url", redis_url], capture_output=True, text=True, timeout=30, check=False
    )
    assert info.returncode == 0, info.stderr
    assert "reports" in info.stdout and "default" in info.stdout
    requeue = subprocess.run(
        [RQ, "requeue", "--url", redis_url, "--queue", "default", failed.id],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert requeue.returncode == 0, requeue.stderr + requeue.stdout
    assert failed.get_status() == JobStatus.QUEUED
    # RQ's default (pickle) serializer left our JSON job data and meta as they were
    assert jobs_app.jobs.fetch_job(failed.id).meta["origin"] == "code"
    work(queues=["default"])
    assert failed.get_status() == JobStatus.FAILED


@pytest.mark.parametrize("worker_class", ["rq.worker.SimpleWorker", "rq.worker.Worker"])
def test_a_plain_rq_worker_runs_our_jobs_in_the_app_context(
    app: Flask, ctx: None, redis_url: str, subprocess_env: dict[str, str], worker_class: str
) -> None:
    config = jobs_app.read_config.enqueue("GREETING")
    note = jobs_app.write_note.enqueue("from a plain rq worker")
    done = subprocess.run(
        [
            RQ, "worker", "--burst", "--url", redis_url, "--serializer", "json",
            "--job-class", "flask_jobs.FlaskJob", "--worker-class", worker_class, "default",
        ],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert config.get_status() == JobStatus.FINISHED, done.stderr
    assert config.return_value(refresh=True) == "hello from config"
    assert isinstance(note.return_value(refresh=True), int), done.stderr


def test_a_plain_rq_worker_without_the_app_says_how_to_name_it(
    app: Flask, ctx: None, redis_url: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    job = jobs_app.read_config.enqueue("GREETING")
    env = {k: v for k, v in subprocess_env.items() if k != "FLASK_APP"}
    done = subprocess.run(
        [
            RQ, "worker", "--burst", "--url", redis_url, "--serializer", "json",
            "--job-class", "flask_jobs.FlaskJob", "--worker-class", "rq.worker.SimpleWorker",
        ],
        env=env,
        cwd=tmp_path,  # no app.py or wsgi.py for Flask to find
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert job.get_status() == JobStatus.FAILED
    assert "set FLASK_APP (or FLASK_JOBS_APP) for the worker" in job.latest_result().exc_string
