"""When each schedule last ran, as the operator means it: when its last job was enqueued.

The scheduler's own ``last_fire`` is the base of its timetable: a resume moves it to
"now" (runs due while paused are skipped) and "run now" leaves it alone, so it does
not say when a job last ran.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rq.utils import utcparse
from sqlalchemy.exc import SQLAlchemyError

from ..history.query import HistoryQuery
from ..keys import job_key

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = ["with_last_runs"]


def with_last_runs(app: Flask, state: JobsState, rows: list[dict[str, Any]]) -> None:
    """Set each schedule row's ``last_run`` to when its ``last_job_id`` was enqueued (or None).

    From the job in Redis, else from its history row; None when neither has it.
    """
    ids = [row["last_job_id"] for row in rows if row.get("last_job_id")]
    with state.connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(job_key(job_id), "enqueued_at")
        stamps = dict(zip(ids, pipe.execute(), strict=True))
    for row in rows:
        job_id = row.get("last_job_id")
        row["last_run"] = _enqueued(app, state, job_id, stamps.get(job_id)) if job_id else None


def _enqueued(app: Flask, state: JobsState, job_id: str, raw: Any) -> datetime | None:
    if raw:
        try:
            return utcparse(raw.decode())
        except ValueError:
            pass
    if not state.history_enabled:
        return None
    try:
        attempts = HistoryQuery(state.history, app).get(job_id)
    except SQLAlchemyError:
        return None
    moment = attempts[0]["enqueued_at"] if attempts else None
    return moment if isinstance(moment, datetime) else None
