"""The app of the transaction benchmarks: a Flask-SQLAlchemy model and a no-op job, enqueued
plainly, after commit, or through the outbox."""

from __future__ import annotations

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_jobs import Jobs

db = SQLAlchemy()
jobs = Jobs(db=db)


class Order(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)


@jobs.job
def noop(i: int, n: int = 0) -> None:
    """Do nothing: what is measured is the enqueue."""


def create_app(database_url: str, *, outbox: bool = False) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        JOBS_REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        JOBS_HISTORY_DATABASE_URI=os.environ.get("BENCH_HISTORY_URI"),
        JOBS_RESULT_TTL=60,
        JOBS_OUTBOX=outbox,
        SQLALCHEMY_DATABASE_URI=database_url,
    )
    db.init_app(app)
    jobs.init_app(app)
    with app.app_context():
        db.create_all()
    return app
