"""The history table under Flask-Migrate/Alembic: autogenerate sees it, upgrade creates it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("flask_migrate")

APP = """
import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_jobs import Jobs

db = SQLAlchemy()
jobs = Jobs(db=db)  # the history table joins db.metadata, so Alembic sees it
migrate = Migrate()


class Invoice(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["MIGRATION_TEST_DATABASE"]
    app.config["JOBS_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never contacted by `flask db`
    db.init_app(app)
    jobs.init_app(app)
    migrate.init_app(app, db)
    return app
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "billing.py").write_text(APP)
    return tmp_path


def flask_db(project: Path, database: str, *args: str) -> str:
    """Run ``flask db ...`` in ``project`` against ``database``, as the docs say; its output."""
    env = dict(
        os.environ,
        FLASK_APP="billing:create_app",
        MIGRATION_TEST_DATABASE=database,
        PYTHONPATH=str(project),
    )
    done = subprocess.run(
        [sys.executable, "-m", "flask", "db", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def empty_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a PostgreSQL database made for this test."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    name = f"flask_jobs_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(database_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_autogenerate_sees_the_table_and_upgrade_creates_it(
    project: Path, empty_database: str
) -> None:
    flask_db(project, empty_database, "init")
    flask_db(project, empty_database, "migrate", "-m", "billing and job history")
    [script] = (project / "migrations" / "versions").glob("*.py")
    source = script.read_text()
    assert "op.create_table('flask_jobs_history'" in source
    assert "uq_flask_jobs_history_job_attempt" in source
    assert "ix_flask_jobs_history_ended_at" in source

    flask_db(project, empty_database, "upgrade")
    engine = sa.create_engine(empty_database)
    try:
        inspector = sa.inspect(engine)
        assert {"flask_jobs_history", "invoice", "alembic_version"} <= set(
            inspector.get_table_names()
        )
        columns = {c["name"] for c in inspector.get_columns("flask_jobs_history")}
        assert {"job_id", "attempt", "status", "traceback", "ended_at"} <= columns
        indexes = {i["name"] for i in inspector.get_indexes("flask_jobs_history")}
        assert "ix_flask_jobs_history_status_id" in indexes
        with engine.begin() as conn:  # the table takes a row as the recorder writes one
            conn.execute(
                sa.text(
                    "INSERT INTO flask_jobs_history (job_id, attempt, status, status_rank, "
                    "args_truncated) VALUES ('j1', 1, 'queued', 0, false)"
                )
            )
    finally:
        engine.dispose()

    # A second autogenerate against the upgraded database finds nothing to do.
    out = flask_db(project, empty_database, "migrate", "-m", "nothing")
    assert "No changes in schema detected" in out
    assert len(list((project / "migrations" / "versions").glob("*.py"))) == 1

    flask_db(project, empty_database, "downgrade", "base")
    engine = sa.create_engine(empty_database)
    try:
        assert "flask_jobs_history" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
