"""The filters of a history search, as SQL conditions: one definition for every list.

A function filter takes a dotted path (``app.tasks.sync`` or ``app.tasks:sync``)
or a bare name (``sync``, matching it in any module), as an operator types it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["contains", "epoch_bucket", "row_filters", "unindexed"]


def contains(text: str) -> str:
    """A LIKE pattern (escape ``\\``) matching ``text`` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def unindexed(column: Any) -> Any:
    """``column || ''``: the same value, but no index on the column drives the query.

    Without ANALYZE statistics SQLite prefers an equality index ((func, id),
    (status, id), (queue, id)) to a range or an ordering index, and then reads or
    sorts every matching row (1.4 s instead of 1 ms on a million rows); filtering
    or grouping on this expression leaves it the better plan.
    """
    return column.concat(sa.literal_column("''"))


def row_filters(
    table: sa.Table,
    *,
    status: str | None = None,
    queue: str | None = None,
    function: str | None = None,
    origin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    job_id: str | None = None,
    workflow: str | None = None,
    broad: bool = False,
) -> list[Any]:
    """The conditions a row must meet for every filter given (None or empty: not set).

    With ``broad``, the equality filters (status, queue, a dotted function) use no
    index: the caller walks another one (see `unindexed`).
    """
    t = table
    equal: dict[str, str] = {}
    if status:
        equal["status"] = status
    if queue:
        equal["queue"] = queue
    bare = None
    if function:
        dotted = function.replace(":", ".")
        if "." in dotted:
            equal["func"] = dotted
        else:
            bare = dotted
    conditions: list[Any] = [
        (unindexed(t.c[name]) if broad else t.c[name]) == value for name, value in equal.items()
    ]
    if bare:  # a bare name: no index helps
        conditions.append(
            sa.or_(t.c.func == bare, t.c.func.like(contains("." + bare)[:-1], escape="\\"))
        )
    if origin:
        conditions.append(t.c.origin.like(contains(origin)[1:], escape="\\"))
    if job_id:
        conditions.append(t.c.job_id == job_id)
    if workflow:
        conditions.append(t.c.workflow_id == workflow)
    if since is not None:
        conditions.append(t.c.enqueued_at >= since)
    if until is not None:
        conditions.append(t.c.enqueued_at < until)
    if text:
        pattern = contains(text)
        columns = ("args", "kwargs", "exc_message", "exc_type")
        conditions.append(sa.or_(*(t.c[name].like(pattern, escape="\\") for name in columns)))
    return conditions


def epoch_bucket(conn: Connection, at: Any, size: float) -> Any:
    """SQL for the index of the ``size``-second interval that time column ``at`` falls in
    (seconds since the epoch // size), or None where it is to be found in Python."""
    if not float(size).is_integer():
        return None
    if conn.dialect.name == "postgresql":
        return sa.func.floor(sa.extract("epoch", at) / int(size))
    if conn.dialect.name == "sqlite":  # whole seconds since the epoch, divided as integers
        return sa.cast(sa.func.strftime("%s", at), sa.Integer) // int(size)
    return None
