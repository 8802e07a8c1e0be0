"""The app the benchmarks run: a no-op job, history on or off."""

from __future__ import annotations

import json
import os

import marks
from flask import Flask

from flask_jobs import Jobs, thread_safe

jobs = Jobs()


@jobs.job
@thread_safe
def noop(i: int, n: int = 0) -> None:
    """Do nothing: what is measured is the machinery around it."""
    marks.noop(i, n)


@jobs.job
@thread_safe
def sleep10(i: int, n: int = 0) -> None:
    """An I/O-bound job: 10 ms asleep."""
    marks.sleep10(i, n)


@jobs.job
async def sleep10_async(i: int, n: int = 0) -> None:
    """An I/O-bound ``async def`` job: 10 ms asleep on the worker's event loop."""
    await marks.asleep10(i, n)


@jobs.job
@thread_safe
def latency(sent: float) -> None:
    """Report the enqueue-to-start latency."""
    marks.latency(sent)


def create_app(*, history: bool = True, history_uri: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        JOBS_REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        JOBS_HISTORY_ENABLED=history,
        JOBS_HISTORY_DATABASE_URI=history_uri or os.environ.get("BENCH_HISTORY_URI"),
        JOBS_RESULT_TTL=60,
        JOBS_SCHEDULE=json.loads(os.environ.get("BENCH_SCHEDULE", "{}")),
    )
    # JOBS_WORKER_CLASS and friends from the environment, as `flask` users can set them.
    app.config.from_prefixed_env("BENCH")
    jobs.init_app(app)
    return app
