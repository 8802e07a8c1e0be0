"""Scheduler lateness and failover.

Runs three `flask jobs scheduler` processes on one Redis with a schedule that
fires every second, for N fires: lateness is the time from each fire time to
its job being enqueued (p50/p99). Then kills the leader with SIGKILL and
measures the time until a standby enqueues the next run.

    .venv/bin/python bench/scheduler.py [--fires 60]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import redis

from flask_jobs.keys import SCHEDULER_LEADER_KEY, job_key, queue_key, schedule_fired_key

HERE = Path(__file__).parent
PREFIX = schedule_fired_key("tick", 0).removesuffix("0")


def claims(conn: redis.Redis) -> list[int]:
    return sorted(int(k.rsplit(b":", 1)[1]) for k in conn.keys(PREFIX + "*"))


def enqueued_times(conn: redis.Redis) -> list[float]:
    ids = [i.decode() for i in conn.lrange(queue_key("default"), 0, -1)]
    times = []
    for job_id in ids:
        raw = conn.hget(job_key(job_id), "enqueued_at")
        if raw:
            value = raw.decode().replace("Z", "+00:00")
            times.append(datetime.fromisoformat(value).timestamp())
    return sorted(times)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fires", type=int, default=60)
    options = parser.parse_args()
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE),
        FLASK_APP="bench_app:create_app",
        BENCH_REDIS_URL=url,
        BENCH_SCHEDULE=json.dumps({"tick": {"job": "bench_app:noop", "args": [0], "every": 1}}),
    )
    command = [sys.executable, "-m", "flask", "jobs", "scheduler"]
    procs = [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        deadline = time.monotonic() + options.fires + 30
        while len(claims(conn)) < options.fires + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        fired = claims(conn)[: options.fires]
        enqueued = enqueued_times(conn)[: len(fired)]
        lateness = [(e - f / 1000) * 1000 for f, e in zip(fired, enqueued, strict=False)]
        leader_pid = int(conn.get(SCHEDULER_LEADER_KEY).decode().split(":")[1])
        before = len(claims(conn))
        os.kill(leader_pid, signal.SIGKILL)
        killed = time.monotonic()
        while len(claims(conn)) == before and time.monotonic() - killed < 60:
            time.sleep(0.01)
        failover = time.monotonic() - killed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    duplicates = len(enqueued_times(conn)) - len(claims(conn))
    print(f"scheduler bench: every-1s schedule, 3 scheduler processes, {len(lateness)} fires")
    print(
        f"  lateness (fire time -> enqueued): p50 {percentile(lateness, 0.5):.1f} ms, "
        f"p99 {percentile(lateness, 0.99):.1f} ms, max {max(lateness):.1f} ms"
    )
    print(f"  failover after kill -9 of the leader: next run enqueued after {failover:.1f} s")
    print(f"  jobs enqueued minus fire times claimed (duplicates): {duplicates}")


if __name__ == "__main__":
    main()
