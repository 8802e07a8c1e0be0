"""Worker middleware: every hook in order, in every mode; a hook that raises is harmless."""

from __future__ import annotations

import logging
import signal
from typing import Any

import pytest
import worker_jobs
from flask import Flask, current_app
from rq.job import JobStatus

import jobs_app
from flask_jobs import Middleware, Retry
from flask_jobs.config import DEFAULTS, load_config
from flask_jobs.errors import ConfigurationError
from flask_jobs.worker import build_worker

#: Our loop's modes, as (worker class, threads).
MODES = {"serial": ("default", 1), "threads": ("default", 4)}


class Recorder(Middleware):
    """Writes down every hook it is called with (and which app was current)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def on_worker_start(self, worker: Any) -> None:
        self.calls.append(("on_worker_start", None))

    def on_worker_stop(self, worker: Any) -> None:
        self.calls.append(("on_worker_stop", None))

    def before_job(self, worker: Any, job: Any) -> None:
        assert current_app.name == "jobs_app"  # inside the job's app context
        self.calls.append(("before_job", job.id))

    def after_job(self, worker: Any, job: Any, result: Any) -> None:
        self.calls.append(("after_job", job.id))

    def on_failure(self, worker: Any, job: Any, exc_info: Any) -> None:
        self.calls.append(("on_failure", job.id))

    def on_retry(self, worker: Any, job: Any, exc_info: Any) -> None:
        self.calls.append(("on_retry", job.id))


class Broken(Middleware):
    """Raises from every job hook."""

    def before_job(self, worker: Any, job: Any) -> None:
        raise RuntimeError("before_job is broken")

    def after_job(self, worker: Any, job: Any, result: Any) -> None:
        raise RuntimeError("after_job is broken")


def _work(app: Flask, mode: str, middleware: list[Any]) -> bool:
    kind, threads = MODES[mode]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved = jobs_app.jobs.middleware
    jobs_app.jobs.middleware = tuple(middleware)
    try:
        worker: Any = build_worker(
            app, jobs_app.jobs.state(app), worker_class=kind, threads=threads
        )
        worker.run_recorder = False
        return bool(worker.work(burst=True))
    finally:
        jobs_app.jobs.middleware = saved
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("mode", list(MODES))
def test_hooks_in_order_in_every_mode(app: Flask, ctx: None, mode: str) -> None:
    ok = worker_jobs.pause.enqueue(0.01)  # thread-safe: a lane's job in the threads mode
    bad = jobs_app.fail.enqueue("no")  # not thread-safe: the main thread's
    retried = jobs_app.always_fails.options(retry=Retry(1, delay=0)).enqueue(1)
    recorder = Recorder()
    assert _work(app, mode, [recorder])
    calls = recorder.calls
    assert calls[0] == ("on_worker_start", None) and calls[-1] == ("on_worker_stop", None)
    assert [c for c in calls if c[1] == ok.id] == [("before_job", ok.id), ("after_job", ok.id)]
    assert [c for c in calls if c[1] == bad.id] == [("before_job", bad.id), ("on_failure", bad.id)]
    assert [c for c in calls if c[1] == retried.id] == [
        ("before_job", retried.id),
        ("on_retry", retried.id),
        ("before_job", retried.id),
        ("on_failure", retried.id),
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_raising_hook_is_logged_and_harmless(
    app: Flask, ctx: None, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [worker_jobs.pause.enqueue(0.01), jobs_app.add.enqueue(2, 3)]
    with caplog.at_level(logging.ERROR, logger="flask_jobs.worker"):
        assert _work(app, mode, [Broken()])
    assert [job.get_status() for job in jobs] == [JobStatus.FINISHED] * 2
    assert jobs[1].return_value() == 5
    raised = [r for r in caplog.records if "middleware Broken" in r.getMessage()]
    assert len(raised) == 4  # before and after, for each job
    assert all(r.exc_info is not None for r in raised)


def test_jobs_middleware_from_config() -> None:
    config = dict(DEFAULTS, JOBS_REDIS_URL="redis://localhost:6379/0")
    config["JOBS_MIDDLEWARE"] = "test_worker_middleware:Recorder"
    (made,) = load_config(config).middleware
    assert isinstance(made, Recorder)  # a class is made once per app
    config["JOBS_MIDDLEWARE"] = [Broken, made]
    loaded = load_config(config).middleware
    assert isinstance(loaded[0], Broken) and loaded[1] is made
    config["JOBS_MIDDLEWARE"] = 42
    with pytest.raises(ConfigurationError, match="JOBS_MIDDLEWARE"):
        load_config(config)
