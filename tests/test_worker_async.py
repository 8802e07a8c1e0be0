"""``async def`` jobs: one event loop per worker process, many jobs at once, each in its
own app context; timeouts and stop-job by cancellation; a raising coroutine fails only
itself. The default worker picks the event loop for them by itself."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
import worker_jobs
from flask import Flask
from rq.command import send_stop_job_command
from rq.job import JobStatus

import jobs_app
from conftest import drain_history, wait_for
from flask_jobs.worker import build_worker


def _work(app: Flask, threads: int) -> bool:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker: Any = build_worker(app, jobs_app.jobs.state(app), threads=threads)
        worker.run_recorder = False
        return bool(worker.work(burst=True))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("threads", [1, 4])
def test_async_jobs_run_together_in_their_own_app_context(
    app: Flask, ctx: None, threads: int
) -> None:
    together = [worker_jobs.gather.enqueue("async-meet", 10) for _ in range(10)]
    contexts = [worker_jobs.own_context.enqueue(f"tag-{i}") for i in range(5)]
    plain = jobs_app.add.enqueue(2, 3)  # a sync job on the same worker
    assert _work(app, threads)
    assert [job.return_value() for job in together] == [True] * 10  # all ran at once
    assert [job.return_value() for job in contexts] == [True] * 5
    assert plain.return_value() == 5


def test_a_raising_or_late_coroutine_fails_only_itself(app: Flask, ctx: None, work: Any) -> None:
    failing = worker_jobs.async_fail.enqueue("boom")
    late = worker_jobs.async_nap.enqueue(5)  # past its 1 s timeout
    fine = [worker_jobs.async_nap.enqueue(0.01) for _ in range(3)]
    assert work()
    assert failing.get_status() == JobStatus.FAILED
    result = failing.latest_result()
    assert result is not None and "ValueError: boom" in result.exc_string
    assert late.get_status() == JobStatus.FAILED
    result = late.latest_result()
    assert result is not None and "JobTimeoutException" in result.exc_string
    assert [job.return_value() for job in fine] == ["rested"] * 3
    drain_history(app)
    (row,) = jobs_app.jobs.history.get(failing.id)
    assert row["status"] == "failed" and row["exc_type"] == "ValueError"


def test_stop_job_cancels_an_async_job(app: Flask, ctx: None, work: Any) -> None:
    job = worker_jobs.async_nap.options(timeout=60).enqueue(30)
    errors: list[BaseException] = []

    def stop_when_started() -> None:
        try:
            wait_for(lambda: job.get_status() == JobStatus.STARTED)
            channel = f"rq:pubsub:{jobs_app.jobs.fetch_job(job.id).worker_name}"
            connection = jobs_app.jobs.connection
            wait_for(lambda: connection.pubsub_numsub(channel)[0][1] > 0)
            send_stop_job_command(
                connection, job.id, serializer=jobs_app.jobs.state(app).serializer
            )
        except BaseException as exc:
            errors.append(exc)

    def in_app() -> None:
        with app.app_context():
            stop_when_started()

    stopper = threading.Thread(target=in_app)
    stopper.start()
    try:
        work()
    finally:
        stopper.join()
    assert not errors, errors
    assert job.get_status() == JobStatus.STOPPED
