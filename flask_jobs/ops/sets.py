"""The live sets, read from RQ's registries now (not from the history): the jobs failed
now, running, waiting for a retry, and scheduled for later.

A job in RQ's scheduled registry is either delayed (``enqueue_in``, ``enqueue_at``:
it never ran) or a failed attempt waiting for its retry (it ran: its hash has a
``started_at``); the two are listed apart, as Sidekiq's Retries and Scheduled sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from redis.exceptions import NoScriptError
from sqlalchemy.exc import SQLAlchemyError

from ..jobs.flask_job import FlaskJob
from ..keys import RQ_JOB_PREFIX, failed_key, scheduled_key, started_key
from .queues import queue_names, read_queue_names
from .rows import exception_line, load_latest, progress_of, queue_latest, read_rows

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


#: A page's reads queued on a pipeline; given the replies of those commands (from the
#: first on), it returns (entries (score, job id, queue), total, exact, rows or None).
Reads = Callable[[list[Any]], tuple[list[tuple[float, str, str]], int, bool, Any]]


def _scheduled(pipe: Any, kind: str, names: list[str], offset: int, limit: int) -> Reads:
    """Queue the reads of the ``kind`` ("retrying" or "scheduled") entries of the scheduled
    registries of ``names``: one page, soonest due first; how many there are; and whether
    that count is exact (each registry's first `SPLIT_CAP` entries are sorted; past them,
    the count is scaled)."""
    want = "1" if kind == "retrying" else "0"
    for name in names:
        key = scheduled_key(name)
        pipe.zcard(key)
        pipe.eval(_SPLIT, 1, key, RQ_JOB_PREFIX, want, offset + limit, SPLIT_CAP)

    def page(replies: list[Any]) -> tuple[list[tuple[float, str, str]], int, bool, Any]:
        found: list[tuple[float, str, str]] = []
        total = 0
        exact = True
        for name, size, split in zip(names, replies[0::2], replies[1::2], strict=False):
            matched, read, entries = split
            found += [(float(entries[i + 1]), entries[i].decode(), name)
                      for i in range(0, len(entries), 2)]  # fmt: skip
            if read < size:  # past the cap: the share of the kind in the entries read
                exact = False
                total += round(matched * size / read)
            else:
                total += matched
        return sorted(found)[offset : offset + limit], total, exact, None

    return page


def _running(pipe: Any, names: list[str]) -> Reads:
    """Queue the reads of (job id, queue) of each job in the started registries."""
    for name in names:
        pipe.zrange(started_key(name), 0, RUNNING_CAP - 1)

    def page(replies: list[Any]) -> tuple[list[tuple[float, str, str]], int, bool, Any]:
        # an entry is "<job id>:<execution id>" (job ids hold no ':')
        found = {
            entry.decode().partition(":")[0]: name
            for name, entries in zip(names, replies, strict=False)
            for entry in entries
        }
        running = [(0.0, job_id, name) for job_id, name in found.items()][:RUNNING_CAP]
        return running, len(running), True, None

    return page


def _failed(state: JobsState, pipe: Any, names: list[str], offset: int, limit: int) -> Reads:
    """Queue the read of one page of the failed registries, latest failure first (a score
    is when the entry expires: the latest failure is highest), how many there are, and
    the page's rows: one command."""
    latest = queue_latest(state, pipe, [failed_key(name) for name in names], offset, limit)

    def page(replies: list[Any]) -> tuple[list[tuple[float, str, str]], int, bool, Any]:
        total, entries, found = latest(replies[0])
        return [(score, job_id, names[k]) for score, job_id, k in entries], total, True, found

    return page


def _reads(
    state: JobsState, pipe: Any, kind: str, names: list[str], offset: int, limit: int
) -> Reads:
    if kind == "running":
        return _running(pipe, names)
    if kind == "failed":
        return _failed(state, pipe, names, offset, limit)
    return _scheduled(pipe, kind, names, offset, limit)


#: The queue names each Redis had when last read (by connection pool). A page's reads are
#: sent for them in the round trip that reads the names, and sent again when those changed.
_NAMES_SEEN: dict[int, list[str]] = {}


def _read_page(
    state: JobsState,
    kind: str,
    queue: str | None,
    offset: int,
    limit: int,
    also: Also | None,
) -> tuple[list[tuple[float, str, str]], int, bool, Any]:
    """The entries of a page, in one round trip with the queue names (and ``also``'s)."""
    try:
        return _read_page_once(state, kind, queue, offset, limit, also)
    except NoScriptError:  # a Redis that lost (or never had) the page's script
        load_latest(state)
        return _read_page_once(state, kind, queue, offset, limit, also)


def _read_page_once(
    state: JobsState,
    kind: str,
    queue: str | None,
    offset: int,
    limit: int,
    also: Also | None,
) -> tuple[list[tuple[float, str, str]], int, bool, Any]:
    conn: Any = state.connection
    seen = id(conn.connection_pool)
    names = [queue] if queue else _NAMES_SEEN.get(seen) or list(state.config.queues)
    with conn.pipeline(transaction=False) as pipe:
        read_names = None if queue else read_queue_names(state, pipe)
        kept = len(pipe)
        finish = also(pipe) if also is not None else None
        first = len(pipe)
        reads = _reads(state, pipe, kind, names, offset, limit)
        replies = pipe.execute()
    if finish is not None:
        finish(replies[kept:first])
    if read_names is not None:
        known = read_names(replies)
        if known != names:  # a queue came or went since the last read: read it again
            _NAMES_SEEN[seen] = names = known
            with conn.pipeline(transaction=False) as pipe:
                reads, first = _reads(state, pipe, kind, names, offset, limit), 0
                replies = pipe.execute()
    return reads(replies[first:])


#: What `live_set` sends in its first round trip besides its own reads: given the
#: pipeline, it queues commands and returns what takes their replies.
Also = Callable[[Any], Callable[[list[Any]], None]]


def live_set(
    state: JobsState,
    kind: str,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
    app: Flask | None = None,
    also: Also | None = None,
) -> LivePage:
    """One page of a live set (`KINDS`), of ``queue`` or of every queue.

    Failed: latest failure first; running: longest running first; retrying and
    scheduled: soonest due first. Each row has ``id``, ``func``, ``queue``, ``at``
    (when it failed, started or is due), ``attempt``, ``error`` (the exception line of
    the last failure: for a retry, what it is retried after), ``worker`` and
    ``progress`` (of a running job). RQ keeps no result for an attempt that will be
    retried: with ``app``, its error comes from the history.

    Failed is one round trip (the queue names, the page and its rows); the others two.
    ``also`` adds commands of the caller's own to the first.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown live set {kind!r}; use one of {', '.join(KINDS)}")
    entries, total, exact, found = _read_page(state, kind, queue, offset, limit, also)
    due: dict[str, datetime] = {}
    if kind in ("retrying", "scheduled"):
        due = {job_id: datetime.fromtimestamp(score, timezone.utc) for score, job_id, _ in entries}
    if found is None:
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


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def live_counts(state: JobsState) -> dict[str, int]:
    """How many jobs each live set holds now (retrying and scheduled: estimates past
    `SPLIT_CAP` scheduled entries). Two round trips."""
    names = queue_names(state)
    with state.connection.pipeline(transaction=False) as pipe:
        for key in (failed_key, started_key, scheduled_key):
            for name in names:
                pipe.zcard(key(name))
        retrying = _scheduled(pipe, "retrying", names, 0, 0)
        replies = pipe.execute()
    width = len(names)
    failed, running, scheduled = (sum(replies[i * width : (i + 1) * width]) for i in range(3))
    waiting = retrying(replies[3 * width :])[1] if scheduled else 0
    return {
        "failed": failed,
        "running": running,
        "retrying": waiting,
        "scheduled": max(0, scheduled - waiting),
    }
