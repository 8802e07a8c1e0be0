"""The release of dependents: a chord of many members and a long chain, drained by one
worker process; its CPU time and wall time, Redis's CPU and commands.

Usage (a Redis of its own: the numbers are INFO commandstats deltas)::

    redis-server --port 6394 --save '' --appendonly no --daemonize yes
    BENCH_REDIS_URL=redis://127.0.0.1:6394/0 .venv/bin/python bench/dependents.py
    redis-cli -p 6394 shutdown nosave
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench_app
import redis

HERE = Path(__file__).parent


def _commands(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _cpu(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def drain(url: str) -> dict[str, Any]:
    """One burst worker process over the default queue; what it cost."""
    client = redis.Redis.from_url(url)
    client.config_resetstat()
    cpu0 = _cpu(client)
    env = dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=str(HERE))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "bench_app:create_app(history=False)",
         "jobs", "worker", "--burst"],
        env=env, check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    commands = _commands(client)
    return {
        "wall_s": round(wall, 2),
        "worker_cpu_s": round(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2
        ),
        "redis_cpu_s": round(_cpu(client) - cpu0, 2),
        "commands": sum(
            n for name, n in commands.items() if name not in ("info", "config|resetstat")
        ),
        "top": sorted(commands.items(), key=lambda kv: -kv[1])[:8],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    opts = parser.parse_args()
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6394/0")
    app = bench_app.create_app(history=False)
    jobs = bench_app.jobs
    client = redis.Redis.from_url(url)
    client.flushdb()
    with app.app_context():
        group = jobs.group(*(bench_app.noop.si(i) for i in range(opts.members)))
        chord = jobs.chord(group, bench_app.noop.si(-1)).enqueue()
    chord_cost = drain(url)
    with app.app_context():
        assert jobs.workflow(chord.id).status == "finished", jobs.workflow(chord.id).statuses()
    client.flushdb()
    with app.app_context():
        chain = jobs.chain(*(bench_app.noop.si(i) for i in range(opts.steps))).enqueue()
    chain_cost = drain(url)
    with app.app_context():
        assert jobs.workflow(chain.id).status == "finished"
    print(f"chord of {opts.members} + 1 callback: {chord_cost}")
    print(f"chain of {opts.steps} steps: {chain_cost}")


if __name__ == "__main__":
    main()
