"""Enqueue rates, interleaved: every producer takes its turn in short blocks, round after
round, so that a shared machine's changing load falls on all of them alike. Medians of the
blocks; (Nx) is flask-jobs / peer.

    .venv/bin/python bench/interleaved.py [--rounds 15] [--block 300] [--bulk 1000]

Each producer runs in a Flask request context, as a view would; the transaction rows are
a view that writes a row, enqueues and commits (see bench/transaction.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from producers import PRODUCERS  # noqa: E402
from suite import PrivateRedis  # noqa: E402
from transaction import TRANSACTION_PRODUCERS, cost_per_job  # noqa: E402

SINGLE = ["flask-jobs", "rq", "dramatiq", *TRANSACTION_PRODUCERS]
BULK = ["flask-jobs", "rq", "dramatiq"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--bulk", type=int, default=1000)
    options = parser.parse_args()
    server = PrivateRedis()
    os.environ["BENCH_REDIS_URL"] = server.url
    folder = Path(tempfile.mkdtemp(prefix="flask-jobs-interleaved-"))
    conn = redis.Redis.from_url(server.url)
    try:
        kinds: dict[str, Any] = {**PRODUCERS, **TRANSACTION_PRODUCERS}
        producers = {family: kinds[family](server.url, folder) for family in SINGLE}
        single: dict[str, list[float]] = {family: [] for family in SINGLE}
        bulk: dict[str, list[float]] = {family: [] for family in BULK}
        for producer in producers.values():  # warm up: imports, scripts, tables
            with producer.context():
                producer.single(0, 0)
        for _ in range(options.rounds):
            for family, producer in producers.items():
                with producer.context():
                    started = time.perf_counter()
                    for i in range(options.block):
                        producer.single(i, 0)
                    single[family].append(options.block / (time.perf_counter() - started))
            for family in BULK:
                with producers[family].context():
                    started = time.perf_counter()
                    producers[family].bulk(options.bulk, 0)
                    bulk[family].append(options.bulk / (time.perf_counter() - started))
            conn.flushdb()
        rates = {family: statistics.median(values) for family, values in single.items()}
        bulks = {family: statistics.median(values) for family, values in bulk.items()}
    finally:
        conn.close()
        server.stop()
    ours, ours_bulk = rates["flask-jobs"], bulks["flask-jobs"]
    print(
        f"{options.rounds} rounds of {options.block} single enqueues and one enqueue_many of "
        f"{options.bulk} per producer; medians; Redis {server.version} (private, loopback)\n"
    )
    print("| producer (in a Flask request) | single enqueue/s | bulk enqueue/s |")
    print("|---|---|---|")
    for family in SINGLE:
        line = f"| {family} | {rates[family]:,.0f}"
        if family in ("rq", "dramatiq"):
            line += f" ({ours / rates[family]:.2f}x)"
        line += " | "
        if family in bulks:
            line += f"{bulks[family]:,.0f}"
            if family != "flask-jobs":
                line += f" ({ours_bulk / bulks[family]:.2f}x)"
        else:
            line += "—"
        print(line + " |")
    print(f"\nflask-jobs enqueue_many / single enqueue: {ours_bulk / ours:.1f}x")
    for family, cost in cost_per_job({f: rates[f] for f in TRANSACTION_PRODUCERS}).items():
        print(f"{family}: {cost:+,.0f} µs per job against the same view enqueueing at once")


if __name__ == "__main__":
    main()
