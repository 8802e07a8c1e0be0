"""Done-when for the deployment guide: the Procfile's commands, run as a production-like setup.

gunicorn (2 web processes) + 2 ``flask jobs worker`` + 2 ``flask jobs scheduler``, the
example app, one Redis and a PostgreSQL database of its own, started with exactly the
commands in deploy/Procfile and the variables docs/deploy.md lists. Skipped locally
without PostgreSQL (JOBS_TEST_DATABASE_URL) or gunicorn; fails in CI instead.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from conftest import stop_process, wait_for
from example_app.mailsink import MailSink, read_mailbox, start_sink
from flask_jobs.redis.embedded import find_redis_server

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def procfile() -> dict[str, str]:
    """The process types of deploy/Procfile, by name."""
    entries = {}
    for line in (ROOT / "deploy" / "Procfile").read_text().splitlines():
        match = re.match(r"^([a-z]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database made for this test, dropped after it."""
    url = os.environ.get("JOBS_TEST_DATABASE_URL")
    if not url:
        _missing("PostgreSQL (JOBS_TEST_DATABASE_URL)")
    assert url is not None
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"flask_jobs_e2e_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port, as the guide configures one."""
    binary = find_redis_server()
    if binary is None:
        _missing("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
            *("--save", "", "--appendonly", "yes", "--maxmemory-policy", "noeviction"),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        stop_process(proc)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    server = start_sink(tmp_path / "mailbox")
    yield server
    server.shutdown()
    server.server_close()


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=10) as response:
                return response.status, response.read().decode(), ""
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.headers.get("Location") or ""


def test_procfile_setup_end_to_end(
    postgres_database: str, redis_server: str, sink: MailSink, tmp_path: Path
) -> None:
    if shutil.which("gunicorn", path=str(BIN)) is None:
        _missing("gunicorn (pip install 'flask-jobs[test]')")
    commands = procfile()
    port = free_port()
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        PORT=str(port),
        BIND="127.0.0.1",
        WEB_CONCURRENCY="2",
        # The variables of deploy/app.env.example, for this machine.
        FLASK_APP="example_app",
        WSGI_APP="example_app:create_app()",
        FLASK_SECRET_KEY=uuid.uuid4().hex,
        FLASK_SQLALCHEMY_DATABASE_URI=postgres_database,
        FLASK_JOBS_REDIS_URL=redis_server,
        FLASK_EXAMPLE_CREATE_TABLES="false",
        FLASK_EXAMPLE_SMTP_PORT=str(sink.server_address[1]),
        FLASK_EXAMPLE_MAILBOX=str(sink.folder),
        FLASK_EXAMPLE_REPORT_STEP_SECONDS="0.05",
        # A schedule that fires often enough to watch: every 2 s instead of 10 s.
        FLASK_JOBS_SCHEDULE__heartbeat__every="2s",
        PYTHONUNBUFFERED="1",
    )
    env.pop("FLASK_DEBUG", None)

    def start(kind: str, index: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{kind}-{index}.log"
        with log.open("wb") as out:
            # `exec`, as a Procfile runner does, so the signal reaches the process itself.
            proc = subprocess.Popen(
                ["bash", "-c", "exec " + commands[kind]],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return proc, log

    release = subprocess.run(
        ["bash", "-c", commands["release"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert release.returncode == 0, release.stdout + release.stderr
    assert "flask_jobs_history" in release.stdout

    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    killed: set[str] = set()
    try:
        for kind, count in (("web", 1), ("worker", 2), ("scheduler", 2)):
            for index in range(count):
                proc, log = start(kind, index)
                processes.append((f"{kind}-{index}", proc, log))
        browser = Browser(f"http://127.0.0.1:{port}")

        def web_up() -> bool:
            for name, proc, log in processes:
                assert proc.poll() is None, f"{name} exited:\n{log.read_text()}"
            try:
                return browser.request("/")[0] == 200
            except OSError:
                return False

        wait_for(web_up, timeout=60, interval=0.3)

        # Enqueue over HTTP, and see the jobs finish.
        status, _, location = browser.request("/reports", {"title": "quarterly"})
        assert (status, location) == (303, "/")
        status, _, _ = browser.request("/welcome", {"address": "ops@example.com"})
        assert status == 303
        wait_for(lambda: "built in 5 steps" in browser.request("/")[1], timeout=60, interval=0.5)
        wait_for(lambda: read_mailbox(sink.folder), timeout=60, interval=0.3)
        assert read_mailbox(sink.folder)[0].to == "ops@example.com"

        # Two schedulers, one enqueue per fire time; the standby takes over from a dead leader.
        def fires(name: str | None = None) -> list[tuple[str, str]]:
            found = []
            for each, _, log in processes:
                if each.startswith("scheduler") and name in (None, each):
                    found += re.findall(
                        r"scheduler: enqueued (\S+) for heartbeat \(due (\S+)\)", log.read_text()
                    )
            return found

        wait_for(lambda: len(fires()) >= 3, timeout=60, interval=0.5)
        schedulers = [(n, p) for n, p, _ in processes if n.startswith("scheduler")]
        [(leader, leader_proc)] = [(n, p) for n, p in schedulers if fires(n)]
        [(standby, _)] = [(n, p) for n, p in schedulers if n != leader]
        leader_proc.kill()  # SIGKILL: no chance to hand over its lock
        leader_proc.wait(10)
        killed.add(leader)
        wait_for(lambda: len(fires(standby)) >= 2, timeout=60, interval=0.5)
        fired = fires()
        due_times = [due for _, due in fired]
        assert len(set(due_times)) == len(due_times), fired
        assert len({job for job, _ in fired}) == len(fired)

        assert len(fires(leader)) >= 1 and len(fires(standby)) >= 2

        # The jobs and their history are in PostgreSQL, recorded by the workers' recorders.
        engine = sa.create_engine(postgres_database)
        try:

            def heartbeats_recorded() -> bool:
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.text(
                            "SELECT job_id FROM flask_jobs_history WHERE status = 'finished' "
                            "AND origin = 'schedule:heartbeat'"
                        )
                    ).all()
                return {job for job, _ in fired} <= {row[0] for row in rows}

            wait_for(heartbeats_recorded, timeout=60, interval=0.5)
            with engine.connect() as conn:
                report = conn.execute(sa.text("SELECT status FROM report")).scalar_one()
            assert report == "done"
        finally:
            engine.dispose()

        # The dashboard, behind the app's login.
        status, _, location = browser.request("/jobs/")
        assert (status, location) == (302, "/login?next=/jobs/")
        status, _, location = browser.request(
            "/login", {"name": "admin", "password": "admin", "next": "/jobs/"}
        )
        assert (status, location) == (303, "/jobs/")
        status, page, _ = browser.request("/jobs/")
        assert status == 200
        assert "heartbeat" in browser.request("/jobs/schedules")[1]
        status, page, _ = browser.request("/jobs/api/overview")
        assert status == 200
        assert len(json.loads(page)["workers"]) == 2  # both worker processes, as RQ sees them
        # A read-only user sees the dashboard but may not act.
        viewer = Browser(browser.base)
        viewer.request("/login", {"name": "viewer", "password": "viewer", "next": "/jobs/"})
        assert viewer.request("/jobs/")[0] == 200
        assert viewer.request("/jobs/queues/default/pause", {"csrf_token": "x"})[0] == 403
    finally:
        for _, proc, _ in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, _ in processes:
            try:
                proc.wait(timeout=30)  # one SIGTERM: a second one would be a cold shutdown
            except subprocess.TimeoutExpired:
                stop_process(proc)
    # Every process stopped cleanly on SIGTERM: warm shutdown, nothing killed.
    for name, proc, log in processes:
        if name in killed:
            continue
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
