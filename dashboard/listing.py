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

from flask_jobs.history.query import HistoryPage, HistoryQuery

__all__ = ["jobs_page"]


def _contains(text: str) -> str:
    """A LIKE pattern (escape ``\\``) matching ``text`` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


#: A filter matching fewer rows than this is read through its own index and sorted;
#: a broader one walks the enqueue-time index until the page is full.
SELECTIVE = 5_000


def _unindexed(column: Any) -> Any:
    """``column || ''``: the same value, but no index on the column drives the query.

    SQLite without ANALYZE statistics prefers an equality index ((status, id),
    (queue, id)) and then sorts every matching row by enqueue time: 0.5 s for a
    queue of 300,000 rows, against 2 ms walking the enqueue-time index. For a
    filter that matches few rows it is the other way round (the walk reads the
    whole index), hence the probe in `_broad`.
    """
    return column.concat(sa.literal_column("''"))


def _broad(query: HistoryQuery, indexed: list[Any]) -> bool:
    """Whether the equality filters match ``SELECTIVE`` rows or more (one index probe)."""
    t = query.table
    probe = sa.select(sa.func.count()).select_from(
        sa.select(t.c.id).where(*indexed).limit(SELECTIVE).subquery()
    )
    with query.store.engine(query.app).connect() as conn:
        return int(conn.execute(probe).scalar_one()) >= SELECTIVE


def _function(column: Any, name: str) -> Any:
    """A bare function name matches itself in any module (``pkg.mod.name``)."""
    return sa.or_(column == name, column.like(_contains("." + name)[:-1], escape="\\"))


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
    cursor: int | None = None,
    limit: int = 50,
    columns: tuple[str, ...],
) -> HistoryPage:
    """Rows matching every filter, newest enqueued first; ``next_cursor`` is a row id."""
    t = query.table
    equal = {"status": status, "queue": queue}
    if function and "." in function.replace(":", "."):
        equal["func"] = function.replace(":", ".")
        function = None
    indexed = [t.c[name] == value for name, value in equal.items() if value]
    if indexed and _broad(query, indexed):
        indexed = [_unindexed(t.c[name]) == value for name, value in equal.items() if value]
    conditions: list[Any] = list(indexed)
    if function:  # a bare name: no index helps
        conditions.append(_function(t.c.func, function))
    if origin:
        conditions.append(t.c.origin.like(_contains(origin)[1:], escape="\\"))
    if since is not None:
        conditions.append(t.c.enqueued_at >= since)
    if until is not None:
        conditions.append(t.c.enqueued_at < until)
    if text:
        pattern = _contains(text)
        conditions.append(
            sa.or_(
                *(
                    t.c[name].like(pattern, escape="\\")
                    for name in ("args", "kwargs", "exc_message", "exc_type")
                )
            )
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
