"""The job-history table: one row per attempt of every job, and how events become rows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .events import STATUS_RANK
from .rollup import HISTOGRAM_COLUMNS, HourlyRollup, hour_of, late_hours
from .samples import QueueSamples, samples_table

if TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["HistoryStore", "database_backend", "history_table", "partial_failures_index"]

log = logging.getLogger("flask_jobs.history")

TABLE_NAME = "flask_jobs_history"
#: The outcomes of a failed attempt, as the partial index on failures spells them.
FAILED = ("failed", "retried", "abandoned")
FAILED_WHERE = "status IN ('failed', 'retried', 'abandoned')"
FAILED_INDEX = "ix_flask_jobs_history_failed_func_ended"
#: The databases on which that index is partial (only failed attempts pay for it on write).
PARTIAL_INDEX_DIALECTS = ("postgresql", "sqlite")

#: Columns an event may fill; a later event's non-empty value wins.
_TEXT = (
    "func",
    "queue",
    "args",
    "kwargs",
    "description",
    "origin",
    "worker",
    "host",
    "workflow_id",
)
_LONG = ("result", "exc_type", "exc_message", "traceback", "progress_message")
_TIMES = ("enqueued_at", "started_at", "ended_at")
_FLOATS = ("wait_seconds", "run_seconds", "progress")


def history_table(metadata: sa.MetaData) -> sa.Table:
    """The ``flask_jobs_history`` table, defined on ``metadata`` (e.g. your ``db.metadata``)."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("func", sa.String(255)),
        sa.Column("queue", sa.String(100)),
        sa.Column("args", sa.Text),
        sa.Column("kwargs", sa.Text),
        sa.Column("args_truncated", sa.Boolean, nullable=False, default=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False, default=0),
        sa.Column("enqueued_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("wait_seconds", sa.Float),
        sa.Column("run_seconds", sa.Float),
        sa.Column("worker", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("result", sa.Text),
        sa.Column("exc_type", sa.String(255)),
        sa.Column("exc_message", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("origin", sa.String(255)),
        sa.Column("progress", sa.Float),
        sa.Column("progress_message", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        #: The chain, group or chord the job belongs to (None for a job of its own).
        sa.Column("workflow_id", sa.String(64), nullable=True),
        sa.UniqueConstraint("job_id", "attempt", name="uq_flask_jobs_history_job_attempt"),
        sa.Index("ix_flask_jobs_history_status_id", "status", "id"),
        sa.Index("ix_flask_jobs_history_func_id", "func", "id"),
        sa.Index("ix_flask_jobs_history_queue_id", "queue", "id"),
        sa.Index("ix_flask_jobs_history_ended_at", "ended_at"),
        sa.Index("ix_flask_jobs_history_enqueued_at", "enqueued_at"),
        sa.Index("ix_flask_jobs_history_workflow_id", "workflow_id"),
        # A function's failures of a window, latest first (its page groups them): partial,
        # so only failed attempts pay for it on write. By end time, not id: a window's
        # failures are then one range of it (by id, a window with few failures walked every
        # older failure of the function to find that there are no more).
        # Its WHERE is added per database (`partial_failures_index`): a dialect's option
        # loads SQLAlchemy's module of that dialect, and PostgreSQL's is a large one.
        sa.Index(FAILED_INDEX, "func", "ended_at"),
    )


def database_backend(uri: object) -> str | None:
    """The backend of a database URL (``"postgresql"``, ``"sqlite"``), None when unknown."""
    if not isinstance(uri, str | sa.engine.URL):
        return None
    try:
        return sa.engine.make_url(uri).get_backend_name()
    except sa.exc.ArgumentError:
        return None


def partial_failures_index(table: sa.Table, backend: str | None) -> None:
    """Make the index on failures partial on the history's database (``backend``; on
    both PostgreSQL and SQLite when not known). Other databases get a full index."""
    [index] = [i for i in table.indexes if i.name == FAILED_INDEX]
    for dialect in PARTIAL_INDEX_DIALECTS if backend is None else (backend,):
        if dialect in PARTIAL_INDEX_DIALECTS:
            index.dialect_kwargs[f"{dialect}_where"] = sa.text(FAILED_WHERE)


def _time(value: str) -> datetime | None:
    return datetime.fromtimestamp(float(value), timezone.utc) if value else None


def _float(value: str) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def event_to_row(event: Mapping[str, str]) -> dict[str, Any] | None:
    """One event's fields as column values (None: not known to this event)."""
    status = event.get("status", "")
    job_id = event.get("job_id", "")
    if status not in STATUS_RANK or not job_id:
        return None
    try:
        attempt = int(event.get("attempt") or 1)
    except ValueError:
        attempt = 1
    row: dict[str, Any] = {
        "job_id": job_id[:128],
        "attempt": attempt,
        "status": status,
        "status_rank": STATUS_RANK[status],
    }
    for name in (*_TEXT, *_LONG):
        row[name] = event.get(name) or None
    for name in _TIMES:
        row[name] = _time(event.get(name, ""))
    for name in _FLOATS:
        row[name] = _float(event.get(name, ""))
    row["pid"] = int(event["pid"]) if event.get("pid", "").isdigit() else None
    row["args_truncated"] = event.get("args_truncated") == "1"
    if row["enqueued_at"] and row["started_at"] and row["wait_seconds"] is None:
        row["wait_seconds"] = max(0.0, (row["started_at"] - row["enqueued_at"]).total_seconds())
    if row["started_at"] and row["ended_at"] and row["run_seconds"] is None:
        row["run_seconds"] = max(0.0, (row["ended_at"] - row["started_at"]).total_seconds())
    return row


def merge_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold rows of the same (job id, attempt), in event order, into one each."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        key = (row["job_id"], row["attempt"])
        current = merged.get(key)
        if current is None:
            merged[key] = dict(row)
            continue
        for name, value in row.items():
            if name in ("status", "status_rank"):
                continue
            if name == "args_truncated":
                current[name] = current[name] or value
            elif value is not None:
                current[name] = value
        if row["status_rank"] >= current["status_rank"]:
            current["status"], current["status_rank"] = row["status"], row["status_rank"]
    return list(merged.values())


#: Columns added since the table's first release, added to a table of ours that lacks them
#: (a table under Alembic gets them from an autogenerated migration).
_ADDED = ("workflow_id",)


def add_missing_columns(engine: Engine, table: sa.Table) -> list[str]:
    """Add the newer nullable columns (and their indexes) to an existing ``table``."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    added = []
    for name in _ADDED:
        if name in present:
            continue
        kind = table.c[name].type.compile(dialect=engine.dialect)
        with engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
            for index in table.indexes:
                if name in index.columns:
                    index.create(conn, checkfirst=True)
        added.append(name)
    return added


class HistoryStore:
    """Reads and writes the history table of one app."""

    def __init__(
        self,
        table: sa.Table,
        *,
        db: SQLAlchemy | None,
        uri: str | None,
        hourly: sa.Table,
        backend: str | None = None,
    ) -> None:
        """``backend``: the database's (see `database_backend`), None when not known."""
        partial_failures_index(table, backend)
        self.table = table
        self.hourly = hourly
        self.rollup = HourlyRollup(table, hourly)
        # On the history's metadata now, so `flask db migrate` sees it beside the history.
        self.samples = QueueSamples(samples_table(table.metadata))
        self._db = db
        self._uri = uri
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._statements: dict[str, Any] = {}

    def engine(self, app: Flask) -> Engine:
        """The app's ``db.engine``, or an engine of ours on ``JOBS_HISTORY_DATABASE_URI``."""
        if self._db is not None and self._uri is None:
            with app.app_context():
                return self._db.engine
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    assert self._uri is not None
                    kwargs: dict[str, Any] = {"pool_pre_ping": True}
                    if self._uri.startswith("sqlite"):
                        # Short: a locked database is retried by the recorder, not waited on.
                        kwargs["connect_args"] = {"timeout": 3}
                    self._engine = sa.create_engine(self._uri, **kwargs)
        return self._engine

    @property
    def owns_database(self) -> bool:
        """Whether the history lives in a database of its own (not the app's ``db``)."""
        return self._uri is not None

    def dispose(self) -> None:
        """Forget our own engine's connections (after a fork, or at shutdown)."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def create(self, app: Flask) -> None:
        """Create the history, roll-up and queue-sample tables if they do not exist.

        A roll-up table made before its histogram columns is dropped and made again: it
        only caches counts of the history, and the next reads roll the hours up anew.
        """
        engine = self.engine(app)
        self.table.create(engine, checkfirst=True)
        for index in self.table.indexes:  # an index added since the table was made
            index.create(engine, checkfirst=True)
        inspector = sa.inspect(engine)
        if inspector.has_table(self.hourly.name):
            columns = {column["name"] for column in inspector.get_columns(self.hourly.name)}
            if not set(HISTOGRAM_COLUMNS) <= columns:
                log.info("history: remaking %s with its histogram columns", self.hourly.name)
                self.hourly.drop(engine)
        self.hourly.create(engine, checkfirst=True)
        add_missing_columns(engine, self.table)
        self.samples.table.create(engine, checkfirst=True)

    def write(self, app: Flask, events: Iterable[Mapping[str, str]]) -> int:
        """Upsert the rows these events describe, in one transaction; return how many."""
        rows = merge_rows(r for r in map(event_to_row, events) if r is not None)
        if not rows:
            return 0
        stamp = datetime.now(timezone.utc)
        for row in rows:
            row["updated_at"] = stamp
        engine = self.engine(app)
        with engine.begin() as conn:
            # one cached statement, executemany: SQLAlchemy batches the rows itself
            conn.execute(self._upsert(engine.dialect.name), rows)
        late = late_hours(rows, stamp)
        if late:
            # After the commit, so a roll-up made meanwhile is dropped too and counted again.
            try:
                with engine.begin() as conn:
                    self.rollup.invalidate(conn, late)
            except sa.exc.DBAPIError as exc:
                log.warning("history: could not refresh hourly roll-ups (%s)", exc)
        return len(rows)

    def _upsert(self, dialect: str) -> Any:
        cached = self._statements.get(dialect)
        if cached is not None:
            return cached
        table = self.table
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        else:
            raise RuntimeError(
                f"flask-jobs history supports SQLite and PostgreSQL, not {dialect}: set "
                "JOBS_HISTORY_DATABASE_URI to one of them, or JOBS_HISTORY_ENABLED = False"
            )
        stmt = insert(table)
        new = stmt.excluded
        newer = new.status_rank >= table.c.status_rank
        update: dict[str, Any] = {
            name: sa.func.coalesce(new[name], table.c[name])
            for name in (*_TEXT, *_LONG, *_TIMES, *_FLOATS, "pid")
        }
        update["status"] = sa.case((newer, new.status), else_=table.c.status)
        update["status_rank"] = sa.case((newer, new.status_rank), else_=table.c.status_rank)
        update["args_truncated"] = sa.or_(new.args_truncated, table.c.args_truncated)
        update["updated_at"] = new.updated_at
        upsert = stmt.on_conflict_do_update(index_elements=["job_id", "attempt"], set_=update)
        self._statements[dialect] = upsert
        return upsert

    def roll_up(self, app: Flask, window: timedelta = timedelta(days=8)) -> None:
        """Roll up each closed hour of the last ``window`` not rolled yet (a recorder chore)."""
        now = datetime.now(timezone.utc)
        first, end = self.rollup.span(now - window, now)
        with self.engine(app).connect() as conn:
            self.rollup.ensure(conn, first, end)

    def purge(self, app: Flask, older_than: timedelta, *, batch: int = 1000) -> int:
        """Delete rows that ended (or were last updated) before ``older_than`` ago, in batches."""
        cutoff = datetime.now(timezone.utc) - older_than
        table = self.table
        engine = self.engine(app)
        total = 0
        while True:
            ids = (
                sa.select(table.c.id)
                .where(sa.func.coalesce(table.c.ended_at, table.c.updated_at) < cutoff)
                .limit(batch)
            )
            with engine.begin() as conn:
                found = [row.id for row in conn.execute(ids)]
                if not found:
                    break
                conn.execute(sa.delete(table).where(table.c.id.in_(found)))
            total += len(found)
        # The roll-ups of purged hours go too (the cutoff's own hour is kept: it is partial).
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(self.hourly).where(self.hourly.c.hour < hour_of(cutoff)))
        except sa.exc.DBAPIError as exc:
            log.warning("history: could not purge old hourly roll-ups (%s)", exc)
        try:
            with engine.connect() as conn:
                self.samples.purge(conn, older_than)
        except sa.exc.DBAPIError as exc:
            log.warning("history: could not purge old queue samples (%s)", exc)
        return total
