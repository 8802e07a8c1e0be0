"""Two apps on one Redis server: one database number each, and a guard against sharing one."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskCliRunner

import jobs_app
from flask_jobs import Jobs
from flask_jobs.history.events import unpacked
from flask_jobs.keys import OWNER_KEY
from flask_jobs.redis.embedded import EmbeddedRedis
from flask_jobs.worker import build_worker

other_jobs = Jobs()


@other_jobs.job
def multiply(a: int, b: int) -> int:
    """The second app's job."""
    return a * b


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server of this test's own, so any database number is ours."""
    embedded = EmbeddedRedis(tmp_path / "redis", persist=False)
    embedded.start()
    try:
        yield embedded.url.removesuffix("?db=0")
    finally:
        embedded.stop()


def first_app(url: str, tmp_path: Path) -> Flask:
    return jobs_app.create_app(
        {"JOBS_REDIS_URL": url, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}"},
        instance_path=str(tmp_path / "a"),
    )


def second_app(url: str, tmp_path: Path) -> Iterator[Flask]:
    app = Flask(__name__, instance_path=str(tmp_path / "b"))
    app.config.update(TESTING=True, JOBS_REDIS_URL=url)
    other_jobs.init_app(app)
    try:
        yield app
    finally:
        other_jobs.state(app).close()


def burst(app: Flask) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = build_worker(app, app.extensions["jobs"], worker_class="default")
        worker.run_recorder = False  # type: ignore[union-attr]  # keep the events in the stream
        worker.work(burst=True, logging_level="WARNING")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url)
    try:
        return {key.decode() for key in client.scan_iter()}
    finally:
        client.close()


def test_two_apps_on_two_database_numbers_do_not_see_each_other(
    server: str, tmp_path: Path
) -> None:
    url_a, url_b = f"{server}?db=1", f"{server}?db=2"
    app_a = first_app(url_a, tmp_path)
    for app_b in second_app(url_b, tmp_path):
        with app_a.app_context():
            job_a = jobs_app.add.enqueue(2, 3)  # both on a queue named "default"
        with app_b.app_context():
            job_b = multiply.enqueue(2, 3)
        burst(app_a)
        with app_a.app_context():
            assert job_a.return_value(refresh=True) == 5
        with app_b.app_context():
            assert other_jobs.get_queue().job_ids == [job_b.id]  # untouched by app A's worker
        burst(app_b)
        with app_b.app_context():
            assert job_b.return_value(refresh=True) == 6
        a, b = keys(url_a), keys(url_b)
        assert f"rq:job:{job_a.id}" in a and f"rq:job:{job_a.id}" not in b
        assert f"rq:job:{job_b.id}" in b and f"rq:job:{job_b.id}" not in a
        # Each database has its own history stream, holding only its own app's events.
        for url, job_id in ((url_a, job_a.id), (url_b, job_b.id)):
            client = redis.Redis.from_url(url)
            events = client.xrange("flask_jobs:history")
            client.close()
            assert events and {unpacked(fields)["job_id"] for _, fields in events} == {job_id}


def invoke(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = runner.invoke(args=list(args))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        return result.exit_code, result.output + "".join(
            traceback.format_exception(*result.exc_info)
        )
    return result.exit_code, result.output


def test_a_second_app_on_the_same_database_is_refused(server: str, tmp_path: Path) -> None:
    url = f"{server}?db=3"
    app_a = first_app(url, tmp_path)
    code, output = invoke(app_a.test_cli_runner(), "jobs", "worker", "--burst")
    assert code == 0, output
    assert keys(url) >= {OWNER_KEY}
    for app_b in second_app(url, tmp_path):
        runner = app_b.test_cli_runner()
        for command in (["jobs", "worker", "--burst"], ["jobs", "scheduler"]):
            code, output = invoke(runner, *command)
            assert code == 1
            [line] = output.strip().splitlines()
            assert "is used by the Flask app 'jobs_app', not 'test_multi_app'" in line
            assert "own Redis database number" in line
    # The same app again (another host, a restart) is welcome.
    code, output = invoke(app_a.test_cli_runner(), "jobs", "worker", "--burst")
    assert code == 0, output
