"""The app the benchmarks run: a no-op job, history on or off."""

from __future__ import annotations

import json
import os

from flask import Flask

from flask_jobs import Jobs

jobs = Jobs()


@jobs.job
def noop(i: int) -> None:
    """Do nothing: what is measured is the machinery around it."""


def create_app(*, history: bool = True, history_uri: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        JOBS_REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        JOBS_HISTORY_ENABLED=history,
        JOBS_HISTORY_DATABASE_URI=history_uri,
        JOBS_RESULT_TTL=60,
        JOBS_SCHEDULE=json.loads(os.environ.get("BENCH_SCHEDULE", "{}")),
    )
    jobs.init_app(app)
    return app
