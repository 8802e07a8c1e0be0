"""The job history: every attempt in SQL, recorded off the hot path, nothing lost."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from rq import Queue
from rq.command import send_stop_job_command
from rq.job import JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

import jobs_app
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs.history.recorder import HistoryRecorder
from flask_jobs.keys import RECORDER_GROUP as GROUP
from flask_jobs.worker import build_worker

#: What a recorder logs when the history database cannot be written.
OUTAGE_LOGGED = "cannot write to the history database"


def rows(app: Flask, job_id: str) -> list[dict[str, Any]]:
    with app.app_context():
        return jobs_app.jobs.history.get(job_id)


def test_table_is_on_the_apps_metadata() -> None:
    assert "flask_jobs_history" in jobs_app.db.metadata.tables


def test_queued_then_finished(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.add.enqueue(2, 3)
    drain_history(app)
    (queued,) = rows(app, job.id)
    assert queued["status"] == "queued"
    assert queued["func"] == "jobs_app.add"
    assert queued["args"] == "[2,3]"
    assert queued["origin"] == "code"
    work()  # the burst worker's recorder writes on its way out
    (done,) = rows(app, job.id)
    assert done["id"] == queued["id"]
    assert done["status"] == "finished"
    assert done["result"] == "5"
    assert done["attempt"] == 1
    assert done["worker"] and done["host"] and done["pid"]
    assert done["started_at"] and done["ended_at"] and done["enqueued_at"]
    assert done["run_seconds"] is not None and done["wait_seconds"] is not None


def test_failed_row_has_the_traceback(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.fail.enqueue("kaput")
    work()
    (row,) = rows(app, job.id)
    assert row["status"] == "failed"
    assert row["exc_type"] == "RuntimeError"
    assert row["exc_message"] == "kaput"
    assert "Traceback" in row["traceback"] and "raise RuntimeError(message)" in row["traceback"]


def test_job_retried_twice_has_three_rows_with_three_tracebacks(
    app: Flask, ctx: None, work: Any
) -> None:
    job = jobs_app.always_fails.enqueue(7)
    work()
    attempts = rows(app, job.id)
    assert [(r["attempt"], r["status"]) for r in attempts] == [
        (1, "retried"),
        (2, "retried"),
        (3, "failed"),
    ]
    assert all("ValueError: failure 7" in r["traceback"] for r in attempts)


def test_retry_that_succeeds(app: Flask, ctx: None, work: Any, redis_client: redis.Redis) -> None:
    job = jobs_app.flaky.enqueue("history-flaky", 2)
    work()
    deadline = time.monotonic() + 15
    while job.get_status() != JobStatus.FINISHED and time.monotonic() < deadline:
        time.sleep(0.2)
        work()
    attempts = rows(app, job.id)
    assert [(r["attempt"], r["status"]) for r in attempts] == [(1, "retried"), (2, "finished")]
    assert attempts[0]["exc_type"] == "ConnectionError"
    assert attempts[1]["exc_type"] is None


def test_redaction_and_caps(app: Flask, ctx: None, work: Any) -> None:
    app.extensions["jobs"].events.settings  # noqa: B018 - the defaults below come from config
    job = jobs_app.echo.enqueue(
        "x" * 10_000, password="hunter2", nested={"api_key": "k", "ok": 1}, Auth_Token="t"
    )
    work()
    (row,) = rows(app, job.id)
    assert "hunter2" not in row["kwargs"] and '"password":"***"' in row["kwargs"]
    assert '"api_key":"***"' in row["kwargs"] and '"ok":1' in row["kwargs"]
    assert '"Auth_Token":"***"' in row["kwargs"]
    assert row["args_truncated"] is True
    assert len(row["args"].encode()) <= 4096 + 4
    # the job itself got the real arguments
    assert job.return_value(refresh=True) == "1 args, ['Auth_Token', 'nested', 'password']"


def test_progress_is_recorded(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.report_progress.enqueue()
    work()
    (row,) = rows(app, job.id)
    assert row["progress"] == 0.5 and row["progress_message"] == "half way"


def test_canceled_and_requeued(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    later = jobs_app.add.enqueue_in(timedelta(hours=1), 1, 1)
    assert runner.invoke(args=["jobs", "cancel", later.id]).exit_code == 0
    failed = jobs_app.fail.enqueue("first")
    work()
    result = runner.invoke(args=["jobs", "requeue", failed.id])
    assert result.exit_code == 0, result.output
    assert "attempt 2" in result.output
    work()
    drain_history(app)
    assert [r["status"] for r in rows(app, later.id)] == ["canceled"]
    attempts = rows(app, failed.id)
    assert [(r["attempt"], r["status"]) for r in attempts] == [(1, "failed"), (2, "failed")]
    assert attempts[1]["origin"] == f"requeue:{failed.id}#1"


def test_plain_rq_jobs_are_recorded(app: Flask, ctx: None, work: Any) -> None:
    queue = Queue("default", connection=jobs_app.jobs.connection, serializer=JSONSerializer)
    job = queue.enqueue("jobs_app.plain_function", 21)
    work()
    (row,) = rows(app, job.id)
    assert row["status"] == "finished" and row["result"] == "42"
    assert row["func"] == "jobs_app.plain_function"


def test_stopped_job(app: Flask, ctx: None, subprocess_env: dict[str, str]) -> None:
    job = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        time.sleep(0.5)  # the worker subscribes to commands as it starts
        send_stop_job_command(jobs_app.jobs.connection, job.id)
        wait_for(lambda: job.get_status() == JobStatus.STOPPED)
        wait_for(lambda: [r["status"] for r in rows(app, job.id)] == ["stopped"], timeout=10)
    finally:
        stop_process(proc)


def test_worker_killed_mid_job_is_recorded_abandoned(
    app: Flask, ctx: None, subprocess_env: dict[str, str], work: Any
) -> None:
    job = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    proc = subprocess.Popen(flask_command("jobs", "worker", "--threads", "1"), env=subprocess_env)
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        wait_for(lambda: [r["status"] for r in rows(app, job.id)] == ["started"], timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop_process(proc)
    # RQ's cleanup finds the job once its worker's heartbeat has lapsed; don't wait for it
    registry = StartedJobRegistry(queue=jobs_app.jobs.get_queue())
    connection = jobs_app.jobs.connection
    for member in connection.zrange(registry.key, 0, -1):  # entries are "job id:execution id"
        if member.decode().startswith(job.id):
            connection.zadd(registry.key, {member: 1})
    worker = build_worker(app, jobs_app.jobs.state(app), worker_class="default")
    worker.clean_registries()
    # the killed worker's recorder may have been handed the event as it died: claim it
    drain_history(app, claim=True)
    assert job.get_status() == JobStatus.FAILED
    (row,) = rows(app, job.id)
    assert row["status"] == "abandoned"
    assert row["exc_type"] == "AbandonedJobError"


def test_keyset_pagination_returns_every_row_once(app: Flask, ctx: None) -> None:
    ids = {jobs_app.add.enqueue(i, i).id for i in range(57)}
    drain_history(app)
    seen: list[str] = []
    cursor = None
    while True:
        page = jobs_app.jobs.history.search(cursor=cursor, limit=7)
        seen.extend(r["job_id"] for r in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 57 and set(seen) == ids


def test_search_filters(app: Flask, ctx: None, work: Any) -> None:
    jobs_app.fail.enqueue("disk full on /dev/sda1")
    jobs_app.fail.options(queue="other").enqueue("timeout talking to 100%_proxy")
    jobs_app.echo.enqueue("customer-4711")
    work(queues=["default", "other"])
    history = jobs_app.jobs.history
    assert len(history.search(status="failed").rows) == 2
    assert len(history.search(queue="other").rows) == 1
    assert len(history.search(function="jobs_app:echo").rows) == 1
    assert len(history.search(text="4711").rows) == 1
    assert len(history.search(text="disk full").rows) == 1
    assert len(history.search(text="100%_").rows) == 1  # LIKE wildcards are escaped
    assert len(history.search(text="%").rows) == 1
    assert len(history.search(origin="code").rows) == 3
    assert history.search(since=datetime.now(timezone.utc) + timedelta(minutes=1)).rows == []
    with pytest.raises(ValueError, match="unknown status"):
        history.search(status="exploded")


def test_aggregates(app: Flask, ctx: None, work: Any) -> None:
    for i in range(3):
        jobs_app.add.enqueue(i, i)
    jobs_app.fail.enqueue("x")
    work()
    history = jobs_app.jobs.history
    stats = {s["func"]: s for s in history.function_stats()}
    assert stats["jobs_app.add"]["finished"] == 3 and stats["jobs_app.add"]["failure_rate"] == 0
    assert stats["jobs_app.fail"]["failed"] == 1 and stats["jobs_app.fail"]["failure_rate"] == 1
    assert stats["jobs_app.add"]["p50_seconds"] is not None
    series = history.throughput(window=timedelta(hours=1))
    assert len(series) in (60, 61)
    assert sum(b["finished"] for b in series) == 3 and sum(b["failed"] for b in series) == 1
    top = history.top_exceptions()
    assert top[0]["exc_type"] == "RuntimeError" and top[0]["count"] == 1


def test_purge(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    old = jobs_app.add.enqueue(1, 1)
    new = jobs_app.add.enqueue(2, 2)
    work()
    table = jobs_app.jobs.history_table
    with jobs_app.db.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.job_id == old.id)
            .values(ended_at=datetime.now(timezone.utc) - timedelta(days=40))
        )
    result = runner.invoke(args=["jobs", "history", "purge", "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 history row(s)" in result.output
    assert rows(app, old.id) == [] and len(rows(app, new.id)) == 1
    bad = runner.invoke(args=["jobs", "history", "purge", "--older-than", "soon"])
    assert bad.exit_code == 2 and "is not a duration" in bad.output


def test_history_cli_init_and_show(
    app: Flask, ctx: None, runner: FlaskCliRunner, work: Any
) -> None:
    assert runner.invoke(args=["jobs", "history", "init"]).exit_code == 0
    job = jobs_app.always_fails.enqueue(1)
    work()
    shown = runner.invoke(args=["jobs", "history", "show", job.id])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("ValueError failure 1") == 3
    missing = runner.invoke(args=["jobs", "history", "show", "nope"])
    assert missing.exit_code == 1 and "no history for job 'nope'" in missing.output


def test_recorder_crash_loses_nothing(app: Flask, ctx: None, redis_client: redis.Redis) -> None:
    state = jobs_app.jobs.state(app)
    stream = state.history_settings.stream
    ids = [jobs_app.add.enqueue(i, i).id for i in range(20)]
    recorder = HistoryRecorder(app, state, name="doomed")
    recorder._ensure_group()
    # the doomed recorder reads the events, then dies before committing them
    read = redis_client.xreadgroup(GROUP, "doomed", {stream: ">"}, count=100)
    assert len(read[0][1]) == 20
    survivor = HistoryRecorder(app, state, name="survivor")
    survivor.claim_idle_ms = 0
    survivor._ensure_group()
    survivor._maintenance()  # claims the dead recorder's pending events
    while survivor.drain_once(block=False):
        pass
    assert {r["job_id"] for r in jobs_app.jobs.history.search(limit=100).rows} == set(ids)
    assert redis_client.xlen(stream) == 0


def test_stream_bound_drops_with_a_log_line(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'bound.db'}",
            "JOBS_HISTORY_STREAM_MAXLEN": 1000,
        }
    )
    with app.app_context():
        for i in range(1100):
            jobs_app.add.enqueue(i, i)
        recorder = HistoryRecorder(app, jobs_app.jobs.state(app), name="bounded")
        recorder._ensure_group()
        with caplog.at_level(logging.ERROR, logger="flask_jobs.recorder"):
            recorder._maintenance()
    assert "dropped the 100 oldest event(s)" in caplog.text
    assert redis_client.xlen(jobs_app.jobs.state(app).history_settings.stream) == 1000


def test_database_outage_loses_no_history_and_fails_no_job(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    history_db = tmp_path / "history.db"
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.db'}",
            "JOBS_HISTORY_DATABASE_URI": f"sqlite:///{history_db}",
        }
    )
    with app.app_context():
        jobs_app.jobs.state(app).history.create(app)
        queued = [jobs_app.add.enqueue(i, 1).id for i in range(500)]
    # the database is unavailable: another connection holds an exclusive lock on it
    blocker = sqlite3.connect(history_db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    env = dict(subprocess_env, JOBS_APP_HISTORY_URI=f"sqlite:///{history_db}")
    # A file, not a pipe: two log lines per job would fill a pipe nobody reads until the end.
    log_path = tmp_path / "worker.log"
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        [*flask_command("jobs", "worker", "--burst", "--threads", "1")],
        env=env,
        stderr=log_file,
        text=True,
    )
    try:
        finished = redis.Redis.from_url(redis_url)
        key = "rq:finished:default"
        wait_for(lambda: finished.zcard(key) >= 250, timeout=60)
        # The outage lasts until the recorder has run into it (and said so), however
        # long the worker and its recorder took to start on a busy machine.
        wait_for(lambda: OUTAGE_LOGGED in log_path.read_text(), timeout=60)
        assert blocker.execute("SELECT count(*) FROM flask_jobs_history").fetchone() == (0,)
        blocker.execute("ROLLBACK")
        blocker.close()
        proc.wait(timeout=120)
        finished.close()
    finally:
        stop_process(proc)
        log_file.close()
    stderr = log_path.read_text()
    assert proc.returncode == 0
    assert OUTAGE_LOGGED in stderr
    with app.app_context():
        statuses = [jobs_app.jobs.fetch_job(i).get_status() for i in queued]
        assert statuses == [JobStatus.FINISHED] * 500
        engine = jobs_app.jobs.state(app).history.engine(app)
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM flask_jobs_history")).scalar()
            done = conn.execute(
                sa.text("SELECT count(*) FROM flask_jobs_history WHERE status = 'finished'")
            ).scalar()
    assert (count, done) == (500, 500)


def test_secrets_do_not_leak_through_the_description(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.echo.enqueue(1, password="hunter2")
    explicit = jobs_app.echo.options(description="nightly export").enqueue(2)
    work()
    (row,) = rows(app, job.id)
    assert "hunter2" not in (row["description"] or "") and "hunter2" not in row["kwargs"]
    assert rows(app, explicit.id)[0]["description"] == "nightly export"
