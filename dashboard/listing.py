"""The jobs list's query: history rows newest first by enqueue time, a page at a time.

`HistoryQuery.search` pages by row id, which follows the order the recorder wrote rows
in, not the time a job was enqueued; the list shows that time, so it sorts by it
(keyset paging on enqueue time, then id). Its function filter also takes a bare
function name ("flaky_sync"), as an operator types it.

By default it shows one row per job, its latest attempt (whose number is how many
attempts the job has had): a row is left out when the same job has a later attempt,
which the unique (job id, attempt) index answers per row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_jobs.history.filters import row_filters
from flask_jobs.history.query import HistoryPage, HistoryQuery

__all__ = ["jobs_page", "jobs_statement"]


#: A filter matching fewer rows than this is read through its own index and sorted;
#: a broader one walks the enqueue-time index until the page is full.
SELECTIVE = 5_000


def _broad(query: HistoryQuery, indexed: list[Any]) -> bool:
    """Whether the equality filters match ``SELECTIVE`` rows or more (one index probe)."""
    t = query.table
    probe = sa.select(sa.func.count()).select_from(
        sa.select(t.c.id).where(*indexed).limit(SELECTIVE).subquery()
    )
    with query.store.engine(query.app).connect() as conn:
        return int(conn.execute(probe).scalar_one()) >= SELECTIVE


def _dotted(function: str | None) -> str | None:
    """A function filter that names a module too (an index lookup), else None."""
    return function if function and "." in function.replace(":", ".") else None


#: Where a page starts: after the row with this id, enqueued at this time (None: a row
#: without an enqueue time, or one gone since).
Anchor = tuple[int, datetime | None]


def _anchor(query: HistoryQuery, cursor: int | None) -> Anchor | None:
    if cursor is None:
        return None
    t = query.table
    with query.store.engine(query.app).connect() as conn:
        moment = conn.execute(sa.select(t.c.enqueued_at).where(t.c.id == cursor)).scalar()
    return cursor, moment


def jobs_page(
    query: HistoryQuery, *, limit: int = 50, cursor: int | None = None, **search: Any
) -> HistoryPage:
    """Rows matching every filter, newest enqueued first; ``next_cursor`` is a row id.

    ``search`` holds `jobs_statement`'s filters, columns and ``every_attempt``. Rows
    with an enqueue time come first, then those without (by id): two queries, so that
    each walks an index in its own order on every database (PostgreSQL sorts NULLs
    first in a descending index scan, SQLite last).
    """
    anchor = _anchor(query, cursor)
    rows: list[dict[str, Any]] = []
    with query.store.engine(query.app).connect() as conn:
        if anchor is None or anchor[1] is not None:
            stmt = jobs_statement(query, limit=limit, anchor=anchor, **search)
            rows = [dict(row._mapping) for row in conn.execute(stmt)]
        if len(rows) <= limit:
            untimed = anchor if anchor is not None and anchor[1] is None else None
            stmt = jobs_statement(
                query, limit=limit - len(rows), anchor=untimed, timed=False, **search
            )
            rows += [dict(row._mapping) for row in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(rows=rows, next_cursor=rows[-1]["id"] if more and rows else None)


def jobs_statement(
    query: HistoryQuery,
    *,
    status: str | None = None,
    queue: str | None = None,
    function: str | None = None,
    origin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    workflow: str | None = None,
    anchor: Anchor | None = None,
    limit: int = 50,
    columns: tuple[str, ...],
    every_attempt: bool = False,
    timed: bool = True,
) -> sa.Select[Any]:
    """The query of one page (``limit`` + 1 rows, to know whether there is more) after
    ``anchor``: the rows with an enqueue time, newest first (``timed``), or the rows
    without one, by id. Each job's latest attempt only, unless ``every_attempt``."""
    t = query.table
    equal = row_filters(t, status=status, queue=queue, function=_dotted(function))
    conditions = row_filters(
        t,
        status=status,
        queue=queue,
        function=function,
        origin=origin,
        since=since,
        until=until,
        text=text,
        workflow=workflow,
        broad=bool(equal) and _broad(query, equal),
    )
    if not every_attempt:
        later = t.alias("later")
        conditions.append(
            ~sa.exists().where(later.c.job_id == t.c.job_id, later.c.attempt > t.c.attempt)
        )
    if timed:
        conditions.append(t.c.enqueued_at.is_not(None))
        order = [t.c.enqueued_at.desc(), t.c.id.desc()]
        if anchor is not None:
            row_id, moment = anchor
            conditions.append(
                sa.or_(
                    t.c.enqueued_at < moment,
                    sa.and_(t.c.enqueued_at == moment, t.c.id < row_id),
                )
            )
            # The same rows, but a bound an index range can start from: without it the
            # OR above is checked on every row from the newest down to the anchor (page
            # 100 of a broad filter read ~250,000 rows of a million to show 50).
            conditions.append(t.c.enqueued_at <= moment)
    else:
        conditions.append(t.c.enqueued_at.is_(None))
        order = [t.c.id.desc()]
        if anchor is not None:
            conditions.append(t.c.id < anchor[0])
    selected = [t.c.id, *(t.c[name] for name in columns if name != "id")]
    return sa.select(*selected).where(*conditions).order_by(*order).limit(limit + 1)
