"""Per-function statistics: runs, failure rate, run and wait percentiles, failure groups.

Closed hours come from the hourly roll-ups (counts and fixed-bucket
histograms, `histogram`), the open tail (about the last hour) from the rows
themselves, binned the same way; so a 30-day page reads a few hundred
roll-up rows instead of every attempt of the month.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import histogram
from .events import COUNTED
from .filters import contains, epoch_bucket, unindexed
from .store import FAILED, FAILED_WHERE

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Connection

    from .store import HistoryStore

__all__ = ["RANGES", "FunctionStats", "Totals"]

#: The ranges a function page offers: the window, and the width of a chart's bucket.
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=2)),
    "30d": (timedelta(days=30), timedelta(hours=8)),
}
#: Failed attempts read (newest first) to group a function's recent failures.
FAILURE_SAMPLE = 2_000


@dataclass
class Totals:
    """Counts by outcome and run/wait histograms of a set of attempts."""

    outcomes: Counter[str] = field(default_factory=Counter)
    run: Counter[int] = field(default_factory=Counter)
    wait: Counter[int] = field(default_factory=Counter)
    last_ended: datetime | None = None

    def add(self, status: str, n: int, run: Counter[int], wait: Counter[int]) -> None:
        """Count ``n`` attempts that ended ``status`` with these histograms."""
        if status in COUNTED:
            self.outcomes[status] += n
        self.run.update(run)
        self.wait.update(wait)

    def seen(self, moment: datetime | None) -> None:
        """Remember ``moment`` if it is the latest end seen."""
        moment = _utc(moment)
        if moment is not None and (self.last_ended is None or moment > self.last_ended):
            self.last_ended = moment

    def copy(self) -> Totals:
        """A copy that can be added to without changing this one."""
        return Totals(
            Counter(self.outcomes), Counter(self.run), Counter(self.wait), self.last_ended
        )

    def merge(self, other: Totals) -> None:
        """Add ``other``'s attempts to these."""
        self.outcomes.update(other.outcomes)
        self.run.update(other.run)
        self.wait.update(other.wait)
        self.seen(other.last_ended)

    def summary(self) -> dict[str, Any]:
        """Runs, failures, failure rate, p50/p95/p99 of run and wait times (seconds)."""
        total = sum(self.outcomes.values())
        failed = sum(self.outcomes[status] for status in FAILED)
        out: dict[str, Any] = {
            "runs": total,
            "finished": self.outcomes["finished"],
            "failed": failed,
            "failure_rate": failed / total if total else None,
            "last_ended": self.last_ended,
        }
        for name, counts in (("run", self.run), ("wait", self.wait)):
            for label, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
                out[f"{name}_{label}"] = histogram.percentile(counts, fraction)
        return out


def _as_utc(ended: Any) -> datetime:
    """An end time as the driver gave it (a datetime, or SQLite's text) as aware UTC."""
    moment = ended if isinstance(ended, datetime) else datetime.fromisoformat(str(ended))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


class FunctionStats:
    """Reads per-function statistics from one app's history and its roll-ups."""

    def __init__(self, store: HistoryStore, app: Flask) -> None:
        self.store = store
        self.app = app

    def _gather(
        self,
        conn: Connection,
        window: timedelta,
        bucket: timedelta,
        func: str | None,
        key: str,
    ) -> dict[Any, Totals]:
        """Totals per ``key`` ("func", or "bucket": the start of a ``bucket``-wide interval)."""
        rollup = self.store.rollup
        now = datetime.now(timezone.utc)
        since = now - window
        size = bucket.total_seconds()
        found: dict[Any, Totals] = {}
        live_since = since
        first, end = rollup.span(since, now)
        # Whole hours only: a bucket narrower than an hour cannot be read from roll-ups.
        rolled = rollup.rolled(conn, first, end) if size % 3600 == 0 and end > first else None
        if rolled is not None:
            if func is None and key == "func":
                for name, totals in _closed_per_function(self.store, conn, first, end).items():
                    found[name] = totals.copy()
            else:
                self._closed(conn, first, end, func, size, found, rolled)
            live_since = end
        self._live(conn, live_since, func, key, size, found)
        if key == "func":
            return found
        return {datetime.fromtimestamp(i * size, timezone.utc): v for i, v in found.items()}

    def _closed(
        self,
        conn: Connection,
        first: datetime,
        end: datetime,
        func: str | None,
        size: float,
        found: dict[Any, Totals],
        rolled: tuple[tuple[datetime, int], ...],
    ) -> None:
        """Add the roll-ups of ``func`` in ``[first, end)`` to ``found``, per bucket index.

        The decoded roll-ups of a (function, span, bucket) are kept per process, keyed by
        the hours' roll-up totals (``rolled``) as `_closed_per_function` keys its own: a
        span is read again only when an hour was added or rolled up anew.
        """
        h = self.store.hourly
        signature = ("func", func, first, end, size, rolled)
        with _LOCK:
            cached: dict[Any, Totals] | None = _SPANS.setdefault(self.store, {}).get(signature)
        if cached is None:
            cached = {}
            stmt = sa.select(
                h.c.hour, h.c.status, h.c.n, h.c.run_hist, h.c.wait_hist, h.c.last_ended
            ).where(h.c.hour >= first, h.c.hour < end, h.c.func == func)
            for row in conn.execute(stmt):
                hour = _utc(row.hour) or first
                bucket = cached.setdefault(int(hour.timestamp() // size), Totals())
                run, wait = histogram.decode(row.run_hist), histogram.decode(row.wait_hist)
                bucket.add(row.status, row.n, run, wait)
                bucket.seen(row.last_ended)
            _keep_span(self.store, signature, cached)
        for index, bucket in cached.items():
            found[index] = bucket.copy()

    def _live(
        self,
        conn: Connection,
        since: datetime,
        func: str | None,
        key: str,
        size: float,
        found: dict[Any, Totals],
    ) -> None:
        """Add the attempts that ended since ``since`` (the open hours) to ``found``."""
        t = self.store.table
        # The end time as the driver gives it (text in SQLite): parsing thousands of them
        # into datetimes cost more than the rest of the loop; only each key's latest is.
        ended_raw = sa.type_coerce(t.c.ended_at, sa.String)
        bucket = epoch_bucket(conn, t.c.ended_at, size) if key != "func" else None
        grouping: Any = bucket.label("bucket") if bucket is not None else ended_raw
        live = sa.select(
            unindexed(t.c.func), t.c.status, t.c.run_seconds, t.c.wait_seconds, grouping,
            ended_raw,
        ).where(t.c.ended_at >= since, unindexed(t.c.status).in_(COUNTED))  # fmt: skip
        if func is not None:
            live = live.where(unindexed(t.c.func) == func)
        bounds, bisect_left = histogram.BOUNDS, bisect.bisect_left
        latest: dict[Any, Any] = {}
        # A plain loop: this is the one per-row cost of a page (a few thousand rows).
        for name, status, run, wait, group, ended in conn.execute(live):
            if key == "func":
                index = name or "?"
            elif bucket is not None:
                index = int(group)
            else:
                index = int(_as_utc(ended).timestamp() // size)
            totals = found.get(index)
            if totals is None:
                totals = found[index] = Totals()
            totals.outcomes[status] += 1
            if run is not None:
                totals.run[bisect_left(bounds, run)] += 1
            if wait is not None:
                totals.wait[bisect_left(bounds, wait)] += 1
            seen = latest.get(index)
            if seen is None or ended > seen:
                latest[index] = ended
        for index, ended in latest.items():
            found[index].seen(_as_utc(ended))

    def functions(self, window: timedelta) -> list[dict[str, Any]]:
        """Every function with attempts that ended within ``window``, most failures first."""
        with self.store.engine(self.app).connect() as conn:
            per_func = self._gather(conn, window, timedelta(hours=1), None, "func")
        rows = [{"func": name, **totals.summary()} for name, totals in per_func.items()]
        rows = [row for row in rows if row["runs"]]
        return sorted(rows, key=lambda r: (-r["failed"], -r["runs"], r["func"]))

    def detail(self, func: str, window: timedelta, bucket: timedelta) -> dict[str, Any]:
        """One function over ``window``: its summary and a series per ``bucket``, oldest first."""
        with self.store.engine(self.app).connect() as conn:
            per_bucket = self._gather(conn, window, bucket, func, "bucket")
        overall = Totals()
        for totals in per_bucket.values():
            overall.merge(totals)
        size = bucket.total_seconds()
        now = datetime.now(timezone.utc)
        first = int((now - window).timestamp() // size)
        series = []
        for index in range(first, int(now.timestamp() // size) + 1):
            at = datetime.fromtimestamp(index * size, timezone.utc)
            summary = per_bucket.get(at, Totals()).summary()
            series.append({"at": at, **summary})
        return {"func": func, **overall.summary(), "series": series}

    def failure_groups(self, func: str, window: timedelta) -> list[dict[str, Any]]:
        """Recent failed attempts of ``func`` grouped by exception type and message.

        Reads the `FAILURE_SAMPLE` failed attempts of the window that ended last (one range
        of the partial index on failures), so the counts are of those; each group has its
        latest job.
        """
        t = self.store.table
        since = datetime.now(timezone.utc) - window
        stmt = (
            sa.select(t.c.job_id, t.c.exc_type, t.c.exc_message, t.c.ended_at)
            .where(
                t.c.func == func,
                # literally as the partial index says it (a bound parameter would not let
                # SQLite see that the index covers the query)
                sa.text(FAILED_WHERE),
                t.c.ended_at >= since,
            )
            .order_by(t.c.ended_at.desc())
            .limit(FAILURE_SAMPLE)
        )
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        with self.store.engine(self.app).connect() as conn:
            for row in conn.execute(stmt):
                exc_type = row.exc_type or "?"
                message = (row.exc_message or "").strip().splitlines()
                first_line = message[0][:300] if message else ""
                group = groups.get((exc_type, first_line))
                if group is None:
                    group = groups[(exc_type, first_line)] = {
                        "exc_type": exc_type,
                        "message": first_line,
                        "count": 0,
                        "last_seen": _utc(row.ended_at),
                        "last_job_id": row.job_id,
                    }
                group["count"] += 1
        return sorted(groups.values(), key=lambda g: (-g["count"], g["exc_type"], g["message"]))

    def seen(self, func: str) -> bool:
        """Whether the history holds any attempt of ``func`` (through the function's index)."""
        t = self.store.table
        with self.store.engine(self.app).connect() as conn:
            return (
                conn.execute(sa.select(t.c.id).where(t.c.func == func).limit(1)).first() is not None
            )

    def resolve(self, bare: str) -> list[str]:
        """The dotted names of the functions called ``bare`` in any module (at most two)."""
        t = self.store.table
        pattern = contains("." + bare)[:-1]  # ends with ".bare"
        stmt = (
            sa.select(t.c.func)
            .where(t.c.func.like(pattern, escape="\\"))
            .group_by(t.c.func)
            .limit(2)
        )
        with self.store.engine(self.app).connect() as conn:
            return [row.func for row in conn.execute(stmt)]

    def failure_rate(self, window: timedelta) -> dict[str, tuple[int, int]]:
        """Per function, (failed, runs) of the attempts that ended within ``window`` (live)."""
        t = self.store.table
        since = datetime.now(timezone.utc) - window
        stmt = (
            sa.select(unindexed(t.c.func).label("func"), t.c.status, sa.func.count().label("n"))
            .where(t.c.ended_at >= since, unindexed(t.c.status).in_(COUNTED))
            .group_by(unindexed(t.c.func), t.c.status)
        )
        found: dict[str, list[int]] = {}
        with self.store.engine(self.app).connect() as conn:
            for row in conn.execute(stmt):
                counts = found.setdefault(row.func or "?", [0, 0])
                counts[1] += row.n
                if row.status in FAILED:
                    counts[0] += row.n
        return {name: (failed, runs) for name, (failed, runs) in found.items()}


# -- the closed hours of every function, kept in memory ----------------------------------

#: Per history store: each closed hour's totals per function, with the hour's roll-up total
#: (an hour rolled up again after a late write has another total, and is read again).
_HOURS: weakref.WeakKeyDictionary[HistoryStore, dict[datetime, tuple[int, dict[str, Totals]]]]
_HOURS = weakref.WeakKeyDictionary()
#: Per history store: the sums of the last few spans asked for, by span and hour totals.
_SPANS: weakref.WeakKeyDictionary[HistoryStore, dict[Any, dict[str, Totals]]]
_SPANS = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
#: Hours and spans kept per store (a little more than 30 days; a few ranges).
KEEP_HOURS, KEEP_SPANS = 800, 32


def _keep_span(store: HistoryStore, signature: Any, value: dict[Any, Totals]) -> None:
    """Keep ``value`` as the sums of ``signature``, dropping the oldest past `KEEP_SPANS`."""
    with _LOCK:
        spans = _SPANS.setdefault(store, {})
        spans[signature] = value
        for old in list(spans)[: max(0, len(spans) - KEEP_SPANS)]:
            del spans[old]


def _closed_per_function(
    store: HistoryStore, conn: Connection, first: datetime, end: datetime
) -> dict[str, Totals]:
    """Every function's totals over the rolled hours ``[first, end)``.

    A roll-up row never changes once written (a late write deletes its hour, which is
    rolled again with another total), so decoded hours are kept per process: a 30-day
    Functions page reads only the hours' totals, and new or re-rolled hours.
    """
    h = store.hourly
    totals = {
        _utc(row.hour) or first: row.n
        for row in conn.execute(
            sa.select(h.c.hour, h.c.n).where(h.c.func == "*", h.c.hour >= first, h.c.hour < end)
        )
    }
    signature = (first, end, tuple(sorted(totals.items())))
    with _LOCK:
        hours = _HOURS.setdefault(store, {})
        spans = _SPANS.setdefault(store, {})
        cached = spans.get(signature)
        if cached is not None:
            return cached
        stale = [hour for hour, n in totals.items() if hours.get(hour, (None,))[0] != n]
    fresh: dict[datetime, dict[str, Totals]] = {hour: {} for hour in stale}
    for start in range(0, len(stale), 500):
        stmt = sa.select(
            h.c.hour, h.c.func, h.c.status, h.c.n, h.c.run_hist, h.c.wait_hist, h.c.last_ended
        ).where(h.c.hour.in_(stale[start : start + 500]), h.c.func != "*")
        for row in conn.execute(stmt):
            per_func = fresh[_utc(row.hour) or first]
            found = per_func.setdefault(row.func, Totals())
            found.add(
                row.status, row.n, histogram.decode(row.run_hist), histogram.decode(row.wait_hist)
            )
            found.seen(row.last_ended)
    summed: dict[str, Totals] = {}
    with _LOCK:
        for hour in stale:
            hours[hour] = (totals[hour], fresh[hour])
        for hour in totals:
            for name, found in hours[hour][1].items():
                summed.setdefault(name, Totals()).merge(found)
        for old in sorted(hours)[: max(0, len(hours) - KEEP_HOURS)]:
            del hours[old]
    _keep_span(store, signature, summed)
    return summed
