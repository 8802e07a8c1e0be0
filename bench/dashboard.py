"""Dashboard page times with many jobs, and rq-dashboard on the same data in the same run.

Fills Redis with N failed jobs (as RQ's worker leaves them: job hashes with their
start and end, the failed registry, and each job's failure result), the history
with M rows over a week and 30 days of queue samples, then times every dashboard
page server-side (Flask test client, so the network is not measured). Then it
serves the dashboard over HTTP and starts rq-dashboard 0.9 (from a virtualenv of
its own, on the same Redis database) and times full page loads of the same 100
failed jobs, interleaved: our "Failed now" list (one page of 100, as its "per
page" choice offers) against rq-dashboard's failed-jobs view (its HTML page and
the JSON its script then fetches). Both are served by Werkzeug's threaded
server, each in a process of its own, and every request opens a new connection
(neither server keeps one alive). Then it loads, once each, pages of 100 that neither
dashboard has shown yet (ours keeps the rows and failures it read, for the next load).

``--data DIR`` keeps the history database in DIR and reuses it (and the failed
jobs already in Redis) on the next run; the history then ends when it was filled.

    python3 -m venv /tmp/rqd-venv && /tmp/rqd-venv/bin/pip install rq-dashboard==0.9.0 six
    BENCH_REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/dashboard.py \
        [--failed 100000] [--history 1000000] [--rq-dashboard /tmp/rqd-venv/bin/rq-dashboard]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).parent))

import bench_app

from flask_jobs import FlaskJob
from flask_jobs.history.alerts import evaluate
from flask_jobs.keys import job_key, results_key

FUNCTION = "bench_app.task_7"
PAGES = [
    ("overview", "/jobs/"),
    ("overview 24h", "/jobs/?range=24h"),
    ("overview 7d", "/jobs/?range=7d"),
    ("queues (charts 24h)", "/jobs/queues"),
    ("queues (charts 30d)", "/jobs/queues?range=30d"),
    ("queue page 7d", "/jobs/queues/default?range=7d"),
    ("jobs: failed", "/jobs/jobs?status=failed"),
    ("jobs: text search", "/jobs/jobs?text=timeout"),
    ("jobs: page 100", None),
    ("failed now", "/jobs/failed"),
    ("failures 7d", "/jobs/failures?window=7d"),
    ("functions 24h", "/jobs/functions?range=24h"),
    ("functions 30d", "/jobs/functions?range=30d"),
    ("function 1h", f"/jobs/functions/{FUNCTION}?range=1h"),
    ("function 24h", f"/jobs/functions/{FUNCTION}?range=24h"),
    ("function 7d", f"/jobs/functions/{FUNCTION}?range=7d"),
    ("function 30d", f"/jobs/functions/{FUNCTION}?range=30d"),
    ("alerts", "/jobs/alerts"),
    ("job detail", None),
    ("workers", "/jobs/workers"),
    ("api jobs", "/jobs/api/jobs?status=failed"),
    ("api function 30d", f"/jobs/api/functions/{FUNCTION}?range=30d"),
    ("api queue samples 7d", "/jobs/api/queue-samples?range=7d"),
    ("api alerts", "/jobs/api/alerts"),
]
#: The traceback each failed job keeps (in its result, as a worker writes it).
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/bench_app.py", line 12, in noop\n'
    "    upstream.call()\n"
    "TimeoutError: timeout talking to upstream\n"
)
#: Queues sampled each minute for 30 days (what the recorder leaves in the samples table).
SAMPLED_QUEUES = ("default", "high", "low")


def fill_redis(app: Flask, count: int) -> list[str]:
    with app.app_context():
        bench_app.jobs.state(app).connection.flushdb()
    return add_failed(app, 0, count)


def add_failed(app: Flask, first: int, count: int) -> list[str]:
    """``count`` failed jobs, as RQ's worker leaves them, each failing after the last."""
    with app.app_context():
        state = bench_app.jobs.state(app)
        conn = state.connection
        queue = state.queue("default")
        registry = FailedJobRegistry(queue=queue)
        ids: list[str] = []
        for start in range(first, first + count, 2000):
            with conn.pipeline(transaction=False) as pipe:
                for i in range(start, min(start + 2000, first + count)):
                    job = FlaskJob.create(
                        "bench_app.noop",
                        args=[i],
                        connection=conn,
                        origin="default",
                        serializer=JSONSerializer,
                        meta={"origin": "bench"},
                    )
                    job.set_status(job.get_status(refresh=False).FAILED, pipeline=pipe)
                    job.started_at = datetime.now(timezone.utc) - timedelta(seconds=2)
                    job.ended_at = datetime.now(timezone.utc)
                    job.save(pipeline=pipe)
                    # one second apart: "latest failure first" is one order for both dashboards
                    registry.add(job, ttl=86_400 + i, pipeline=pipe, exc_string=TRACEBACK)
                    Result.create_failure(job, 86_400 + i, TRACEBACK, "bench-worker", pipe)
                    ids.append(job.id)
                pipe.execute()
        return ids


def remove_failed(app: Flask, ids: list[str]) -> None:
    with app.app_context():
        state = bench_app.jobs.state(app)
        conn = state.connection
        conn.zrem(FailedJobRegistry(queue=state.queue("default")).key, *ids)
        conn.delete(*[job_key(job_id) for job_id in ids], *[results_key(i) for i in ids])


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
                        "run_seconds": 0.05 + (i % 97) / 20,
                        "wait_seconds": (i % 13) / 10,
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


def fill_samples(app: Flask, days: int = 30) -> int:
    """A sample per queue and minute over ``days`` and each hour's peaks, as the recorders
    would have left them."""
    state = bench_app.jobs.state(app)
    table = state.history.samples.table
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = []
    hours: dict[tuple[datetime, str], dict[str, Any]] = {}
    for m in range(days * 1440):
        at = now - timedelta(minutes=m)
        for n, queue in enumerate(SAMPLED_QUEUES):
            row = {"span": 60, "at": at, "queue": queue, "depth": (m * 7 + n) % 120}
            row["oldest_wait"] = float(m % 300)
            rows.append(row)
            hour = hours.setdefault(
                (at.replace(minute=0), queue),
                {"span": 3600, "at": at.replace(minute=0), "queue": queue, "depth": 0},
            )
            hour["depth"] = max(hour["depth"], row["depth"])
            hour["oldest_wait"] = max(hour.get("oldest_wait", 0.0), row["oldest_wait"])
    rows += hours.values()
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.delete(table))
        for start in range(0, len(rows), 20_000):
            conn.execute(sa.insert(table), rows[start : start + 20_000])
    return len(rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[float, bytes]:
    """One GET over a new connection (as both servers close them): ms and the body."""
    begun = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        assert response.status == 200, (url, response.status)
    return (time.perf_counter() - begun) * 1000, body


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"rq-dashboard exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _serve(history_uri: str, port: int) -> None:
    """Our dashboard in a process of its own (a fresh app on the same Redis and database)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = bench_app.create_app(history=True, history_uri=history_uri)
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def compare_with_rq_dashboard(app: Flask, executable: str, repeat: int) -> None:
    """Full page loads of the same 100 failed jobs, over HTTP, interleaved."""
    if not Path(executable).exists():
        print(
            f"  rq-dashboard: {executable} not found (python3 -m venv /tmp/rqd-venv && "
            "/tmp/rqd-venv/bin/pip install rq-dashboard==0.9.0 six)"
        )
        return
    ours_port, theirs_port = free_port(), free_port()
    ours_server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(app.config["JOBS_HISTORY_DATABASE_URI"], ours_port), daemon=True
    )
    ours_server.start()
    redis_url = app.config["JOBS_REDIS_URL"]
    peer = subprocess.Popen(
        [
            executable,
            "--redis-url",
            redis_url,
            "--port",
            str(theirs_port),
            "--json",
            "-b",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        wait_listening(ours_port)
        wait_listening(theirs_port, peer)
        ours = [f"http://127.0.0.1:{ours_port}/jobs/failed?limit=100"]
        base = f"http://127.0.0.1:{theirs_port}/0"
        # The same 100 jobs: the latest failures, in both. rq-dashboard 0.9 lists a
        # registry oldest first whatever its "desc" says, so the latest are its last page.
        with app.app_context():
            count = FailedJobRegistry(queue=bench_app.jobs.state(app).queue("default")).count
        last = -(-count // 100)
        assert count % 100 == 0, f"{count} failed jobs: the pages of 100 would not line up"

        def their_urls(page: int) -> list[str]:
            return [
                f"{base}/view/jobs/default/failed/100/asc/{page}",
                f"{base}/data/jobs/default/failed/100/asc/{page}.json",
            ]

        theirs = their_urls(last)
        data = json.loads(get(theirs[1])[1])
        their_ids = [job["id"] for job in data["jobs"]]
        our_html = b"".join(get(url)[1] for url in ours).decode()
        missing = [job_id for job_id in their_ids if job_id not in our_html]
        assert len(their_ids) == 100 and not missing, (len(their_ids), missing[:3])
        assert our_html.count("TimeoutError: timeout talking to upstream") >= 100
        their_size = sum(len(get(url)[1]) for url in theirs)
        print(
            "  rq-dashboard 0.9 read RQ 3's failed registry: the same 100 job ids as ours "
            f"(bytes sent, uncompressed: ours {len(our_html.encode()):,}, theirs {their_size:,})"
        )
        ours_ms: list[float] = []
        theirs_ms: list[float] = []
        for _ in range(repeat):
            for samples, urls in ((ours_ms, ours), (theirs_ms, theirs)):
                samples.append(sum(get(url)[0] for url in urls))
        smallest = f"http://127.0.0.1:{ours_port}/jobs/api/alerts"
        floor_ms = [get(smallest)[0] for _ in range(repeat)]
        # Failures neither dashboard has shown before: 100 new ones (the latest) before
        # each load, loaded once by each.
        first_ours: list[float] = []
        first_theirs: list[float] = []
        added: list[str] = []
        try:
            for k in range(1, repeat + 1):
                new = add_failed(app, count + 100 * (k - 1), 100)
                added += new
                elapsed, html = get(ours[0])
                first_ours.append(elapsed)
                replies = [get(url) for url in their_urls(last + k)]
                first_theirs.append(sum(elapsed for elapsed, _ in replies))
                their_ids = [job["id"] for job in json.loads(replies[1][1])["jobs"]]
                assert sorted(their_ids) == sorted(new), k
                assert all(job_id in html.decode() for job_id in new), k
        finally:
            if added:
                remove_failed(app, added)
    finally:
        ours_server.terminate()
        ours_server.join(10)
        peer.terminate()
        peer.wait(10)
    ours_p50, ours_p95 = _summary(ours_ms)
    theirs_p50, theirs_p95 = _summary(theirs_ms)
    floor_p50, floor_p95 = _summary(floor_ms)
    print(
        f"  100 failed jobs, full page loads over HTTP, interleaved x{repeat}: ours (Failed now, "
        f"one page of 100) p50 {ours_p50:.1f} / p95 {ours_p95:.1f} ms; rq-dashboard 0.9 (failed "
        f"view HTML + its JSON) p50 {theirs_p50:.1f} / p95 {theirs_p95:.1f} ms"
    )
    print(
        f"  ratio rq-dashboard / ours: p50 {theirs_p50 / ours_p50:.1f}x, "
        f"p95 {theirs_p95 / ours_p95:.1f}x"
    )
    print(
        f"  our smallest response (/jobs/api/alerts, the HTTP floor of one request): "
        f"p50 {floor_p50:.2f} / p95 {floor_p95:.2f} ms"
    )
    if first_ours:
        (ours_p50, ours_p95), (theirs_p50, theirs_p95) = map(_summary, (first_ours, first_theirs))
        print(
            f"  first loads (x{len(first_ours)} pages of 100 neither had shown, each once): ours "
            f"p50 {ours_p50:.1f} / p95 {ours_p95:.1f} ms; rq-dashboard 0.9 p50 {theirs_p50:.1f} / "
            f"p95 {theirs_p95:.1f} ms; ratio p50 {theirs_p50 / ours_p50:.1f}x, "
            f"p95 {theirs_p95 / ours_p95:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rq-dashboard", default="/tmp/rqd-venv/bin/rq-dashboard")
    parser.add_argument("--data", help="keep the history database in this folder, and reuse it")
    parser.add_argument("--only", help="time only the pages whose name contains this")
    options = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = Path(options.data or tempfile.mkdtemp(prefix="flask-jobs-dashboard-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    reuse = options.data is not None and (folder / "history.db").exists()
    app = bench_app.create_app(history=True, history_uri=f"sqlite:///{folder / 'history.db'}")
    started = time.perf_counter()
    with app.app_context():
        registry = FailedJobRegistry(queue=bench_app.jobs.state(app).queue("default"))
        held = registry.get_job_ids(0, -1, cleanup=False) if reuse else []
    if reuse and len(held) == options.failed:
        ids = list(reversed(held))  # oldest first, as filled
        print(f"dashboard bench: reusing {folder / 'history.db'} and the failed jobs in Redis")
    else:
        ids = fill_redis(app, options.failed)
        reuse = False
    if not reuse:
        fill_history(app, options.history, ids)
        samples = fill_samples(app)
        # What every recorder does once a minute in production: count each closed hour once.
        rolled = time.perf_counter()
        bench_app.jobs.state(app).history.roll_up(app)
        rolled = time.perf_counter() - rolled
        evaluate(app, bench_app.jobs.state(app))  # what a recorder does every 30 s
        print(
            f"dashboard bench: {options.failed} failed jobs in Redis, {options.history} history "
            f"rows and {samples} queue samples (SQLite), filled in "
            f"{time.perf_counter() - started:.0f} s (hourly roll-up of a week: {rolled:.1f} s); "
            f"{options.repeat} requests each (first: the page's first request)"
        )
    client = app.test_client()
    with app.app_context():
        cursor = None
        for _ in range(99):
            page = bench_app.jobs.history.search(status="failed", cursor=cursor, limit=50)
            cursor = page.next_cursor
    results = {}
    for name, path in PAGES:
        if options.only and options.only not in name:
            continue
        if name == "jobs: page 100":
            path = f"/jobs/jobs?status=failed&cursor={cursor}"
        if name == "job detail":
            path = f"/jobs/job/{ids[len(ids) // 2]}"
        assert path is not None
        first = timed(lambda p=path: client.get(p), 1)[0]
        results[name] = timed(lambda p=path: client.get(p), options.repeat)
        print(
            f"  {name:20s} p50 {results[name][0]:7.1f} ms   p95 {results[name][1]:7.1f} ms"
            f"   (first {first:6.1f} ms)"
        )
    if not options.only or "rq-dashboard" in options.only:
        compare_with_rq_dashboard(app, options.rq_dashboard, options.repeat)


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
