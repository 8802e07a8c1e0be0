"""Reading the history: filtered, keyset-paginated lists, one job's attempts, and aggregates."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .events import COUNTED, STATUSES
from .filters import row_filters, unindexed

if TYPE_CHECKING:
    from flask import Flask

    from .store import HistoryStore

__all__ = ["HistoryPage", "HistoryQuery"]

MAX_PAGE = 500
PERCENTILE_SAMPLE = 5_000


@dataclass(frozen=True)
class HistoryPage:
    """One page of rows, newest first; ``next_cursor`` fetches the next (older) page."""

    rows: list[dict[str, Any]]
    next_cursor: int | None


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class HistoryQuery:
    """The query API over one app's history table."""

    def __init__(self, store: HistoryStore, app: Flask) -> None:
        self.store = store
        self.app = app
        self.table = store.table

    def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        with self.store.engine(self.app).connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def search(
        self,
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
        cursor: int | None = None,
        limit: int = 50,
        columns: tuple[str, ...] | None = None,
    ) -> HistoryPage:
        """Rows matching every filter given, newest first, ``limit`` at a time (keyset paging).

        ``columns`` narrows each row to those columns (plus ``id``): a list page need not
        carry every traceback it does not show.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        limit = max(1, min(int(limit), MAX_PAGE))
        t = self.table
        conditions = row_filters(
            t,
            status=status,
            queue=queue,
            function=function,
            origin=origin,
            since=since,
            until=until,
            text=text,
            job_id=job_id,
            workflow=workflow,
        )
        if cursor is not None:
            conditions.append(t.c.id < int(cursor))
        selected = [t] if columns is None else [t.c.id, *(t.c[c] for c in columns if c != "id")]
        stmt = sa.select(*selected).where(*conditions).order_by(t.c.id.desc()).limit(limit + 1)
        rows = self._rows(stmt)
        more = len(rows) > limit
        rows = rows[:limit]
        return HistoryPage(rows=rows, next_cursor=rows[-1]["id"] if more and rows else None)

    def get(self, job_id: str) -> list[dict[str, Any]]:
        """Every attempt of one job, first attempt first."""
        t = self.table
        return self._rows(sa.select(t).where(t.c.job_id == job_id).order_by(t.c.attempt))

    def _ended_since(self, window: timedelta, *columns: Any) -> list[dict[str, Any]]:
        t = self.table
        since = datetime.now(timezone.utc) - window
        return self._rows(sa.select(*columns).where(t.c.ended_at >= since))

    def recent_runs(self, window: timedelta) -> list[dict[str, Any]]:
        """Function, status and run time of every attempt that ended within ``window``."""
        t = self.table
        return self._ended_since(window, t.c.func, t.c.status, t.c.run_seconds)

    def function_stats(self, window: timedelta = timedelta(hours=24)) -> list[dict[str, Any]]:
        """Per function: attempts by outcome, failure rate, p50/p95 run time over ``window``.

        Counts are exact: closed hours come from the hourly roll-up (whole hours, so a
        window of days starts at the top of its first hour), the rest is counted live.
        The run-time percentiles come from the latest ``PERCENTILE_SAMPLE`` attempts of
        the window, so a huge window stays cheap.
        """
        t = self.table
        now = datetime.now(timezone.utc)
        since = now - window
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        with self.store.engine(self.app).connect() as conn:
            live_since = since
            rollup = self.store.rollup
            first, end = rollup.span(since, now)
            rolled = rollup.rolled(conn, first, end) if end > first else None
            if rolled is not None:
                for row in rollup.sums(conn, first, end, "func", "status", rolled=rolled):
                    counts[row["func"]][row["status"]] += row["n"]
                live_since = end
            counted = conn.execute(
                sa.select(unindexed(t.c.func).label("func"), t.c.status, sa.func.count().label("n"))
                .where(t.c.ended_at >= live_since)
                .group_by(unindexed(t.c.func), t.c.status)
            )
            for found in counted:
                counts[found.func or "?"][found.status] += found.n
            recent = conn.execute(
                sa.select(t.c.func, t.c.run_seconds)
                .where(t.c.ended_at >= since, t.c.run_seconds.is_not(None))
                .order_by(t.c.ended_at.desc())
                .limit(PERCENTILE_SAMPLE)
            ).all()
        runs: dict[str, list[float]] = defaultdict(list)
        for sample in recent:
            runs[sample.func or "?"].append(sample.run_seconds)
        stats = []
        for name, counter in counts.items():
            failed = counter["failed"] + counter["retried"] + counter["abandoned"]
            total = sum(counter.values())
            if not total:
                continue
            stats.append(
                {
                    "func": name,
                    "total": total,
                    "finished": counter["finished"],
                    "failed": failed,
                    "failure_rate": failed / total,
                    "p50_seconds": _percentile(runs[name], 0.50),
                    "p95_seconds": _percentile(runs[name], 0.95),
                }
            )
        return sorted(stats, key=lambda s: (-s["failed"], -s["total"], s["func"]))

    def _bucket(self, size: float) -> Any:
        """SQL for the index of the ``size``-second interval an attempt ended in."""
        t = self.table
        if self.store.engine(self.app).dialect.name == "postgresql":
            return sa.func.floor(sa.extract("epoch", t.c.ended_at) / size)
        # SQLite keeps datetimes as text; julianday() reads it (2440587.5 is the epoch)
        return sa.cast((sa.func.julianday(t.c.ended_at) - 2440587.5) * 86400.0 / size, sa.Integer)

    def throughput(
        self, window: timedelta = timedelta(hours=1), bucket: timedelta = timedelta(minutes=1)
    ) -> list[dict[str, Any]]:
        """Finished and failed attempts per ``bucket`` over ``window``, oldest first, gaps as 0.

        Buckets of whole hours read closed hours from the hourly roll-up.
        """
        t = self.table
        size = bucket.total_seconds()
        now = datetime.now(timezone.utc)
        first = int((now.timestamp() - window.total_seconds()) // size)
        last = int(now.timestamp() // size)
        series = {i: {"finished": 0, "failed": 0} for i in range(first, last + 1)}

        def add(index: int, status: str, n: int) -> None:
            slot = series.get(index)
            if slot is not None and status in COUNTED:
                slot["finished" if status == "finished" else "failed"] += n

        live_since = now - window
        index = self._bucket(size).label("bucket")
        with self.store.engine(self.app).connect() as conn:
            rollup = self.store.rollup
            start, end = rollup.span(live_since, now)
            hourly = size % 3600 == 0 and end > start
            rolled = rollup.rolled(conn, start, end) if hourly else None
            if rolled is not None:
                for row in rollup.sums(conn, start, end, "hour", "status", rolled=rolled):
                    add(int(row["hour"].timestamp() // size), row["status"], row["n"])
                live_since = end
            grouped = conn.execute(
                sa.select(index, t.c.status, sa.func.count().label("n"))
                .where(t.c.ended_at >= live_since, unindexed(t.c.status).in_(COUNTED))
                .group_by(index, t.c.status)
            )
            for live in grouped:
                add(int(live.bucket), live.status, live.n)
        return [
            {"at": datetime.fromtimestamp(i * size, timezone.utc), **counts}
            for i, counts in sorted(series.items())
        ]

    def top_exceptions(
        self, window: timedelta = timedelta(hours=24), limit: int = 10
    ) -> list[dict[str, Any]]:
        """The most frequent (function, exception type) pairs over ``window``.

        Closed hours come from the hourly roll-up (whole hours), the rest is counted live.
        """
        t = self.table
        now = datetime.now(timezone.utc)
        live_since = now - window
        groups: dict[tuple[str, str], dict[str, Any]] = {}

        def add(func: str, exc_type: str, n: int, first: Any, last: Any) -> None:
            group = groups.setdefault(
                (func, exc_type),
                {
                    "func": func,
                    "exc_type": exc_type,
                    "count": 0,
                    "first_seen": None,
                    "last_seen": None,
                },
            )
            group["count"] += n
            first, last = _utc(first), _utc(last)
            if first is not None and (group["first_seen"] is None or first < group["first_seen"]):
                group["first_seen"] = first
            if last is not None and (group["last_seen"] is None or last > group["last_seen"]):
                group["last_seen"] = last

        with self.store.engine(self.app).connect() as conn:
            rollup = self.store.rollup
            start, end = rollup.span(live_since, now)
            rolled = rollup.rolled(conn, start, end) if end > start else None
            if rolled is not None:
                for row in rollup.sums(conn, start, end, "func", "exc_type", rolled=rolled):
                    if row["exc_type"]:
                        add(
                            row["func"],
                            row["exc_type"],
                            row["n"],
                            row["first_ended"],
                            row["last_ended"],
                        )
                live_since = end
            live = conn.execute(
                sa.select(
                    unindexed(t.c.func).label("func"),
                    t.c.exc_type,
                    sa.func.count().label("n"),
                    sa.func.min(t.c.ended_at).label("first_seen"),
                    sa.func.max(t.c.ended_at).label("last_seen"),
                )
                .where(t.c.exc_type.is_not(None), t.c.ended_at >= live_since)
                .group_by(unindexed(t.c.func), t.c.exc_type)
            )
            for found in live:
                add(found.func or "?", found.exc_type, found.n, found.first_seen, found.last_seen)
        ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["func"], g["exc_type"]))
        return ranked[:limit]


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
