"""Scenario 3: the history database is down for a while during a run of jobs."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from sqlalchemy import create_engine, func, select, text

import jobs_app
from conftest import drain_history, flask_command, wait_for
from reliability import tasks
from reliability.conftest import Processes, report, scaled
from reliability.proxy import TcpProxy

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("JOBS_TEST_DATABASE_URL") else [])


class Outage:
    """Takes one backend's history database away and brings it back."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.proxy: TcpProxy | None = None
        self._lock: sqlite3.Connection | None = None
        if backend == "sqlite":
            self.path = tmp_path / "history.db"
            self.test_url = self.worker_url = f"sqlite:///{self.path}"
            return
        # PostgreSQL through a proxy the test can cut, in a schema of our own (the
        # database is shared with other suites).
        base = os.environ["JOBS_TEST_DATABASE_URL"].replace(
            "postgresql://", "postgresql+psycopg://"
        )
        self.schema = f"rel_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        admin.dispose()
        self.base = base
        self.proxy = TcpProxy(("127.0.0.1", 5432))
        options = "?options=" + quote(f"-csearch_path={self.schema}")
        self.test_url = base + options
        self.worker_url = base.replace("127.0.0.1:5432", f"127.0.0.1:{self.proxy.port}") + options

    def begin(self) -> None:
        if self.proxy is not None:
            self.proxy.down()
            return
        # A writer that holds the database's exclusive lock: every other write fails.
        self._lock = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._lock.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self.proxy is not None:
            self.proxy.up()
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None

    def drop(self) -> None:
        if self.proxy is not None:
            self.proxy.down()
            admin = create_engine(self.base)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
            admin.dispose()


@pytest.fixture(params=BACKENDS)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    made = Outage(request.param, tmp_path)
    try:
        yield made
    finally:
        made.end()
        made.drop()


def _rows(app: Flask) -> tuple[int, int]:
    table = jobs_app.jobs.history_table
    with app.app_context(), jobs_app.db.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        done = conn.execute(
            select(func.count()).select_from(table).where(table.c.status == "finished")
        ).scalar_one()
    return int(total), int(done)


def test_history_database_outage_fails_no_job_and_loses_no_row(
    redis_client: redis.Redis,
    redis_url: str,
    outage: Outage,
    subprocess_env: dict[str, str],
    processes: Processes,
    tmp_path: Path,
) -> None:
    count = scaled(2000, 200)
    seconds = scaled(30, 10)  # longer than SQLite's 5 s busy timeout: a write must fail
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": outage.test_url}
    )
    with app.app_context():
        jobs_app.db.create_all()
    env = dict(
        subprocess_env,
        JOBS_APP_DATABASE_URL=outage.worker_url,
        FLASK_APP="reliability.app:create_app",
    )
    first = count // 2
    with app.app_context():
        ids = [tasks.nap.enqueue(0).id for _ in range(first)]
    log = tmp_path / "worker.log"
    with open(log, "w") as err:
        processes.start(flask_command("jobs", "worker", "--concurrency", "2"), env, stderr=err)
        failed = "rq:failed:default"
        try:
            wait_for(lambda: redis_client.llen("rq:queue:default") < first * 0.8, timeout=120)
            outage.begin()
            # The rest run during the outage, however fast the worker drained the first:
            # their history has to wait for the database.
            with app.app_context():
                ids += [tasks.nap.enqueue(0).id for _ in range(count - first)]
            time.sleep(seconds)
            # The recorder may spend the outage in its hourly chores (each waits out the
            # busy timeout): hold the database until one of its writes has failed.
            wait_for(lambda: "cannot write to the history database" in log.read_text(), 120)
            outage.end()
            wait_for(lambda: redis_client.llen("rq:queue:default") == 0, timeout=300, interval=0.5)
            wait_for(lambda: _rows(app)[1] == count, timeout=180, interval=0.5)
        except AssertionError as exc:
            outage.end()  # to read the rows
            left = redis_client.llen("rq:queue:default")
            raise AssertionError(
                f"{exc}: {left} queued, rows {_rows(app)}; worker log:\n{log.read_text()[-5000:]}"
            ) from None
    with app.app_context():
        drain_history(app)
    statuses = [redis_client.hget(f"rq:job:{i}", "status") for i in ids]
    assert statuses.count(b"finished") == count
    assert redis_client.zcard(failed) == 0
    assert _rows(app) == (count, count)
    assert "cannot write to the history database" in log.read_text()
    with app.app_context():
        jobs_app.db.engine.dispose()
    report(
        f"history database outage ({outage.backend}, {seconds} s, during {count} jobs): "
        f"0 jobs failed; {count}/{count} history rows written after it came back"
    )
