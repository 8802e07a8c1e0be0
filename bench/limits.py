"""What workflows and limits cost: enqueue and no-op drain rates, plain and with each option.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/limits.py [N]

One lean worker process drains; the history is off, so the figures are the enqueue path's
and the worker's own. A drain's time is the burst worker's, less that of a burst worker on
an empty queue (the process start); each figure is the best of three rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import bench_app  # noqa: E402

BIN = Path(sys.executable).parent
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "unique=True": {"unique": True},
    "concurrency (never reached)": {"concurrency": 10**9},
    "rate (stored only)": {"rate": "1000000/s"},
}


def drain(env: dict[str, str]) -> float:
    """Seconds a burst worker takes to empty the queue."""
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "flask"), "--app", "bench_app:create_app(history=False)", "jobs", "worker",
         "--burst"],
        env=env, check=True, capture_output=True, cwd=HERE,
    )  # fmt: skip
    return time.perf_counter() - started


def _filler(call: Any, count: int) -> Any:
    """Enqueue ``count`` runs of ``call``."""
    return lambda: [call.enqueue(i) for i in range(count)]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    app = bench_app.create_app(history=False)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    jobs, noop = bench_app.jobs, bench_app.noop
    rows = []
    with app.app_context():
        jobs.connection.flushdb()
        start_s = min(drain(env) for _ in range(3))
        variants: dict[str, Any] = {
            name: _filler(noop.options(**options), count) for name, options in VARIANTS.items()
        }
        variants[f"chain of {count} steps"] = lambda: jobs.chain(
            *(noop.si(i) for i in range(count))
        ).enqueue()
        for name, fill in variants.items():
            best_enqueue = best_drain = 0.0
            for _ in range(3):
                jobs.connection.flushdb()
                started = time.perf_counter()
                fill()
                best_enqueue = max(best_enqueue, count / (time.perf_counter() - started))
                best_drain = max(best_drain, count / max(drain(env) - start_s, 1e-3))
            rows.append((name, best_enqueue, best_drain))
        jobs.connection.flushdb()
    print(f"{'variant':32} {'enqueue/s':>10} {'no-op drain/s':>14}")
    for name, enqueue_rate, drain_rate in rows:
        print(f"{name:32} {enqueue_rate:10,.0f} {drain_rate:14,.0f}")


if __name__ == "__main__":
    main()
