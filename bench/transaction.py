"""Enqueue with the database transaction: what each mode costs per job, and how long the
outbox relay takes from a commit to the job on its queue.

Every producer here runs what a view does: add a row, enqueue a no-op job,
commit. "in a transaction" enqueues at once (``on_commit=False``), "on commit"
holds the job until the commit, "outbox" inserts it into the outbox table in
the same transaction (the relay is not running). The database is SQLite (see
`database_url`), or ``BENCH_DATABASE_URL``. Run by ``bench/suite.py``, or alone:

    .venv/bin/python bench/transaction.py [--redis-url redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from producers import Producer  # noqa: E402

__all__ = ["TRANSACTION_PRODUCERS", "cost_per_job", "relay_latency"]


def database_url(folder: Path, name: str) -> str:
    """``BENCH_DATABASE_URL``, else SQLite: in memory for the producers (so that the figure
    is the mode's CPU, not a disk's fsync), in a file for the relay (another process)."""
    return os.environ.get("BENCH_DATABASE_URL") or (
        f"sqlite:///{folder / name}" if name == "relay.db" else "sqlite://"
    )


class TransactionProducer(Producer):
    """A view that writes a row, enqueues a job and commits."""

    family = "flask-jobs in a transaction"
    outbox = False
    on_commit: bool | None = False

    def __init__(self, url: str, folder: Path) -> None:
        super().__init__(url, folder)
        import bench_db_app

        self.mod = bench_db_app
        self.app = bench_db_app.create_app(
            database_url(folder, f"{self.family.replace(' ', '_')}.db"), outbox=self.outbox
        )
        self.call = bench_db_app.noop.options(on_commit=self.on_commit)

    def context(self) -> Any:
        return self.app.test_request_context("/")

    def single(self, i: int, n: int) -> None:
        db = self.mod.db
        db.session.add(self.mod.Order())
        self.call.enqueue(i, n)
        db.session.commit()


class OnCommitProducer(TransactionProducer):
    family = "flask-jobs on commit"
    on_commit = None


class OutboxProducer(TransactionProducer):
    family = "flask-jobs outbox"
    outbox = True
    on_commit = None


TRANSACTION_PRODUCERS: dict[str, type[Producer]] = {
    p.family: p for p in (TransactionProducer, OnCommitProducer, OutboxProducer)
}


def cost_per_job(rates: dict[str, float]) -> dict[str, float]:
    """Microseconds each mode adds to a job, against the same view enqueueing at once."""
    base = rates.get(TransactionProducer.family)
    if not base:
        return {}
    return {
        family: (1 / rate - 1 / base) * 1e6
        for family, rate in rates.items()
        if family != TransactionProducer.family and rate
    }


def relay_latency(url: str, folder: Path, count: int) -> dict[str, float]:
    """Commit-to-queued latency through an idle outbox relay (a process, as beside a worker)."""
    os.environ["BENCH_REDIS_URL"] = url
    import bench_db_app

    from flask_jobs.outbox import start_relay_process, stop_relay_process

    app = bench_db_app.create_app(database_url(folder, "relay.db"), outbox=True)
    state = bench_db_app.jobs.state(app)
    conn = redis.Redis.from_url(url)
    conn.delete("rq:queue:default")
    pid = start_relay_process(app, state, "bench")
    seconds: list[float] = []
    try:
        for i in range(count):
            with app.test_request_context("/"):
                bench_db_app.db.session.add(bench_db_app.Order())
                bench_db_app.noop.enqueue(i, count)
                bench_db_app.db.session.commit()
                committed = time.perf_counter()
            if conn.blpop(["rq:queue:default"], timeout=10) is None:
                raise RuntimeError("the outbox relay did not queue the job within 10 s")
            seconds.append(time.perf_counter() - committed)
            time.sleep(random.uniform(0, 0.2))  # commit at any point of the relay's poll
    finally:
        stop_relay_process(pid)
        conn.close()
    ordered = sorted(seconds)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000

    return {"count": count, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--count", type=int, default=1000)
    options = parser.parse_args()
    os.environ["BENCH_REDIS_URL"] = options.redis_url
    folder = Path(tempfile.mkdtemp(prefix="flask-jobs-transaction-"))
    conn = redis.Redis.from_url(options.redis_url)
    rates: dict[str, float] = {}
    for family, producer_class in TRANSACTION_PRODUCERS.items():
        producer = producer_class(options.redis_url, folder)
        conn.flushdb()
        with producer.context():
            producer.single(-1, 0)  # warm up: tables, connections, scripts
            started = time.perf_counter()
            for i in range(options.count):
                producer.single(i, 0)
            rates[family] = options.count / (time.perf_counter() - started)
        print(f"{family}: {rates[family]:,.0f} views/s")
    for family, cost in cost_per_job(rates).items():
        print(f"{family}: {cost:+,.0f} µs per job against enqueueing at once")
    conn.flushdb()
    lat = relay_latency(options.redis_url, folder, min(options.count, 300))
    print(f"outbox relay, commit to queued: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
    conn.flushdb()


if __name__ == "__main__":
    main()
