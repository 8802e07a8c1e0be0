"""Scenario 2: Redis restarts, and is unreachable for a while, under live processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request

import jobs_app
from conftest import flask_command, wait_for
from flask_jobs import JobsConnectionError
from reliability import tasks
from reliability.conftest import Processes, SpareRedis, report, scaled

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SCHEDULE = {"tick": {"job": "reliability.tasks:tick", "every": 1}}


def _web_app(redis_url: str, database_url: str, instance: Path) -> Flask:
    """A host app with a view that enqueues, and a 503 page for a Redis outage."""
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": database_url},
        instance_path=str(instance),
    )

    @app.post("/submit")
    def submit() -> Any:
        return {"job": tasks.nap.enqueue(float(request.args.get("nap", 0))).id}

    @app.errorhandler(JobsConnectionError)
    def unavailable(exc: JobsConnectionError) -> Any:
        return {"error": str(exc)}, 503

    return app


def _ticks(server: SpareRedis) -> int:
    client = server.client()
    try:
        return int(client.get(tasks.TICKS_KEY) or 0)
    finally:
        client.close()


def _finished(client: Any, job_ids: list[str]) -> bool:
    return all(client.hget(f"rq:job:{i}", "status") == b"finished" for i in job_ids)


def test_workers_and_scheduler_survive_redis_restarts_and_an_outage(
    app: Flask,
    database_url: str,
    tmp_path: Path,
    spare_redis: SpareRedis,
    subprocess_env: dict[str, str],
    processes: Processes,
) -> None:
    outage = scaled(30, 4)
    restarts = scaled(10, 2)
    env = dict(
        subprocess_env,
        JOBS_APP_REDIS_URL=spare_redis.url,
        JOBS_APP_SCHEDULE=json.dumps(SCHEDULE),
        FLASK_APP="reliability.app:create_app",
    )
    web = _web_app(spare_redis.url, database_url, tmp_path / "web-instance")
    client = web.test_client()
    worker = processes.start(flask_command("jobs", "worker"), env)
    scheduler = processes.start(flask_command("jobs", "scheduler"), env)
    redis_client = spare_redis.client()

    def submit_and_wait(count: int) -> None:
        ids = []
        for _ in range(count):
            answer = client.post("/submit")
            assert answer.status_code == 200, answer.get_data(as_text=True)
            ids.append(answer.get_json()["job"])
        wait_for(lambda: _finished(redis_client, ids), timeout=90, interval=0.2)

    submit_and_wait(3)
    wait_for(lambda: _ticks(spare_redis) >= 2, timeout=60)
    with web.app_context():
        held = [tasks.nap.options(queue="held").enqueue(0).id for _ in range(5)]

    # Restarts: the data persists (AOF), the processes reconnect on their own.
    for _ in range(restarts):
        # Redis goes away under a running job, which ends while it is away
        running = client.post("/submit?nap=1").get_json()["job"]
        wait_for(
            lambda running=running: redis_client.hget(f"rq:job:{running}", "status") == b"started"
        )
        spare_redis.stop()
        time.sleep(2)
        spare_redis.start()
        assert redis_client.lrange("rq:queue:held", 0, -1) == [i.encode() for i in held]
        before = _ticks(spare_redis)
        submit_and_wait(3)
        wait_for(lambda before=before: _ticks(spare_redis) > before + 1, timeout=60)

    # An outage: web requests get a clear 503 at once; nothing restarts.
    spare_redis.stop()
    down_until = time.monotonic() + outage
    refused = 0
    while time.monotonic() < down_until:
        answer = client.post("/submit")
        assert answer.status_code == 503
        assert "cannot reach Redis at redis://127.0.0.1" in answer.get_json()["error"]
        refused += 1
        time.sleep(0.5)
    with web.app_context(), pytest.raises(JobsConnectionError, match="Check JOBS_REDIS_URL"):
        tasks.nap.enqueue(0)
    spare_redis.start()
    before = _ticks(spare_redis)
    submit_and_wait(3)
    wait_for(lambda: _ticks(spare_redis) > before + 1, timeout=90)
    assert redis_client.llen("rq:queue:held") == len(held)
    assert worker.poll() is None and scheduler.poll() is None  # never restarted
    redis_client.close()
    report(
        f"Redis restart: {restarts} restarts and one {outage} s outage under a worker and a "
        f"scheduler: both kept going without a restart; {refused}/{refused} requests during "
        "the outage got a 503 with JobsConnectionError; queued jobs survived every restart"
    )
