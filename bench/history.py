"""Cost and freshness of the job history.

Drains N pre-queued no-op jobs with one worker process (RQ's SimpleWorker
loop with our app context), once with history off and once with it on, on
the same Redis in the same run, then reports the throughput ratio and how
long after a job ended its row was committed (p50/p99).

    .venv/bin/python bench/history.py [--jobs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import signal
import statistics
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

sys.path.insert(0, str(Path(__file__).parent))

import bench_app

from flask_jobs.worker import build_worker


def fill(app: Flask, count: int) -> None:
    with app.app_context():
        conn = bench_app.jobs.connection
        conn.flushdb()
        for start in range(0, count, 1000):
            for i in range(start, min(start + 1000, count)):
                bench_app.noop.enqueue(i)


def drain(app: Flask) -> float:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = build_worker(app, bench_app.jobs.state(app), worker_class="default")
    started = time.perf_counter()
    worker.work(burst=True, logging_level="ERROR", with_scheduler=False)
    elapsed = time.perf_counter() - started
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    return elapsed


def freshness(app: Flask) -> tuple[float, float, int]:
    state = bench_app.jobs.state(app)
    table = state.history.table
    with state.history.engine(app).connect() as conn:
        rows = conn.execute(
            sa.select(table.c.ended_at, table.c.updated_at).where(table.c.status == "finished")
        ).all()
    lags = []
    for ended, updated in rows:
        ended = ended if ended.tzinfo else ended.replace(tzinfo=timezone.utc)
        updated = updated if updated.tzinfo else updated.replace(tzinfo=timezone.utc)
        lags.append((updated - ended).total_seconds())
    lags.sort()
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99) - 1], len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    logging.getLogger("flask_jobs").setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="flask-jobs-bench-"))
    off_rates, on_rates, fresh = [], [], []
    for run in range(options.repeat):
        off = bench_app.create_app(history=False)
        fill(off, options.jobs)
        off_rates.append(options.jobs / drain(off))
        on = bench_app.create_app(history=True, history_uri=f"sqlite:///{folder / f'h{run}.db'}")
        fill(on, options.jobs)
        on_rates.append(options.jobs / drain(on))
        fresh.append(freshness(on))
    off_rate = statistics.median(off_rates)
    on_rate = statistics.median(on_rates)
    p50 = statistics.median(f[0] for f in fresh)
    p99 = statistics.median(f[1] for f in fresh)
    rows = fresh[-1][2]
    ratio = on_rate / off_rate
    print(
        f"history bench: {options.jobs} no-op jobs, 1 worker process (default), "
        f"median of {options.repeat}"
    )
    print(f"  history off : {off_rate:8.0f} jobs/s")
    print(f"  history on  : {on_rate:8.0f} jobs/s  ({ratio:.2f}x of off; cost {1 - ratio:.0%})")
    print(f"  rows written: {rows}/{options.jobs}")
    print(f"  job end -> row committed: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
