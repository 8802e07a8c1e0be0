"""Fixtures of the reliability suite: scale, subprocess environments, spare redis-servers.

``JOBS_RELIABILITY_SCALE`` scales every scenario's counts and outage lengths: 1 runs
the issue's full figures (20 kills of each kind, 2,000 jobs through a 30 s outage,
a 20,000-job soak, 10,000 fuzzed requests); the default keeps CI's share small.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from sqlalchemy import create_engine, text

from conftest import stop_process, wait_for
from flask_jobs.redis.embedded import find_redis_server
from reliability.app import CONFIG_ENV

SCALE = float(os.environ.get("JOBS_RELIABILITY_SCALE") or "0.05")


def scaled(full: float, minimum: float) -> int:
    """``full`` times the scale, but never below ``minimum``."""
    return int(max(minimum, round(full * SCALE)))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(line: str) -> None:
    """A figure for the README's Reliability section, shown by ``pytest -s``."""
    sys.stderr.write(f"\n[reliability] {line}\n")
    path = os.environ.get("JOBS_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


class SpareRedis:
    """A redis-server this test starts, stops and restarts on a port of its own."""

    def __init__(self, folder: Path, *, persist: bool = True) -> None:
        self.folder = folder
        self.port = free_port()
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = find_redis_server()
        if binary is None:
            pytest.skip("no redis-server binary")
        save = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", *save, "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, timeout=10)

    def answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: redis-server writes its data and exits."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def _database_params() -> list[Any]:
    urls: list[Any] = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get("JOBS_TEST_DATABASE_URL"):
        urls.append(pytest.param("postgres", id="postgres"))
    return urls


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """As the suite's fixture, but PostgreSQL in a schema of this test's own: the database is
    shared with other suites, whose ``drop_all`` must not pull the table from under us."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = os.environ["JOBS_TEST_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"rel_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield base + "?options=" + quote(f"-csearch_path={schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def spare_redis(tmp_path: Path) -> Iterator[SpareRedis]:
    server = SpareRedis(tmp_path / "spare-redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rel_env(subprocess_env: dict[str, str]) -> Callable[..., dict[str, str]]:
    """An environment for ``flask jobs ...`` subprocesses of ``reliability.app``."""

    def make(config: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
        env = dict(subprocess_env, FLASK_APP="reliability.app:create_app")
        env[CONFIG_ENV] = json.dumps(config or {})
        env.update(extra)
        return env

    return make


class Processes:
    """Subprocesses a test starts (each in a session of its own); all stopped at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[Any]] = []

    def start(self, args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(args, env=env, start_new_session=True, **options)
        self.started.append(proc)
        return proc

    def kill_group(self, proc: subprocess.Popen[Any]) -> None:
        """SIGKILL the process and every process it started (its session's group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.started:
            stop_process(proc)
            # whatever it left behind in its group (a work horse, a recorder)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_alive(proc.pid):
                time.sleep(0.05)
            if _group_alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()
