"""Cost of the per-job log lines (``job started`` / ``job finished``), text and JSON.

Drains N pre-queued no-op jobs with one worker process (our default loop, one
thread, history off), with our log lines off (level WARNING), as
key=value text and as JSON, written to a file (as a process manager's log
would), on the same Redis in the same run; reports jobs/s and the ratio to off.
Then times the two calls a worker makes per job (`job_started`, `job_ended`)
on their own, which a noisy shared machine cannot hide in the drain rates.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/logging_cost.py [--jobs 5000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rq.job import JobStatus

sys.path.insert(0, str(Path(__file__).parent))

import bench_app
from history import drain, fill

from flask_jobs import FlaskJob
from flask_jobs.worker import configure_logging
from flask_jobs.worker.reporting import job_ended, job_started


def run(mode: str, jobs: int, log_file: Path) -> float:
    logger = logging.getLogger("flask_jobs")
    configure_logging("WARNING" if mode == "off" else "INFO", "json" if mode == "json" else "text")
    for handler in logger.handlers:
        if getattr(handler, "_flask_jobs", False) and isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file.open("a"))
    app = bench_app.create_app(history=False)
    fill(app, jobs)
    rate = jobs / drain(app)
    bench_app.jobs.state(app).close()
    return rate


def per_job_calls(mode: str, log_file: Path, calls: int = 20_000) -> float:
    """Microseconds for one job's ``job_started`` + ``job_ended`` (a finished job)."""
    logger = logging.getLogger("flask_jobs")
    configure_logging("WARNING" if mode == "off" else "INFO", "json" if mode == "json" else "text")
    for handler in logger.handlers:
        if getattr(handler, "_flask_jobs", False) and isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file.open("a"))
    app = bench_app.create_app(history=False)
    with app.app_context():
        job = FlaskJob.create(bench_app.noop, args=(1,), connection=bench_app.jobs.connection)
        job._status = JobStatus.FINISHED
        started = time.perf_counter()
        for _ in range(calls):
            job_started(job, 1)
            job_ended(app, job, 1, 0.001)
        elapsed = time.perf_counter() - started
    bench_app.jobs.state(app).close()
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    log_file = Path(tempfile.mkdtemp(prefix="flask-jobs-bench-")) / "worker.log"
    rates: dict[str, list[float]] = {"off": [], "text": [], "json": []}
    for _ in range(options.repeat):
        for mode in rates:  # interleaved, so drift on a shared machine hits all three
            rates[mode].append(run(mode, options.jobs, log_file))
    off = statistics.median(rates["off"])
    print(
        f"logging bench: {options.jobs} no-op jobs, 1 worker (default), median of {options.repeat}"
    )
    for mode, values in rates.items():
        rate = statistics.median(values)
        print(f"  {mode:5}: {rate:7.0f} jobs/s  ({rate / off:.2f}x of off)")
    lines = sum(1 for _ in log_file.open())
    print(f"  lines written: {lines} ({log_file.stat().st_size / max(lines, 1):.0f} bytes each)")
    print("per job, job_started + job_ended alone (median of 5 x 20,000):")
    for mode in ("off", "text", "json"):
        micros = statistics.median(per_job_calls(mode, log_file) for _ in range(5))
        print(f"  {mode:5}: {micros:6.1f} us")


if __name__ == "__main__":
    main()
