"""The live sets, read from RQ's registries now (not from the history): the jobs failed
now, running, waiting for a retry, and scheduled for later.

A job in RQ's scheduled registry is either delayed (``enqueue_in``, ``enqueue_at``:
it never ran) or a failed attempt waiting for its retry (it ran: its hash has a
``started_at``); the two are listed apart, as Sidekiq's Retries and Scheduled sets.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy.exc import SQLAlchemyError

from ..jobs.flask_job import FlaskJob
from ..keys import RQ_JOB_PREFIX
from .queues import queue_names
from .rows import exception_line, progress_of, read_latest, read_rows

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState

__all__ = ["KINDS", "LivePage", "job_progress", "live_counts", "live_set"]

#: The live sets, as the dashboard names them.
KINDS = ("failed", "running", "retrying", "scheduled")
#: At most this many entries of a scheduled registry are sorted into delayed and retrying
#: (in Redis, one call) to count them; past it, each count is an estimate from the
#: share of each in the entries read.
SPLIT_CAP = 10_000
#: At most this many running jobs are listed (a worker slot each: far more than any pool).
RUNNING_CAP = 2_000


@dataclasses.dataclass
class LivePage:
    """One page of a live set: its rows, and how many jobs the set holds."""

    total: int
    rows: list[dict[str, Any]]
    #: False when ``total`` is an estimate (a scheduled registry past `SPLIT_CAP`).
    exact: bool = True


def job_progress(job: FlaskJob) -> dict[str, Any] | None:
    """The progress a job reported (``percent``, ``message``), or None."""
    return progress_of(job.meta)


def _history_errors(app: Flask, state: JobsState, ids: list[str]) -> dict[str, str]:
    """The latest recorded failure of each of ``ids`` ("Type: message"), from the history."""
    if not ids or not state.history_enabled:
        return {}
    t = state.history.table
    stmt = (
        sa.select(t.c.job_id, t.c.exc_type, t.c.exc_message)
        .where(t.c.job_id.in_(ids), t.c.exc_type.is_not(None))
        .order_by(t.c.attempt)
    )
    try:
        with state.history.engine(app).connect() as conn:
            found = {
                row.job_id: f"{row.exc_type}: {row.exc_message or ''}" for row in conn.execute(stmt)
            }
    except SQLAlchemyError:  # the history being down leaves the errors out, not the page
        return {}
    return found


def _keys(state: JobsState, registry: type, queue: str | None) -> dict[str, str]:
    names = [queue] if queue else queue_names(state)
    return {name: registry(queue=state.queue(name)).key for name in names}


#: One scheduled registry, sorted in Redis (one call, not one HGET per job from here):
#: of its first ARGV[4] entries, soonest due first, how many ran before (waiting for a
#: retry: their hash has a ``started_at``) or not (delayed); and the first ARGV[3]
#: entries (id, score) of the kind asked for (ARGV[2]: "1" retrying, "0" delayed).
_SPLIT = """
local entries = redis.call('zrange', KEYS[1], 0, tonumber(ARGV[4]) - 1, 'WITHSCORES')
local want = ARGV[2] == '1'
local wanted = tonumber(ARGV[3])
local matched, page = 0, {}
for i = 1, #entries, 2 do
    local started = redis.call('hget', ARGV[1] .. entries[i], 'started_at')
    local ran = started ~= false and started ~= ''
    if ran == want then
        if matched < wanted then
            page[#page + 1] = entries[i]
            page[#page + 1] = entries[i + 1]
        end
        matched = matched + 1
    end
end
return {matched, #entries / 2, page}
"""


def _scheduled(
    state: JobsState, kind: str, queue: str | None, offset: int, limit: int
) -> tuple[list[tuple[float, str, str]], int, bool]:
    """The ``kind`` ("retrying" or "scheduled") entries of the scheduled registries: one page,
    soonest due first; how many there are; and whether that count is exact (each
    registry's first `SPLIT_CAP` entries are sorted; past them, the count is scaled)."""
    keys = _keys(state, ScheduledJobRegistry, queue)
    conn: Any = state.connection
    want = "1" if kind == "retrying" else "0"
    with conn.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.zcard(key)
            pipe.eval(_SPLIT, 1, key, RQ_JOB_PREFIX, want, offset + limit, SPLIT_CAP)
        replies = pipe.execute()
    found: list[tuple[float, str, str]] = []
    total = 0
    exact = True
    for name, size, (matched, read, page) in zip(keys, replies[0::2], replies[1::2], strict=True):
        found += [(float(page[i + 1]), page[i].decode(), name) for i in range(0, len(page), 2)]
        if read < size:  # past the cap: the share of the kind in the entries read
            exact = False
            total += round(matched * size / read)
        else:
            total += matched
    return sorted(found)[offset : offset + limit], total, exact


def _running(state: JobsState, queue: str | None) -> list[tuple[str, str]]:
    """(job id, queue) of each job in the started registries."""
    keys = _keys(state, StartedJobRegistry, queue)
    with state.connection.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.zrange(key, 0, RUNNING_CAP - 1)
        replies = pipe.execute()
    # an entry is "<job id>:<execution id>" (job ids hold no ':')
    found = {
        entry.decode().partition(":")[0]: name
        for name, entries in zip(keys, replies, strict=True)
        for entry in entries
    }
    return list(found.items())[:RUNNING_CAP]


def _failed(
    state: JobsState, queue: str | None, offset: int, limit: int
) -> tuple[list[tuple[float, str, str]], int, list[dict[str, Any] | None]]:
    """One page of the failed registries, latest failure first (a score is when the entry
    expires: the latest failure is highest), how many there are, and the page's rows:
    one Redis call."""
    keys = _keys(state, FailedJobRegistry, queue)
    names = list(keys)
    total, entries, found = read_latest(state, list(keys.values()), offset, limit)
    return [(score, job_id, names[k]) for score, job_id, k in entries], total, found


def _row(kind: str, job_id: str, name: str, found: dict[str, Any] | None) -> dict[str, Any]:
    """What a live list shows of one job (its id alone when its data is gone or unreadable)."""
    row: dict[str, Any] = {"id": job_id, "queue": name, "func": None, "at": None}
    row.update(attempt=None, error=None, worker=None, progress=None, started_at=None)
    if found is None:
        return row
    row.update(func=found["func"], attempt=found["attempt"], started_at=found["started_at"])
    if kind == "running":
        row.update(at=found["started_at"], worker=found["worker"], progress=found["progress"])
        return row
    row["error"] = found["error"]
    if kind == "failed":
        row["at"] = found["ended_at"]
    return row


def live_set(
    state: JobsState,
    kind: str,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
    app: Flask | None = None,
) -> LivePage:
    """One page of a live set (`KINDS`), of ``queue`` or of every queue.

    Failed: latest failure first; running: longest running first; retrying and
    scheduled: soonest due first. Each row has ``id``, ``func``, ``queue``, ``at``
    (when it failed, started or is due), ``attempt``, ``error`` (the exception line of
    the last failure: for a retry, what it is retried after), ``worker`` and
    ``progress`` (of a running job). RQ keeps no result for an attempt that will be
    retried: with ``app``, its error comes from the history.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown live set {kind!r}; use one of {', '.join(KINDS)}")
    exact = True
    due: dict[str, datetime] = {}
    if kind == "running":
        running = _running(state, queue)
        entries = [(0.0, job_id, name) for job_id, name in running]
        total = len(entries)
    elif kind == "failed":
        entries, total, found = _failed(state, queue, offset, limit)
    else:
        entries, total, exact = _scheduled(state, kind, queue, offset, limit)
        due = {job_id: datetime.fromtimestamp(score, timezone.utc) for score, job_id, _ in entries}
    if kind != "failed":
        ids = [job_id for _, job_id, _ in entries]
        found = read_rows(state, ids, errors=kind != "running")
    rows = [
        _row(kind, job_id, name, job) for (_, job_id, name), job in zip(entries, found, strict=True)
    ]
    if kind == "running":
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        rows.sort(key=lambda row: _aware(row["started_at"]) or epoch)
        rows = rows[offset : offset + limit]
    for row in rows:
        row["at"] = due.get(row["id"], row["at"])
    missing = [row["id"] for row in rows if row["error"] is None and kind != "running"]
    if app is not None and missing:
        recorded = _history_errors(app, state, missing)
        for row in rows:
            if row["error"] is None and row["id"] in recorded:
                row["error"] = exception_line(recorded[row["id"]])
    return LivePage(total=total, rows=rows, exact=exact)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def live_counts(state: JobsState) -> dict[str, int]:
    """How many jobs each live set holds now (retrying and scheduled: estimates past
    `SPLIT_CAP` scheduled entries)."""
    sizes = {}
    for kind, registry in (
        ("failed", FailedJobRegistry),
        ("running", StartedJobRegistry),
        ("scheduled", ScheduledJobRegistry),
    ):
        with state.connection.pipeline(transaction=False) as pipe:
            for key in _keys(state, registry, None).values():
                pipe.zcard(key)
            sizes[kind] = sum(pipe.execute())
    retrying = _scheduled(state, "retrying", None, 0, 0)[1] if sizes["scheduled"] else 0
    return {
        "failed": sizes["failed"],
        "running": sizes["running"],
        "retrying": retrying,
        "scheduled": max(0, sizes["scheduled"] - retrying),
    }
