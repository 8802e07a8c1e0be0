"""Server-side times of the dashboard's live pages on a full Redis.

Fills Redis with failed, delayed, retrying and running jobs (job hashes and
registry entries as RQ writes them), then times each live page through the
app's test client (p50 / p95 of 20 requests). Flushes the Redis database
before and after: give it one of its own.

    .venv/bin/python bench/live_pages.py [--redis redis://127.0.0.1:6379/15]
        [--failed 100000] [--delayed 15000] [--retrying 5000] [--running 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import jobs_app
from flask_jobs.jobs.flask_job import FlaskJob

PAGES = [
    "/jobs/", "/jobs/failed", "/jobs/failed?offset=5000", "/jobs/retrying", "/jobs/scheduled",
    "/jobs/running", "/jobs/workers", "/jobs/api/live/failed", "/jobs/api/live/retrying",
]  # fmt: skip
RAN = "2026-12-01T10:00:00.000000Z"


def fill(conn: redis.Redis, state: Any, kind: str, count: int) -> None:
    """``count`` jobs of ``kind`` on queue default, 2,000 per pipeline."""
    queue = state.queue("default")
    now = time.time()
    pipe = conn.pipeline(transaction=False)
    for i in range(count):
        job = FlaskJob.create("jobs_app.add", args=(i, i), connection=conn, origin="default")
        mapping = job.to_dict()
        if kind == "failed":
            mapping.update(status="failed", ended_at=RAN)
            pipe.zadd(queue.failed_job_registry.key, {job.id: now + 86_400 + i})
        elif kind == "running":
            mapping.update(status="started", started_at=RAN, worker_name="bench")
            pipe.zadd(queue.started_job_registry.key, {f"{job.id}:run{i}": now + 600})
        else:
            mapping["status"] = "scheduled"
            if kind == "retrying":  # it ran before: waiting for its retry
                mapping["started_at"] = RAN
            pipe.zadd(queue.scheduled_job_registry.key, {job.id: now + 60 + i})
        pipe.hset(job.key, mapping=mapping)
        if i % 2_000 == 1_999:
            pipe.execute()
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    for kind, default in (("failed", 100_000), ("delayed", 15_000), ("retrying", 5_000),
                          ("running", 20)):  # fmt: skip
        parser.add_argument(f"--{kind}", type=int, default=default)
    args = parser.parse_args()
    conn = redis.Redis.from_url(args.redis)
    conn.flushdb()
    folder = tempfile.mkdtemp()
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": args.redis, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/b.db"}
    )
    try:
        with app.app_context():
            jobs_app.db.create_all()
            state = jobs_app.jobs.state(app)
            for kind in ("failed", "delayed", "retrying", "running"):
                fill(conn, state, kind, getattr(args, kind))
        client = app.test_client()
        print(f"{args.failed:,} failed, {args.delayed:,} delayed, {args.retrying:,} retrying, "
              f"{args.running:,} running; p50 / p95 of 20 requests")  # fmt: skip
        for path in PAGES:
            times = []
            for _ in range(20):
                start = time.perf_counter()
                answer = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            times.sort()
            print(f"{path:32} {statistics.median(times):7.1f} / {times[18]:7.1f} ms")
    finally:
        conn.flushdb()


if __name__ == "__main__":
    main()
