"""Fixtures of the example app's tests: a real Redis, SQLite per test, a burst worker."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from example_app import db, jobs
from example_app.mailsink import MailSink, start_sink
from flask_jobs.worker import build_worker

from .support import REDIS_URL, make_app


@pytest.fixture(scope="module")
def redis_available() -> None:
    """Skip locally, but fail in CI, when the test Redis is not answering."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is required in CI ({exc})")
        pytest.skip(f"Redis at {REDIS_URL} is not available ({exc})")
    finally:
        client.close()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    """The example's SMTP sink on a free port, on a thread of this process."""
    server = start_sink(tmp_path / "mailbox")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(redis_available: None, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    with app.app_context():
        jobs.connection.flushdb()
    yield app
    with app.app_context():
        jobs.connection.flushdb()
        db.session.remove()
        db.engine.dispose()
    jobs.state(app).close()  # an unclosed client is a ResourceWarning, an error here


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def work(app: Flask) -> Callable[[], bool]:
    """Run a real burst worker in this process, restoring pytest's signal handlers after."""

    def run() -> bool:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = build_worker(app, jobs.state(app))
            return bool(worker.work(burst=True, logging_level="WARNING"))
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    return run
