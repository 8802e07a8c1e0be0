"""Hourly roll-ups of the history: per function and outcome, so week-long charts stay cheap.

A chart over seven days of a busy history would count every attempt of the
week on each page load (1.3 s on a million rows in SQLite). Instead each
closed hour is counted once into ``flask_jobs_history_hourly`` and read back
as a few hundred rows; only the last hour or so is counted live.

Each row also keeps histograms of its attempts' run and wait times
(`histogram`), so percentiles over days come from the roll-ups too.

An hour is *closed* ``ROLLUP_DELAY`` after it ends. An attempt recorded later
than that (the recorder catching up after a database outage) would be missed
by a roll-up already made, so the history writer drops the roll-up of any
hour it writes a late attempt into (``LATE``), and the next read counts that
hour again. ``LATE`` is shorter than ``ROLLUP_DELAY``, so every write that
could land in a rolled hour is seen as late.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import histogram
from .events import ENDED
from .filters import unindexed

__all__ = ["LATE", "ROLLUP_DELAY", "HourlyRollup", "hourly_table"]

log = logging.getLogger("flask_jobs.history")

TABLE_NAME = "flask_jobs_history_hourly"
HOUR = timedelta(hours=1)
ROLLUP_DELAY = timedelta(minutes=15)
LATE = timedelta(minutes=5)
#: Spans whose `HourlyRollup.sums` are kept per process (a few ranges and groupings).
KEEP_SUMS = 16
#: The marker row of a rolled hour: it holds the hour's total and says "this hour is done".
TOTAL = "*"


def hourly_table(metadata: sa.MetaData) -> sa.Table:
    """The ``flask_jobs_history_hourly`` table, defined on ``metadata`` beside the history."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("func", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        # '' for attempts without an exception (a primary key column cannot be NULL)
        sa.Column("exc_type", sa.String(255), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("run_seconds", sa.Float),
        sa.Column("first_ended", sa.DateTime(timezone=True)),
        sa.Column("last_ended", sa.DateTime(timezone=True)),
        # run and wait (enqueue to start) times as fixed-bucket histograms (`histogram`)
        sa.Column("run_hist", sa.Text),
        sa.Column("wait_hist", sa.Text),
    )


#: Columns a roll-up table made before the histograms lacks.
HISTOGRAM_COLUMNS = ("run_hist", "wait_hist")


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0)


def late_hours(rows: Iterable[dict[str, Any]], now: datetime) -> set[datetime]:
    """Hours whose roll-up these written rows may invalidate (ended long enough ago)."""
    hours = set()
    for row in rows:
        ended = row.get("ended_at")
        if ended is not None and row.get("status") in ENDED and ended < now - LATE:
            hours.add(hour_of(ended))
    return hours


class HourlyRollup:
    """Reads and fills the hourly roll-up of one history table."""

    def __init__(self, history: sa.Table, hourly: sa.Table) -> None:
        self.history = history
        self.hourly = hourly
        self._missing_logged = False
        #: `sums` of the last spans asked for, by (keys, span, the span's hour totals).
        self._sums: dict[Any, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def span(self, since: datetime, now: datetime) -> tuple[datetime, datetime]:
        """Closed hours covering ``since``..now: ``[first, end)``, empty when ``end <= first``."""
        return hour_of(since), hour_of(now - ROLLUP_DELAY)

    def invalidate(self, conn: Connection, hours: set[datetime]) -> None:
        """Forget these hours' roll-ups (in the caller's transaction)."""
        if hours:
            conn.execute(sa.delete(self.hourly).where(self.hourly.c.hour.in_(sorted(hours))))

    def ensure(self, conn: Connection, first: datetime, end: datetime) -> bool:
        """Roll up each closed hour of ``[first, end)`` not rolled yet; False: no roll-up table."""
        return self.rolled(conn, first, end) is not None

    def rolled(
        self, conn: Connection, first: datetime, end: datetime
    ) -> tuple[tuple[datetime, int], ...] | None:
        """`ensure`, giving each hour of ``[first, end)`` with its total (None: no roll-up
        table): what `sums` keys its cache by."""
        if end <= first:
            return ()
        h = self.hourly
        try:
            # the histogram column too: a table made before it is no roll-up to read
            marked = conn.execute(
                sa.select(h.c.hour, h.c.n, h.c.run_hist).where(
                    h.c.func == TOTAL, h.c.hour >= first, h.c.hour < end
                )
            ).all()
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            if not self._missing_logged:
                self._missing_logged = True
                log.warning(
                    "history: no %s table, or one without its histogram columns (%s); charts "
                    "count every row instead. Create it with `flask jobs history init` or your "
                    "migrations.",
                    TABLE_NAME,
                    str(exc).splitlines()[0][:200],
                )
            return None
        totals = {hour_of(row.hour): row.n for row in marked}
        hour = first
        while hour < end:
            if hour not in totals:
                totals[hour] = self._roll(conn, hour)
            hour += HOUR
        return tuple(sorted(totals.items()))

    def _roll(self, conn: Connection, hour: datetime) -> int:
        t = self.history
        in_hour = (
            t.c.ended_at >= hour,
            t.c.ended_at < hour + HOUR,
            unindexed(t.c.status).in_(ENDED),
        )
        group = (unindexed(t.c.func), t.c.status, t.c.exc_type)
        grouped = conn.execute(
            sa.select(
                unindexed(t.c.func).label("func"),
                t.c.status,
                t.c.exc_type,
                sa.func.count().label("n"),
                sa.func.sum(t.c.run_seconds).label("run_seconds"),
                sa.func.min(t.c.ended_at).label("first_ended"),
                sa.func.max(t.c.ended_at).label("last_ended"),
            )
            .where(*in_hour)
            .group_by(*group)
        ).all()
        # The histograms are binned here, from the durations alone (no SQL function
        # buckets a duration on a log scale in both SQLite and PostgreSQL).
        runs: dict[tuple[str, str, str], Counter[int]] = {}
        waits: dict[tuple[str, str, str], Counter[int]] = {}
        bucket_of = histogram.bucket_of
        durations = sa.select(
            unindexed(t.c.func), t.c.status, t.c.exc_type, t.c.run_seconds, t.c.wait_seconds
        ).where(*in_hour)
        for func, status, exc_type, run, wait in conn.execute(durations):
            key = (func or "?", status, exc_type or "")
            if run is not None:
                counts = runs.get(key)
                if counts is None:
                    counts = runs[key] = Counter()
                counts[bucket_of(run)] += 1
            if wait is not None:
                counts = waits.get(key)
                if counts is None:
                    counts = waits[key] = Counter()
                counts[bucket_of(wait)] += 1
        rows = []
        for row in grouped:
            key = (row.func or "?", row.status, row.exc_type or "")
            rows.append(
                {
                    "hour": hour,
                    "func": key[0],
                    "status": row.status,
                    "exc_type": key[2],
                    "n": row.n,
                    "run_seconds": row.run_seconds,
                    "first_ended": row.first_ended,
                    "last_ended": row.last_ended,
                    "run_hist": histogram.encode(runs.get(key, Counter())),
                    "wait_hist": histogram.encode(waits.get(key, Counter())),
                }
            )
        marker = dict.fromkeys(
            ("run_seconds", "first_ended", "last_ended", "run_hist", "wait_hist")
        )
        total = int(sum(r["n"] for r in rows))
        rows.append(
            {"hour": hour, "func": TOTAL, "status": TOTAL, "exc_type": "", "n": total, **marker}
        )
        conn.execute(self._insert(conn), rows)
        conn.commit()
        return total

    def _insert(self, conn: Connection) -> Any:
        # Two readers may roll the same hour at once; the second one's rows are the same.
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        return insert(self.hourly).on_conflict_do_nothing()

    def sums(
        self,
        conn: Connection,
        first: datetime,
        end: datetime,
        *keys: str,
        rolled: tuple[tuple[datetime, int], ...] | None = None,
    ) -> list[dict[str, Any]]:
        """Rolled counts of ``[first, end)`` summed per ``keys`` (e.g. "hour", "status").

        Each row has the keys, ``n``, and the first and last time an attempt ended. With
        ``rolled`` (what `rolled` gave for this span), the sums are kept per process and
        given back while the span's hours keep their totals: a roll-up row never changes
        once written (a late write deletes its hour, rolled again with another total).
        The rows given back are shared: read them, do not change them.
        """
        if rolled is None:
            return self._sums_of(conn, first, end, keys)
        signature = (keys, first, end, rolled)
        with self._lock:
            found = self._sums.get(signature)
        if found is None:
            found = self._sums_of(conn, first, end, keys)
            with self._lock:
                self._sums[signature] = found
                for old in list(self._sums)[: max(0, len(self._sums) - KEEP_SUMS)]:
                    del self._sums[old]
        return found

    def _sums_of(
        self, conn: Connection, first: datetime, end: datetime, keys: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        h = self.hourly
        columns = [h.c[key] for key in keys]
        stmt = (
            sa.select(
                *columns,
                sa.func.sum(h.c.n).label("n"),
                sa.func.min(h.c.first_ended).label("first_ended"),
                sa.func.max(h.c.last_ended).label("last_ended"),
            )
            .where(h.c.hour >= first, h.c.hour < end, h.c.func != TOTAL)
            .group_by(*columns)
        )
        rows = [dict(row._mapping) for row in conn.execute(stmt)]
        if "hour" in keys:
            for row in rows:
                row["hour"] = hour_of(row["hour"])
        return rows
