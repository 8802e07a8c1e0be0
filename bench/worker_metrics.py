"""Per-job cost of the worker's Prometheus metrics (`PrometheusMiddleware`).

Times the two hooks a worker calls per job (``before_job`` and ``after_job``) on one
job, with the labelled metrics cached per (queue, function) as the middleware keeps
them, beside the same updates looked up with ``labels()`` each time (the peer, in the
same run); ``--multiprocess`` measures prometheus_client's multiprocess mode, which
``flask jobs worker --processes N --metrics-port P`` uses. No Redis needed.

    .venv/bin/python bench/worker_metrics.py [--multiprocess]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import timeit

if "--multiprocess" in sys.argv:  # before prometheus_client is imported
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")

import redis
from rq.job import Job
from rq.utils import now

from flask_jobs.worker.metrics import PrometheusMiddleware

JOBS = 20_000
LABELS = ("default", "tasks.add")


def main() -> None:
    metrics = PrometheusMiddleware()
    # Never sent: the hooks read the job's fields only.
    job = Job.create(func=LABELS[1], args=(1, 2), connection=redis.Redis(), origin=LABELS[0])
    job.enqueued_at = job.started_at = now()

    def hooks() -> None:
        metrics.before_job(None, job)  # type: ignore[arg-type]
        metrics.after_job(None, job, None)  # type: ignore[arg-type]

    def uncached() -> None:
        metrics.started.labels(*LABELS).inc()
        metrics.in_progress.labels(*LABELS).inc()
        metrics.wait.labels(*LABELS).observe(0.001)
        metrics.duration.labels(*LABELS).observe(0.001)
        metrics.in_progress.labels(*LABELS).dec()
        metrics.finished.labels(*LABELS).inc()

    mode = "multiprocess" if "--multiprocess" in sys.argv else "one process"
    results = {}
    for name, call in (("PrometheusMiddleware", hooks), ("labels() every time", uncached)):
        runs = timeit.repeat(call, number=JOBS, repeat=7)
        results[name] = statistics.median(runs) / JOBS * 1e6
        print(f"{mode:13} {name:22} {results[name]:6.2f} µs/job")
    ratio = results["PrometheusMiddleware"] / results["labels() every time"]
    print(f"{mode:13} ratio to labels() every time: {ratio:.2f}")


if __name__ == "__main__":
    main()
