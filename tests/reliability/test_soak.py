"""Scenario 4: a soak: many jobs, 4 workers, random failures, 2 schedulers, a polled dashboard."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

import jobs_app
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs import Retry
from reliability import app as rel_app
from reliability import tasks
from reliability.conftest import Processes, report, scaled

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TTL = 3  # seconds results and failures stay in Redis, so that the soak can check for leaks
SCHEDULE = {"tick": {"job": "reliability.tasks:tick", "every": 1}}
CONFIG = {"JOBS_RESULT_TTL": TTL, "JOBS_FAILURE_TTL": TTL}
POLLED = ["/jobs/", "/jobs/api/overview", "/jobs/jobs", "/jobs/queues", "/jobs/workers",
          "/jobs/schedules", "/jobs/failures", "/jobs/api/jobs?status=failed"]  # fmt: skip
#: Keys that exist once per app or queue (not per job), so they may stay without a TTL.
BOUNDED = re.compile(
    r"^(rq:queues|rq:queue:[^:]+|rq:(finished|failed|wip|scheduled|deferred|canceled):[^:]+"
    r"|rq:workers(:[^:]+)?|flask_jobs:(app|history)|flask_jobs:schedule:[^:]+|rel:.*)$"
)


@pytest.fixture
def soak_app(redis_client: redis.Redis, redis_url: str, database_url: str) -> Iterator[Flask]:
    app = rel_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": database_url, **CONFIG}
    )
    with app.app_context():
        jobs_app.db.create_all()
        yield app
        jobs_app.db.session.remove()
        jobs_app.db.engine.dispose()


def _keys(conn: redis.Redis) -> dict[str, int]:
    return {key.decode(): int(conn.ttl(key)) for key in conn.scan_iter(count=1000)}


def _poll(app: Flask, stop: threading.Event, seen: dict[int, int]) -> None:
    client = app.test_client()
    while not stop.is_set():
        for url in POLLED:
            with app.app_context():
                code = client.get(url).status_code
            seen[code] = seen.get(code, 0) + 1
        stop.wait(0.5)


def test_soak_every_job_accounted_for_no_duplicate_runs_no_leaked_keys(
    soak_app: Flask,
    subprocess_env: dict[str, str],
    processes: Processes,
    tmp_path: Path,
) -> None:
    app = soak_app
    conn = jobs_app.jobs.connection
    count = scaled(20_000, 600)
    baseline = _keys(conn)
    env = dict(
        subprocess_env,
        FLASK_APP="reliability.app:create_app",
        JOBS_APP_SCHEDULE=json.dumps(SCHEDULE),
        JOBS_REL_CONFIG=json.dumps(CONFIG),
    )
    seen: dict[int, int] = {}
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(app, stop, seen), daemon=True)
    started = time.monotonic()
    log = tmp_path / "processes.log"
    with open(log, "w") as err:
        schedulers = [
            processes.start(flask_command("jobs", "scheduler"), env, stderr=err) for _ in range(2)
        ]
        workers = processes.start(
            flask_command("jobs", "worker", "--concurrency", "4"), env, stderr=err
        )
        poller.start()
        retry = tasks.soak.options(retry=Retry(3, delay=0, jitter=False))
        ids = [retry.enqueue(n, 0.01).id for n in range(count)]
        try:
            wait_for(lambda: conn.llen("rq:queue:default") == 0, timeout=count / 5, interval=1)
            for proc in (*schedulers, workers):
                stop_process(proc, timeout=60)
        finally:
            stop.set()
            poller.join(30)
    elapsed = time.monotonic() - started
    drain_history(app, claim=True)

    # Every job: finished, or failed after its retries; history rows = attempts.
    table = jobs_app.jobs.history_table
    soak_rows = table.c.func == "reliability.tasks.soak"
    with jobs_app.db.engine.connect() as db:
        by_status = dict(
            db.execute(
                select(table.c.status, func.count()).where(soak_rows).group_by(table.c.status)
            ).all()
        )
        finals = dict(
            db.execute(
                select(table.c.job_id, table.c.status)
                .where(soak_rows, table.c.status.in_(["finished", "failed"]))
            ).all()
        )  # fmt: skip
        ticks = db.execute(
            select(func.count()).where(table.c.origin == "schedule:tick")
        ).scalar_one()
    attempts = int(conn.get(tasks.ATTEMPTS_KEY) or 0)
    finished = sum(1 for s in finals.values() if s == "finished")
    failed = sum(1 for s in finals.values() if s == "failed")
    assert set(finals) == set(ids), f"{len(set(ids) - set(finals))} jobs unaccounted for"
    assert finished + failed == count
    assert sum(by_status.values()) == attempts, (by_status, attempts)
    assert set(by_status) <= {"finished", "failed", "retried"}, by_status

    # Exactly one enqueue per fire time: as many tick jobs as claimed fire times.
    claims = [k.decode() for k in conn.scan_iter("flask_jobs:schedule:tick:fired:*", count=1000)]
    assert ticks == len(claims) == int(conn.get(tasks.TICKS_KEY) or 0), (ticks, len(claims))
    # Each claim lives no longer than it can matter (the default misfire_grace, 60 s, plus
    # an hour for clocks that disagree), not a week: ~3,660 keys for this schedule, not 604,800.
    assert all(0 < int(conn.ttl(k)) <= 60 + 3600 for k in claims)

    # The dashboard answered every poll.
    assert set(seen) == {200}, seen

    # After the TTLs, nothing per job is left without an expiry.
    time.sleep(TTL + 1)
    processes.start(flask_command("jobs", "worker", "--burst"), env).wait(60)  # RQ's cleanup
    after = _keys(conn)
    leaked = {k: t for k, t in after.items() if t == -1 and not BOUNDED.match(k)}
    per_job = [k for k in after if k.startswith(("rq:job:", "rq:results:", "rq:execution"))]
    registries = {
        k: conn.zcard(k) for k in after if re.match(r"^rq:(finished|failed|wip):", k)
    }  # fmt: skip
    expiring = {k for k, t in after.items() if t > 0} - set(claims)
    report(
        f"soak: {count} jobs on 4 worker processes (1% random failures, 3 retries), 2 schedulers "
        f"every 1 s, dashboard polled {sum(seen.values())} times, in {elapsed:.0f} s: "
        f"{finished} finished + {failed} failed after retries = {count}/{count}; "
        f"{attempts} attempts = {sum(by_status.values())} history rows "
        f"({by_status.get('retried', 0)} retried); {ticks} scheduled runs for {len(claims)} "
        f"fire times (0 duplicates); keys before {len(baseline)}, after {len(after)} "
        f"({len(claims)} fire-time claims expiring within 61 min, {len(expiring)} other expiring, "
        f"{len(per_job)} per-job keys, {len(leaked)} leaked); polls {seen}"
    )
    assert not leaked, leaked
    assert not per_job, per_job[:20]
    assert not any(registries.values()), registries
