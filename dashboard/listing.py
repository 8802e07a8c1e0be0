"""The jobs list's query: history rows newest first by enqueue time, a page at a time.

`HistoryQuery.search` pages by row id, which follows the order the recorder wrote rows
in, not the time a job was enqueued; the list shows that time, so it sorts by it
(keyset paging on enqueue time, then id). Its function filter also takes a bare
function name ("flaky_sync"), as an operator types it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_jobs.history.filters import row_filters
from flask_jobs.history.query import HistoryPage, HistoryQuery

__all__ = ["jobs_page"]


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


def jobs_page(
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
    cursor: int | None = None,
    limit: int = 50,
    columns: tuple[str, ...],
) -> HistoryPage:
    """Rows matching every filter, newest enqueued first; ``next_cursor`` is a row id."""
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
    if cursor is not None:
        anchor = sa.select(t.c.enqueued_at).where(t.c.id == cursor).scalar_subquery()
        conditions.append(
            sa.or_(
                t.c.enqueued_at < anchor,
                sa.and_(t.c.enqueued_at == anchor, t.c.id < cursor),
                # rows without an enqueue time come last, by id
                sa.and_(t.c.enqueued_at.is_(None), sa.or_(anchor.is_not(None), t.c.id < cursor)),
            )
        )
    selected = [t.c.id, *(t.c[name] for name in columns if name != "id")]
    stmt = (
        sa.select(*selected)
        .where(*conditions)
        .order_by(t.c.enqueued_at.desc().nulls_last(), t.c.id.desc())
        .limit(limit + 1)
    )
    with query.store.engine(query.app).connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(rows=rows, next_cursor=rows[-1]["id"] if more and rows else None)
