"""The audit log: who did what to which jobs, queues or schedules, when, and to how many.

Every operator action of the dashboard and of ``flask jobs`` is one row of
``flask_jobs_audit``, in the history's database and on its metadata (so
``flask db migrate`` and ``flask jobs history init`` see it beside the history
tables). Writing a row never fails the action it records: a database that cannot
take it is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = ["AUDIT_TABLE", "audit_table", "entries", "record"]

log = logging.getLogger("flask_jobs.ops")

AUDIT_TABLE = "flask_jobs_audit"
#: The longest text each column keeps (longer values are cut).
_LIMITS = {"actor": 255, "source": 20, "action": 40, "target": 255, "detail": 1000}


def audit_table(metadata: sa.MetaData) -> sa.Table:
    """The ``flask_jobs_audit`` table on ``metadata`` (defined once, then reused)."""
    if AUDIT_TABLE in metadata.tables:
        return metadata.tables[AUDIT_TABLE]
    return sa.Table(
        AUDIT_TABLE,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(_LIMITS["actor"]), nullable=False),
        sa.Column("source", sa.String(_LIMITS["source"]), nullable=False),
        sa.Column("action", sa.String(_LIMITS["action"]), nullable=False),
        sa.Column("target", sa.String(_LIMITS["target"])),
        sa.Column("count", sa.Integer, nullable=False, default=0),
        sa.Column("detail", sa.String(_LIMITS["detail"])),
        sa.Index("ix_flask_jobs_audit_at", "at"),
    )


def _table(state: JobsState) -> sa.Table:
    return audit_table(state.history.table.metadata)


def record(
    app: Flask,
    state: JobsState,
    *,
    actor: str,
    source: str,
    action: str,
    target: str | None,
    count: int,
    detail: str | None = None,
) -> bool:
    """Write one audit row; False (and a warning in the log) when it could not be written."""
    if not state.history_enabled:
        return False
    values: dict[str, Any] = {
        "at": datetime.now(timezone.utc),
        "actor": actor,
        "source": source,
        "action": action,
        "target": target,
        "detail": detail,
    }
    for name, limit in _LIMITS.items():
        if values[name] is not None:
            values[name] = str(values[name])[:limit]
    table = _table(state)
    try:
        with state.history.engine(app).begin() as conn:
            conn.execute(table.insert().values(count=int(count), **values))
    except SQLAlchemyError as exc:
        log.warning("audit: could not record %s of %s by %s: %s", action, target, actor, exc)
        return False
    return True


def entries(
    app: Flask, state: JobsState, *, before: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """Audit rows, newest first, ``limit`` at a time; and the cursor of the next page."""
    table = _table(state)
    stmt = sa.select(table).order_by(table.c.id.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(table.c.id < before)
    with state.history.engine(app).connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1]["id"] if more and rows else None
