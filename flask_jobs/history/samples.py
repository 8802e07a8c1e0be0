"""Queue samples: each queue's depth and oldest job's wait, taken once a minute into SQL.

Redis holds only the present; a chart of how a queue grew overnight needs its
past. One recorder (whichever takes `QUEUE_SAMPLE_LOCK_KEY`) samples every
queue each minute into ``flask_jobs_queue_samples``, on the history's metadata
and retained like the history (``JOBS_HISTORY_RETENTION``). Each sample is
also folded into its hour's row (``span`` 3600: the hour's peak depth and
longest wait), so a chart of 30 days reads 720 rows a queue, not 43,200.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
import sqlalchemy as sa
from rq.utils import utcparse
from sqlalchemy.engine import Connection

from ..keys import QUEUE_NAME, RQ_QUEUE_PREFIX, RQ_QUEUES_KEY, job_key, queue_key
from .filters import epoch_bucket

__all__ = ["SAMPLES_TABLE", "QueueSamples", "sample_queues", "samples_table"]

SAMPLES_TABLE = "flask_jobs_queue_samples"
#: Ids tried at a queue's head for its oldest job (an id can outlive its job's hash).
HEAD = 5
#: The most points a chart asks for; longer ranges are gathered into fewer buckets.
MAX_POINTS = 240
MINUTE, HOUR = 60, 3600
#: Past this range a chart reads the hourly rows.
HOURLY_FROM = timedelta(days=2)


def samples_table(metadata: sa.MetaData) -> sa.Table:
    """The ``flask_jobs_queue_samples`` table on ``metadata`` (defined once, then reused)."""
    if SAMPLES_TABLE in metadata.tables:
        return metadata.tables[SAMPLES_TABLE]
    return sa.Table(
        SAMPLES_TABLE,
        metadata,
        # 60: one sample at minute ``at``; 3600: the peaks of the hour that starts at ``at``
        sa.Column("span", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("queue", sa.String(100), primary_key=True),
        sa.Column("depth", sa.Integer, nullable=False),
        # seconds the oldest waiting job has waited; NULL for an empty queue
        sa.Column("oldest_wait", sa.Float),
    )


def _names(conn: redis.Redis, configured: Iterable[str]) -> list[str]:
    names = list(configured)
    members: Any = conn.smembers(RQ_QUEUES_KEY)
    for raw in sorted(members):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        name = name.removeprefix(RQ_QUEUE_PREFIX)
        if name not in names and QUEUE_NAME.match(name):
            names.append(name)
    return names


def sample_queues(
    conn: redis.Redis, configured: Iterable[str], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Each queue now: ``queue``, ``depth`` and ``oldest_wait`` (seconds, None when empty)."""
    now = now or datetime.now(timezone.utc)
    names = _names(conn, configured)
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(queue_key(name))
            pipe.lrange(queue_key(name), 0, HEAD - 1)
        replies = pipe.execute()
    heads = [[job_id.decode() for job_id in replies[2 * i + 1]] for i in range(len(names))]
    with conn.pipeline(transaction=False) as pipe:
        for ids in heads:
            for job_id in ids:
                pipe.hget(job_key(job_id), "enqueued_at")
        stamps = iter(pipe.execute())
    rows = []
    for i, name in enumerate(names):
        oldest = None
        for stamp in [next(stamps) for _ in heads[i]]:
            if oldest is None and stamp:
                try:
                    oldest = utcparse(stamp.decode()).replace(tzinfo=timezone.utc)
                except ValueError:
                    continue
        depth = int(replies[2 * i])
        wait = max(0.0, (now - oldest).total_seconds()) if oldest and depth else None
        rows.append({"queue": name, "depth": depth, "oldest_wait": wait})
    return rows


class QueueSamples:
    """Writes, reads and purges the queue samples of one history database."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def write(self, conn: Connection, at: datetime, rows: list[dict[str, Any]]) -> int:
        """Store one sample of every queue, taken at minute ``at`` (a second sampler's is kept),
        and raise its hour's peaks to it."""
        if not rows:
            return 0
        t = self.table
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        # the larger of two: SQLite's max() of two arguments is that
        bigger = getattr(sa.func, "greatest" if postgres else "max")
        minute = at.replace(second=0, microsecond=0)
        hour = minute.replace(minute=0)
        conn.execute(
            insert(t).on_conflict_do_nothing(),
            [{"span": MINUTE, "at": minute, **row} for row in rows],
        )
        hourly = insert(t)
        new = hourly.excluded
        conn.execute(
            hourly.on_conflict_do_update(
                index_elements=["span", "at", "queue"],
                set_={
                    "depth": bigger(t.c.depth, new.depth),
                    "oldest_wait": sa.func.coalesce(
                        bigger(t.c.oldest_wait, new.oldest_wait), t.c.oldest_wait, new.oldest_wait
                    ),
                },
            ),
            [{"span": HOUR, "at": hour, **row} for row in rows],
        )
        conn.commit()
        return len(rows)

    def series(
        self, conn: Connection, window: timedelta, *, queue: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Per queue, its samples over ``window``, oldest first, in at most `MAX_POINTS` buckets.

        Each point has ``at``, ``depth`` (the bucket's peak) and ``oldest_wait`` (its longest).
        """
        t = self.table
        now = datetime.now(timezone.utc)
        span = HOUR if window >= HOURLY_FROM else MINUTE
        since = now - window - timedelta(seconds=span)
        size = max(float(span), window.total_seconds() / MAX_POINTS)
        where = [t.c.span == span, t.c.at >= since]
        if queue is not None:
            where.append(t.c.queue == queue)
        stmt = sa.select(t.c.at, t.c.queue, t.c.depth, t.c.oldest_wait).where(*where)
        index = epoch_bucket(conn, t.c.at, size)
        if index is not None:
            # Bucketed in SQL: a bucket's row, not every sample (a day is 1,440 a queue)
            grouped = (
                sa.select(
                    t.c.queue,
                    index.label("bucket"),
                    sa.func.max(t.c.depth).label("depth"),
                    sa.func.max(t.c.oldest_wait).label("oldest_wait"),
                )
                .where(*where)
                .group_by(t.c.queue, index)
            )
            found: dict[str, dict[int, dict[str, Any]]] = {}
            for row in conn.execute(grouped):
                found.setdefault(row.queue, {})[int(row.bucket)] = {
                    "at": datetime.fromtimestamp(int(row.bucket) * size, timezone.utc),
                    "depth": row.depth,
                    "oldest_wait": row.oldest_wait,
                }
            return {name: [f[i] for i in sorted(f)] for name, f in sorted(found.items())}
        buckets: dict[str, dict[int, dict[str, Any]]] = {}
        for row in conn.execute(stmt.order_by(t.c.at)):
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
            index = int(at.timestamp() // size)
            slot = buckets.setdefault(row.queue, {}).get(index)
            if slot is None:
                buckets[row.queue][index] = {
                    "at": datetime.fromtimestamp(index * size, timezone.utc),
                    "depth": row.depth,
                    "oldest_wait": row.oldest_wait,
                }
                continue
            slot["depth"] = max(slot["depth"], row.depth)
            if row.oldest_wait is not None:
                slot["oldest_wait"] = max(slot["oldest_wait"] or 0.0, row.oldest_wait)
        return {name: [found[i] for i in sorted(found)] for name, found in sorted(buckets.items())}

    def purge(self, conn: Connection, older_than: timedelta) -> int:
        """Delete samples older than ``older_than``; how many."""
        cutoff = datetime.now(timezone.utc) - older_than
        done = conn.execute(sa.delete(self.table).where(self.table.c.at < cutoff))
        conn.commit()
        return int(done.rowcount or 0)
