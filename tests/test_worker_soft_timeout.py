"""Soft time limits (``soft_timeout=``): `JobSoftTimeout` inside the job first, so it can
clean up, in every mode of the worker; the hard ``timeout`` still stops it."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import soft_jobs
from flask import Flask
from rq.job import JobStatus

import jobs_app
from flask_jobs.worker import build_worker


def _work(app: Flask, kind: str = "default", threads: int = 1) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker: Any = build_worker(
            app, jobs_app.jobs.state(app), worker_class=kind, threads=threads
        )
        worker.run_recorder = False
        worker.work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize(("kind", "threads"), [("default", 1), ("default", 4), ("fork", 1)])
def test_a_job_past_its_soft_limit_can_clean_up_or_fails(
    app: Flask, ctx: None, kind: str, threads: int
) -> None:
    tidy = soft_jobs.tidy.enqueue(10)
    in_time = soft_jobs.tidy.enqueue(0)
    careless = soft_jobs.careless.enqueue(10)
    threaded = soft_jobs.tidy_in_a_thread.enqueue(10)
    _work(app, kind, threads)
    assert tidy.return_value(refresh=True) == "cleaned up"
    assert in_time.return_value(refresh=True) == "done in time"
    assert threaded.return_value(refresh=True) == "cleaned up"
    assert careless.get_status(refresh=True) == JobStatus.FAILED
    assert "JobSoftTimeout" in (careless.latest_result().exc_string or "")


def test_an_async_job_past_its_soft_limit_is_cancelled_and_can_clean_up(
    app: Flask, ctx: None
) -> None:
    tidy = soft_jobs.tidy_async.enqueue(10)
    in_time = soft_jobs.tidy_async.enqueue(0)
    careless = soft_jobs.careless_async.enqueue(10)
    _work(app)
    assert tidy.return_value(refresh=True) == "cleaned up"
    assert in_time.return_value(refresh=True) == "done in time"
    assert careless.get_status(refresh=True) == JobStatus.FAILED
    assert "JobSoftTimeout" in (careless.latest_result().exc_string or "")
