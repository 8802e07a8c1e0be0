"""Dashboard page times with many jobs, and rq-dashboard on the same data in the same run.

Fills Redis with N failed jobs (RQ's own layout: job hashes and the failed
registry) and the history with M rows, then times every dashboard page
server-side (Flask test client, so the network is not measured) and
rq-dashboard's failed-jobs page and data on the same Redis.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/dashboard.py [--failed 100000] [--history 1000000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

sys.path.insert(0, str(Path(__file__).parent))

import bench_app

from flask_jobs import FlaskJob

PAGES = [
    ("overview", "/jobs/"),
    ("overview 24h", "/jobs/?range=24h"),
    ("overview 7d", "/jobs/?range=7d"),
    ("queues", "/jobs/queues"),
    ("jobs: failed", "/jobs/jobs?status=failed"),
    ("jobs: text search", "/jobs/jobs?text=timeout"),
    ("jobs: page 100", None),
    ("failures 7d", "/jobs/failures?window=7d"),
    ("job detail", None),
    ("workers", "/jobs/workers"),
    ("api jobs", "/jobs/api/jobs?status=failed"),
]


def fill_redis(app: Flask, count: int) -> list[str]:
    with app.app_context():
        state = bench_app.jobs.state(app)
        conn = state.connection
        conn.flushdb()
        queue = state.queue("default")
        registry = FailedJobRegistry(queue=queue)
        ids: list[str] = []
        for start in range(0, count, 2000):
            with conn.pipeline(transaction=False) as pipe:
                for i in range(start, min(start + 2000, count)):
                    job = FlaskJob.create(
                        "bench_app.noop",
                        args=[i],
                        connection=conn,
                        origin="default",
                        serializer=JSONSerializer,
                        meta={"origin": "bench"},
                    )
                    job.set_status(job.get_status(refresh=False).FAILED, pipeline=pipe)
                    job.save(pipeline=pipe)
                    registry.add(
                        job, ttl=86_400, pipeline=pipe, exc_string="TimeoutError: upstream"
                    )
                    ids.append(job.id)
                pipe.execute()
        return ids


def fill_history(app: Flask, count: int, failed_ids: list[str]) -> None:
    state = bench_app.jobs.state(app)
    state.history.create(app)
    table = state.history.table
    now = datetime.now(timezone.utc)
    functions = [f"bench_app.task_{n}" for n in range(40)]
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.delete(table))
        for start in range(0, count, 20_000):
            rows = []
            for i in range(start, min(start + 20_000, count)):
                failed = i < len(failed_ids) or i % 50 == 0
                ended = now - timedelta(seconds=(count - i) * 600_000 / count)
                rows.append(
                    {
                        "job_id": failed_ids[i] if i < len(failed_ids) else uuid.uuid4().hex,
                        "attempt": 1,
                        "func": functions[i % len(functions)],
                        "queue": "default",
                        "args": f"[{i}]",
                        "kwargs": "{}",
                        "args_truncated": False,
                        "status": "failed" if failed else "finished",
                        "status_rank": 2,
                        "enqueued_at": ended - timedelta(seconds=2),
                        "started_at": ended - timedelta(seconds=1),
                        "ended_at": ended,
                        "run_seconds": 1.0,
                        "wait_seconds": 1.0,
                        "exc_type": "TimeoutError" if failed else None,
                        "exc_message": "timeout talking to upstream" if failed else None,
                        "origin": "bench",
                        "updated_at": ended,
                    }
                )
            conn.execute(sa.insert(table), rows)


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (response.status_code, response.get_data()[:300])
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * (len(samples) - 1)))]


def rq_dashboard_client(redis_url: str) -> Any:
    try:
        from rq_dashboard import web
        from rq_dashboard.cli import make_flask_app
    except ImportError:
        return None
    web.config.serializer = JSONSerializer  # our jobs are JSON
    app = make_flask_app(None, None, None, "/rq")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    web.setup_rq_connection(app)
    return app.test_client()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="flask-jobs-dashboard-bench-"))
    app = bench_app.create_app(history=True, history_uri=f"sqlite:///{folder / 'history.db'}")
    started = time.perf_counter()
    ids = fill_redis(app, options.failed)
    fill_history(app, options.history, ids)
    # What every recorder does once a minute in production: count each closed hour once.
    rolled = time.perf_counter()
    bench_app.jobs.state(app).history.roll_up(app)
    rolled = time.perf_counter() - rolled
    print(
        f"dashboard bench: {options.failed} failed jobs in Redis, {options.history} history rows "
        f"(SQLite), filled in {time.perf_counter() - started:.0f} s (hourly roll-up of a week: "
        f"{rolled:.1f} s); {options.repeat} requests each"
    )
    client = app.test_client()
    with app.app_context():
        cursor = None
        for _ in range(99):
            page = bench_app.jobs.history.search(status="failed", cursor=cursor, limit=50)
            cursor = page.next_cursor
    results = {}
    for name, path in PAGES:
        if name == "jobs: page 100":
            path = f"/jobs/jobs?status=failed&cursor={cursor}"
        if name == "job detail":
            path = f"/jobs/job/{ids[len(ids) // 2]}"
        assert path is not None
        results[name] = timed(lambda p=path: client.get(p), options.repeat)
        print(f"  {name:20s} p50 {results[name][0]:7.1f} ms   p95 {results[name][1]:7.1f} ms")
    peer = rq_dashboard_client(app.config["JOBS_REDIS_URL"])
    if peer is None:
        print("  rq-dashboard: not installed (pip install -r bench/requirements.txt)")
        return
    # Same data, same process, requests interleaved so machine noise hits both alike.
    ours_ms: list[float] = []
    theirs_ms: list[float] = []
    for _ in range(options.repeat):
        for samples, call in (
            (ours_ms, lambda: client.get("/jobs/jobs?status=failed&limit=100")),
            (theirs_ms, lambda: peer.get("/rq/0/data/jobs/default/failed/100/asc/1.json")),
        ):
            begun = time.perf_counter()
            response = call()
            samples.append((time.perf_counter() - begun) * 1000)
            assert response.status_code == 200
    ours_p50, ours_p95 = _summary(ours_ms)
    theirs_p50, theirs_p95 = _summary(theirs_ms)
    print(
        f"  failed jobs, interleaved x{options.repeat}: ours (100 rows, whole page) p50 "
        f"{ours_p50:.1f} / p95 {ours_p95:.1f} ms; rq-dashboard (its data call, 100 jobs) "
        f"p50 {theirs_p50:.1f} / p95 {theirs_p95:.1f} ms"
    )
    print(
        f"  ratio rq-dashboard / ours: p50 {theirs_p50 / ours_p50:.1f}x, "
        f"p95 {theirs_p95 / ours_p95:.1f}x"
    )


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
