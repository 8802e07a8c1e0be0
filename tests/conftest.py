"""Fixtures: a real Redis (flushed around each test) and a real SQL database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskCliRunner

import jobs_app
from flask_jobs.redis.embedded import EmbeddedRedis
from flask_jobs.worker import build_worker

TESTS = Path(__file__).parent


def _missing(what: str) -> None:
    """Skip locally, but fail in CI, when a service the test needs is absent."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def _close_app_connections() -> Iterator[None]:
    yield
    while jobs_app.APPS:
        jobs_app.jobs.state(jobs_app.APPS.pop()).close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JOBS_TEST_REDIS_URL, or a throwaway embedded redis-server for the session."""
    url = os.environ.get("JOBS_TEST_REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        try:
            client.ping()
        except redis.ConnectionError:
            _missing(f"Redis at {url}")
        finally:
            client.close()
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _database_urls() -> list[Any]:
    urls: list[Any] = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get("JOBS_TEST_DATABASE_URL"):
        urls.append(pytest.param("postgres", id="postgres"))
    return urls


@pytest.fixture(params=_database_urls())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url = os.environ["JOBS_TEST_DATABASE_URL"]
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def app(
    redis_client: redis.Redis, redis_url: str, database_url: str, tmp_path: Path
) -> Iterator[Flask]:
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": database_url}
    )
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        jobs_app.db.create_all()
    yield app
    with app.app_context():
        jobs_app.db.session.remove()
        jobs_app.db.drop_all()
        jobs_app.db.engine.dispose()


@pytest.fixture
def outbox_app(app: Flask) -> Iterator[Flask]:
    """``app`` with ``JOBS_OUTBOX`` on, inside its app context."""
    state = jobs_app.jobs.state(app)
    state.config = state.config.__class__(**{**state.config.__dict__, "outbox": True})
    with app.app_context():
        yield app


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def work(app: Flask) -> Callable[..., bool]:
    """Run a real burst worker in this process, restoring pytest's signal handlers after."""

    def run(worker_class: str = "default", queues: list[str] | None = None, **options: Any) -> bool:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = build_worker(app, jobs_app.jobs.state(app), queues, worker_class=worker_class)
            options.setdefault("with_scheduler", True)
            return bool(worker.work(burst=True, logging_level="WARNING", **options))
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    return run


@pytest.fixture
def subprocess_env(redis_url: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a `flask jobs ...` subprocess that loads tests/jobs_app.py."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        FLASK_APP="jobs_app:create_app",
        JOBS_APP_REDIS_URL=redis_url,
        JOBS_APP_DATABASE_URL=database_url,
        JOBS_APP_INSTANCE_PATH=str(tmp_path / "instance"),
        PYTHONUNBUFFERED="1",
    )
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", *args]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """End a process this test started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def drain_history(app: Flask, *, claim: bool = False) -> Any:
    """Write every history event waiting in the stream, as a worker's recorder would."""
    from flask_jobs.history.recorder import HistoryRecorder

    recorder = HistoryRecorder(app, jobs_app.jobs.state(app), name="test-recorder")
    recorder._ensure_group()
    if claim:  # take over what a killed worker's recorder had read, without the usual wait
        recorder.claim_idle_ms = 0
        recorder._maintenance()
    while recorder.drain_once(block=False):
        pass
    return recorder


# Helpers for the dashboard's jobs tests (test_dashboard_jobs.py, test_dashboard_job_detail.py).


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def csrf(client: Any) -> str:
    """The CSRF token: the cookie a page sets, which the page's forms (or htmx) carry too."""
    import re

    page = text(client.get("/jobs/jobs"))
    cookie = client.get_cookie("flask_jobs_csrf")
    assert cookie is not None
    match = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'"X-CSRF-Token": "([^"]+)"', page
    )
    assert match and match.group(1) == cookie.value
    return str(cookie.value)


def status_of(job_id: str) -> Any:
    """The job's rq ``JobStatus``."""
    job = jobs_app.jobs.fetch_job(job_id)
    return job.get_status()


def failed_jobs(work: Any, *messages: str) -> list[Any]:
    """Enqueue one failing job per message and run them: the ``FlaskJob`` objects."""
    jobs = [jobs_app.fail.enqueue(message) for message in messages]
    work()
    return jobs
