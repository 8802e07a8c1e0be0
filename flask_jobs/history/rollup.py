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

    def span(self, since: datetime, now: datetime) -> tuple[datetime, datetime]:
        """Closed hours covering ``since``..now: ``[first, end)``, empty when ``end <= first``."""
        return hour_of(since), hour_of(now - ROLLUP_DELAY)

    def invalidate(self, conn: Connection, hours: set[datetime]) -> None:
        """Forget these hours' roll-ups (in the caller's transaction)."""
        if hours:
            conn.execute(sa.delete(self.hourly).where(self.hourly.c.hour.in_(sorted(hours))))

    def ensure(self, conn: Connection, first: datetime, end: datetime) -> bool:
        """Roll up each closed hour of ``[first, end)`` not rolled yet; False: no roll-up table."""
        if end <= first:
            return True
        h = self.hourly
        try:
            done = {
                hour_of(row.hour)
                for row in conn.execute(
                    # the histogram column too: a table made before it is no roll-up to read
                    sa.select(h.c.hour, h.c.run_hist).where(
                        h.c.func == TOTAL, h.c.hour >= first, h.c.hour < end
                    )
                )
            }
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
            return False
        hour = first
        while hour < end:
            if hour not in done:
                self._roll(conn, hour)
            hour += HOUR
        return True

    def _roll(self, conn: Connection, hour: datetime) -> None:
        t = self.history
        # Rows, not SQL groups: the histograms are binned here (an hour is a few thousand
        # rows at most for most apps, and this runs once per hour, off the request path).
        ended = conn.execute(
            sa.select(
                unindexed(t.c.func).label("func"),
                t.c.status,
                t.c.exc_type,
                t.c.run_seconds,
                t.c.wait_seconds,
                t.c.ended_at,
            ).where(
                t.c.ended_at >= hour,
                t.c.ended_at < hour + HOUR,
                unindexed(t.c.status).in_(ENDED),
            )
        )
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in ended:
            key = (row.func or "?", row.status, row.exc_type or "")
            group = groups.get(key)
            if group is None:
                group = groups[key] = {
                    "n": 0,
                    "run_seconds": None,
                    "first_ended": row.ended_at,
                    "last_ended": row.ended_at,
                    "run": Counter(),
                    "wait": Counter(),
                }
            group["n"] += 1
            if row.run_seconds is not None:
                group["run_seconds"] = (group["run_seconds"] or 0.0) + row.run_seconds
                group["run"][histogram.bucket_of(row.run_seconds)] += 1
            if row.wait_seconds is not None:
                group["wait"][histogram.bucket_of(row.wait_seconds)] += 1
            group["first_ended"] = min(group["first_ended"], row.ended_at)
            group["last_ended"] = max(group["last_ended"], row.ended_at)
        rows = [
            {
                "hour": hour,
                "func": func,
                "status": status,
                "exc_type": exc_type,
                "n": group["n"],
                "run_seconds": group["run_seconds"],
                "first_ended": group["first_ended"],
                "last_ended": group["last_ended"],
                "run_hist": histogram.encode(group["run"]),
                "wait_hist": histogram.encode(group["wait"]),
            }
            for (func, status, exc_type), group in groups.items()
        ]
        marker = dict.fromkeys(
            ("run_seconds", "first_ended", "last_ended", "run_hist", "wait_hist")
        )
        total = sum(r["n"] for r in rows)
        rows.append(
            {"hour": hour, "func": TOTAL, "status": TOTAL, "exc_type": "", "n": total, **marker}
        )
        conn.execute(self._insert(conn), rows)
        conn.commit()

    def _insert(self, conn: Connection) -> Any:
        # Two readers may roll the same hour at once; the second one's rows are the same.
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        return insert(self.hourly).on_conflict_do_nothing()

    def sums(
        self, conn: Connection, first: datetime, end: datetime, *keys: str
    ) -> list[dict[str, Any]]:
        """Rolled counts of ``[first, end)`` summed per ``keys`` (e.g. "hour", "status").

        Each row has the keys, ``n``, and the first and last time an attempt ended.
        """
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
