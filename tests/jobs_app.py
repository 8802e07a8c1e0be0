"""A small app with the jobs the tests enqueue; workers import it as ``jobs_app``."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from flask import Flask, current_app, g
from flask_sqlalchemy import SQLAlchemy
from rq import get_current_job
from sqlalchemy.orm import Mapped, mapped_column

from flask_jobs import Jobs, Retry

db = SQLAlchemy()
jobs = Jobs(db=db)


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


@jobs.job
def add(a: int, b: int) -> int:
    return a + b


@jobs.job
def read_config(key: str) -> Any:
    return current_app.config[key]


@jobs.job
def write_note(text: str) -> int:
    assert "leak" not in g, "g leaked from a previous job"
    g.leak = True
    note = Note(text=text)
    db.session.add(note)
    db.session.commit()
    return note.id


@jobs.job
def count_notes() -> int:
    return db.session.query(Note).count()


@jobs.job
def fail(message: str) -> None:
    raise RuntimeError(message)


@jobs.job(retry=Retry(3, backoff="exponential", delay=1, jitter=False))
def flaky(counter_key: str, succeed_on: int) -> int:
    attempt = jobs.connection.incr(counter_key)
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return int(attempt)


@jobs.job(retry=Retry(3, delay=0, on=ConnectionError))
def fail_with(kind: str) -> None:
    raise {"connection": ConnectionError, "value": ValueError}[kind](kind)


@jobs.job(timeout=1)
def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@jobs.job
def whoami(pause: float = 0.0) -> dict[str, Any]:
    time.sleep(pause)
    job = get_current_job()
    return {"pid": os.getpid(), "worker": job.worker_name if job else None}


@jobs.job
def loaded_modules() -> list[str]:
    """The modules the worker's process has imported."""
    return sorted(sys.modules)


@jobs.job
def report_progress() -> str:
    jobs.set_progress(0.5, "half way")
    return "done"


@jobs.job(retry=Retry(2, delay=0))
def always_fails(n: int) -> None:
    raise ValueError(f"failure {n}")


@jobs.job
def echo(*args: Any, **kwargs: Any) -> str:
    return f"{len(args)} args, {sorted(kwargs)}"


def plain_function(x: int) -> int:
    """Not decorated: enqueued by path."""
    return x * 2


#: Every app made here, so the tests can close their Redis clients.
APPS: list[Flask] = []


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path or os.environ.get("JOBS_APP_INSTANCE_PATH"))
    app.config.update(
        TESTING=True,
        JOBS_REDIS_URL=os.environ.get("JOBS_APP_REDIS_URL"),
        SQLALCHEMY_DATABASE_URI=os.environ.get("JOBS_APP_DATABASE_URL", "sqlite://"),
        JOBS_HISTORY_DATABASE_URI=os.environ.get("JOBS_APP_HISTORY_URI"),
        GREETING="hello from config",
    )
    if os.environ.get("JOBS_APP_SCHEDULE"):
        app.config["JOBS_SCHEDULE"] = json.loads(os.environ["JOBS_APP_SCHEDULE"])
    app.config.update(config or {})
    db.init_app(app)
    jobs.init_app(app)
    APPS.append(app)
    return app
