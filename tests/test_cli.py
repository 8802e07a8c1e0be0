"""Every `flask jobs` command, through Flask's CLI runner against a real Redis."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from rq.job import JobStatus
from rq.registry import FailedJobRegistry

import jobs_app
from flask_jobs.keys import PAUSED_QUEUES_KEY


def test_status_table_and_json(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    jobs_app.add.enqueue(1, 2)
    jobs_app.add.options(queue="high").enqueue(1, 2)
    result = runner.invoke(args=["jobs", "status"])
    assert result.exit_code == 0, result.output
    assert "queue" in result.output and "default" in result.output and "high" in result.output
    assert "No workers running" in result.output
    data = json.loads(runner.invoke(args=["jobs", "status", "--json"]).output)
    by_name = {q["name"]: q for q in data["queues"]}
    assert by_name["default"]["queued"] == 1
    assert by_name["high"]["queued"] == 1
    assert data["workers"] == []


def test_worker_burst_drains_the_queue(app: Flask, ctx: None, runner: FlaskCliRunner) -> None:
    job = jobs_app.add.enqueue(5, 5)
    result = runner.invoke(args=["jobs", "worker", "--burst", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert job.get_status() == JobStatus.FINISHED


def test_worker_max_jobs_stops_after_n_jobs(app: Flask, ctx: None, runner: FlaskCliRunner) -> None:
    queued = [jobs_app.add.enqueue(i, i) for i in range(3)]
    result = runner.invoke(args=["jobs", "worker", "--burst", "--threads", "1", "--max-jobs", "2"])
    assert result.exit_code == 0, result.output
    assert [job.get_status() for job in queued] == [
        JobStatus.FINISHED,
        JobStatus.FINISHED,
        JobStatus.QUEUED,
    ]


def test_worker_rejects_a_bad_queue_name(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "worker", "--burst", "bad name"])
    assert result.exit_code == 2
    assert "queue name 'bad name' is not valid" in result.output


def test_enqueue_command(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    result = runner.invoke(
        args=["jobs", "enqueue", "jobs_app:add", "--args", "[1]", "--kwargs", '{"b": 41}']
    )
    assert result.exit_code == 0, result.output
    job = jobs_app.jobs.fetch_job(result.output.strip())
    assert job.meta["origin"] == "cli"
    work()
    assert job.return_value(refresh=True) == 42


def test_enqueue_command_bad_input(app: Flask, runner: FlaskCliRunner) -> None:
    bad_json = runner.invoke(args=["jobs", "enqueue", "jobs_app:add", "--args", "[1,"])
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.output
    not_list = runner.invoke(args=["jobs", "enqueue", "jobs_app:add", "--args", '{"a": 1}'])
    assert not_list.exit_code == 2 and "must be a JSON array" in not_list.output
    unknown = runner.invoke(args=["jobs", "enqueue", "nowhere:f"])
    assert unknown.exit_code == 1
    assert "Error: cannot import 'nowhere:f'" in unknown.output
    assert "Traceback" not in unknown.output


def test_requeue_by_id_and_all_failed(
    app: Flask, ctx: None, runner: FlaskCliRunner, work: Any
) -> None:
    first = jobs_app.fail.enqueue("one")
    second = jobs_app.fail.enqueue("two")
    work()
    registry = FailedJobRegistry(queue=jobs_app.jobs.get_queue())
    assert registry.count == 2

    result = runner.invoke(args=["jobs", "requeue", first.id])
    assert result.exit_code == 0, result.output
    assert first.get_status() == JobStatus.QUEUED
    assert registry.count == 1

    result = runner.invoke(args=["jobs", "requeue", "--failed"])
    assert result.exit_code == 0, result.output
    assert "requeued 1 failed job(s)" in result.output
    assert second.get_status() == JobStatus.QUEUED

    missing = runner.invoke(args=["jobs", "requeue", "no-such-job"])
    assert missing.exit_code == 1 and "no job with id 'no-such-job'" in missing.output
    queued = runner.invoke(args=["jobs", "requeue", first.id])
    assert queued.exit_code == 1 and "only failed, stopped or canceled" in queued.output
    neither = runner.invoke(args=["jobs", "requeue"])
    assert neither.exit_code == 2


def test_purge_failed(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    job = jobs_app.fail.enqueue("x")
    jobs_app.fail.options(queue="other").enqueue("y")
    work(queues=["default", "other"])
    declined = runner.invoke(args=["jobs", "purge", "--failed", "--queue", "default"], input="n\n")
    assert declined.exit_code == 1
    assert FailedJobRegistry(queue=jobs_app.jobs.get_queue()).count == 1
    result = runner.invoke(args=["jobs", "purge", "--failed", "--queue", "default", "--yes"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 failed job(s)" in result.output
    assert not jobs_app.jobs.connection.exists(job.key)
    assert FailedJobRegistry(queue=jobs_app.jobs.get_queue("other")).count == 1


def test_embedded_command_when_a_url_is_set(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "embedded"])
    assert result.exit_code == 1
    assert "JOBS_REDIS_URL is set" in result.output


def test_dead_redis_is_one_clear_line(redis_url: str) -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": "redis://127.0.0.1:1/0"})
    result = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in result.output


def test_only_apps_with_the_extension_get_the_group() -> None:
    bare = Flask("bare")
    result = bare.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 2


def test_queue_pause_and_resume(app: Flask, ctx: None, runner: FlaskCliRunner, work: Any) -> None:
    job = jobs_app.add.enqueue(2, 3)
    paused = runner.invoke(args=["jobs", "queue", "pause", "default"])
    assert paused.exit_code == 0, paused.output
    assert "queue default is paused" in paused.output
    assert jobs_app.jobs.connection.smembers(PAUSED_QUEUES_KEY) == {b"default"}
    data = json.loads(runner.invoke(args=["jobs", "status", "--json"]).output)
    assert {q["name"]: q["paused"] for q in data["queues"]}["default"] is True
    work()
    assert job.get_status() == JobStatus.QUEUED  # a paused queue is left alone

    resumed = runner.invoke(args=["jobs", "queue", "resume", "default"])
    assert resumed.exit_code == 0 and "queue default is resumed" in resumed.output
    assert jobs_app.jobs.connection.smembers(PAUSED_QUEUES_KEY) == set()
    work()
    assert job.return_value(refresh=True) == 5


def test_queue_commands_refuse_an_unknown_queue(
    app: Flask, ctx: None, runner: FlaskCliRunner
) -> None:
    for action in ("pause", "resume", "empty"):
        result = runner.invoke(args=["jobs", "queue", action, "nope"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: there is no queue named 'nope' (known: default")
        assert "Traceback" not in result.output
    assert jobs_app.jobs.connection.smembers(PAUSED_QUEUES_KEY) == set()


def test_queue_empty(app: Flask, ctx: None, runner: FlaskCliRunner) -> None:
    jobs = [jobs_app.add.enqueue(i, i) for i in range(3)]
    kept = jobs_app.add.options(queue="high").enqueue(1, 1)
    declined = runner.invoke(args=["jobs", "queue", "empty", "default"], input="n\n")
    assert declined.exit_code == 1 and "Delete the 3 job(s) waiting in queue default?" in (
        declined.output
    )
    assert jobs_app.jobs.get_queue().count == 3
    result = runner.invoke(args=["jobs", "queue", "empty", "default", "--yes"])
    assert result.exit_code == 0, result.output
    assert "queue default is emptied: 3 job(s) deleted" in result.output
    assert not any(jobs_app.jobs.connection.exists(job.key) for job in jobs)
    assert kept.get_status() == JobStatus.QUEUED


def test_history_show_full_errors_arguments_json_and_times(
    app: Flask, ctx: None, runner: FlaskCliRunner, work: Any
) -> None:
    long = jobs_app.fail.enqueue("the disk is full " + "x" * 100 + " end")
    short = jobs_app.fail.enqueue("short")
    work()
    result = runner.invoke(args=["jobs", "history", "show", long.id])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "function: jobs_app.fail" in out and "origin:" in out
    assert '"the disk is full xxx' in out  # the arguments
    assert f"attempt 1 error: RuntimeError: the disk is full {'x' * 100} end" in out
    assert "RuntimeError the disk is full xxx" in out and "…" in out  # cut in the table
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC", out)
    assert stamps and not any(stamps)  # to the second, with the zone
    assert "Traceback (most recent call last)" not in out and "--traceback prints" in out
    shown = runner.invoke(args=["jobs", "history", "show", short.id, "--traceback"]).output
    assert "RuntimeError: short" in shown and "…" not in shown
    assert "Traceback (most recent call last)" in shown
    data = json.loads(runner.invoke(args=["jobs", "history", "show", long.id, "--json"]).output)
    assert data[0]["exc_message"].endswith(" end") and data[0]["ended_at"].endswith(" UTC")
    assert "traceback" in data[0] and "status_rank" not in data[0]


def test_requeue_and_purge_failed_show_progress_and_a_summary(
    app: Flask, ctx: None, runner: FlaskCliRunner, work: Any
) -> None:
    for n in range(3):
        jobs_app.fail.enqueue(str(n))
    work()
    result = runner.invoke(args=["jobs", "requeue", "--failed"])
    assert result.exit_code == 0, result.output
    assert "Requeuing failed jobs" in result.output  # click's bar (drawn in full on a terminal)
    assert result.output.strip().splitlines()[-1] == "requeued 3 failed job(s)"
    work()
    result = runner.invoke(args=["jobs", "purge", "--failed", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleting failed jobs" in result.output
    assert result.output.strip().splitlines()[-1] == "deleted 3 failed job(s) from all queues"
