"""Structured job log lines, and JOBS_ON_FAILURE hooks called by real workers."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask, current_app

import jobs_app
from flask_jobs import Retry
from flask_jobs.worker import build_worker, configure_logging
from flask_jobs.worker.reporting import FailureContext, JsonFormatter, TextFormatter

SEEN: list[FailureContext] = []
HOOK_KEY = "test:failure-hooks"


def remember(context: FailureContext) -> None:
    """A hook that keeps the context (for simple workers, in this process)."""
    assert current_app.name == "jobs_app"  # hooks run inside the app context
    SEEN.append(context)


def broken_hook(context: FailureContext) -> None:
    """A hook that itself fails: it must be logged and must not stop the worker."""
    raise RuntimeError("the error reporter is down")


def to_redis(context: FailureContext) -> None:
    """A hook that reports through Redis, so a forked work horse's call can be seen."""
    exc_type = type(context.exception).__name__ if context.exception else None
    record = {
        "job_id": context.job_id,
        "attempt": context.attempt,
        "will_retry": context.will_retry,
        "error": context.error,
        "exc_type": exc_type,
    }
    jobs_app.jobs.connection.rpush(HOOK_KEY, json.dumps(record))


def die() -> None:
    """Kill the work horse, as the kernel's OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
def hooked_app(redis_client: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    SEEN.clear()
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "JOBS_HISTORY_ENABLED": False,
            "JOBS_ON_FAILURE": [
                "test_reporting:broken_hook",
                remember,
                "test_reporting:to_redis",
            ],
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        yield app


def run_worker(app: Flask, worker_class: str = "default") -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = build_worker(app, jobs_app.jobs.state(app), worker_class=worker_class)
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_start_and_end_lines_carry_the_job_fields(
    hooked_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    job = jobs_app.add.enqueue(2, 3)
    with caplog.at_level(logging.INFO, logger="flask_jobs.worker"):
        run_worker(hooked_app)
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_jobs.worker"]
    assert f"job started job_id={job.id} function=jobs_app.add queue=default attempt=1" in lines
    [ended] = [line for line in lines if line.startswith("job finished")]
    assert f"job_id={job.id}" in ended
    assert "outcome=finished duration=" in ended
    assert SEEN == []  # no failure, no hook


def test_hooks_see_every_failed_attempt_and_a_broken_hook_is_only_logged(
    hooked_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    failing = jobs_app.fail.options(retry=Retry(1, delay=0)).enqueue("boom")
    after = jobs_app.add.enqueue(1, 1)
    with caplog.at_level(logging.INFO, logger="flask_jobs"):
        run_worker(hooked_app)
    assert [(c.job_id, c.attempt, c.will_retry, c.outcome) for c in SEEN] == [
        (failing.id, 1, True, "retry_queued"),
        (failing.id, 2, False, "failed"),
    ]
    final = SEEN[-1]
    assert final.function == "jobs_app.fail"
    assert final.queue == "default"
    assert isinstance(final.exception, RuntimeError)
    assert final.exc_info is not None and final.exc_info[2] is not None  # a real traceback
    assert final.error.endswith("boom")
    assert final.duration is not None and final.duration >= 0
    broken = [r for r in caplog.records if "JOBS_ON_FAILURE hook" in r.getMessage()]
    assert len(broken) == 2
    assert "broken_hook" in broken[0].getMessage()
    assert broken[0].exc_info is not None  # the hook's own traceback is in the log
    assert after.get_status(refresh=True) == "finished"  # the worker carried on
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job failed")]
    assert any("outcome=failed" in m and f"job_id={failing.id}" in m for m in failed)
    assert len(jobs_app.jobs.connection.lrange(HOOK_KEY, 0, -1)) == 2  # later hooks still ran


def test_hooks_run_in_a_forked_work_horse_and_for_a_killed_one(hooked_app: Flask) -> None:
    raised = jobs_app.fail.enqueue("in the horse")
    killed = jobs_app.jobs.enqueue("test_reporting:die")
    run_worker(hooked_app, worker_class="fork")
    records = [json.loads(r) for r in jobs_app.jobs.connection.lrange(HOOK_KEY, 0, -1)]
    by_id = {r["job_id"]: r for r in records}
    assert by_id[raised.id]["exc_type"] == "RuntimeError"
    assert by_id[raised.id]["will_retry"] is False
    assert by_id[killed.id]["exc_type"] is None  # no exception: the process died
    assert by_id[killed.id]["error"].startswith("WorkHorseTerminated: ")


def test_json_lines(hooked_app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("flask_jobs")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        # A handler left by an earlier test writes to that test's stderr: start afresh.
        logger.handlers[:] = [h for h in logger.handlers if not getattr(h, "_flask_jobs", False)]
        configure_logging("INFO", "json")
        job = jobs_app.fail.enqueue("as json")
        run_worker(hooked_app)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    mine = [line for line in lines if line.get("job_id") == job.id]
    assert [line["event"] for line in mine] == ["job started", "job failed"]
    failed = mine[-1]
    assert failed["level"] == "WARNING"
    assert failed["function"] == "jobs_app.fail"
    assert failed["outcome"] == "failed"
    assert failed["error"] == "RuntimeError: as json"
    assert isinstance(failed["duration"], float)
    assert failed["time"].endswith("Z")


def test_formatters_on_a_plain_record() -> None:
    record = logging.LogRecord("flask_jobs.x", logging.ERROR, __file__, 1, "plain %s", ("x",), None)
    assert json.loads(JsonFormatter().format(record))["message"] == "plain x"
    assert TextFormatter().format(record).endswith("ERROR flask_jobs.x: plain x")
