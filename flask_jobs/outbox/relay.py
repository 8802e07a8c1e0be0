"""The outbox relay: moves committed outbox rows to Redis, then deletes them.

One batch is one database transaction: select the oldest rows (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so several relays share the work; other databases
run one relay at a time, under a lease in Redis), push them in one pipeline,
delete them, commit. Each push is one Lua call (`flask_jobs.jobs.store`) that does nothing when
the job (or the mark of an earlier push) already exists, so a batch relayed twice
(a relay killed after the push and before its commit) makes each job once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis
import sqlalchemy as sa

from ..forking import start_companion, stop_companion
from ..jobs.store import STORE_SCRIPT, run_pipeline, store_job, stored_as
from ..keys import OUTBOX_RELAY_LOCK_KEY, outbox_sent_key
from .table import OutboxRow

if TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from ..state import JobsState

__all__ = [
    "OutboxRelay",
    "OutboxStatus",
    "outbox_status",
    "start_relay_process",
    "stop_relay_process",
]

log = logging.getLogger("flask_jobs.outbox")

#: How long the mark of a pushed job outlives the push (it is deleted after the commit).
SENT_TTL = 86_400
#: The lease of the one relay of a database without SKIP LOCKED, renewed every poll.
LEASE_MS = 10_000

# KEYS: 1 the lease. ARGV: 1 our token, 2 lease in ms. 1 when we hold it (now or already).
LEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


@dataclass(frozen=True)
class OutboxStatus:
    """What waits in the outbox."""

    waiting: int
    oldest: datetime | None


def outbox_status(state: JobsState) -> OutboxStatus:
    """How many rows wait in the outbox table, and since when (in an app context)."""
    db, table = _db_and_table(state)
    with db.engine.connect() as conn:
        count, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(table.c.created_at))
        ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)  # SQLite keeps no time zone
    return OutboxStatus(int(count), oldest)


def _db_and_table(state: JobsState) -> tuple[SQLAlchemy, sa.Table]:
    if state.db is None or state.outbox_table is None:
        raise RuntimeError("the outbox needs a database: Jobs(app, db=db)")
    return state.db, state.outbox_table


class OutboxRelay:
    """Relays the outbox of ``app`` until stopped."""

    def __init__(self, app: Flask, state: JobsState, *, name: str = "relay") -> None:
        self.app = app
        self.state = state
        self.db, self.table = _db_and_table(state)
        self.name = name
        self.batch = state.config.outbox_batch
        self.poll = state.config.outbox_poll_ms / 1000
        self.token = f"{name}:{uuid.uuid4().hex}"
        self.relayed = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask `run` to end after the batch in hand."""
        self._stop.set()

    def run(self, parent: int | None = None) -> None:
        """Relay batches until stopped (or, with ``parent``, until that process is gone)."""
        delay = 0.5
        while not self._stop.is_set():
            if parent is not None and os.getppid() != parent:
                break
            try:
                moved = self.relay_once()
                delay = 0.5
                if moved < self.batch:
                    self._stop.wait(self.poll)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("outbox relay: Redis unavailable (%s); retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("outbox relay: unexpected error; retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def relay_once(self) -> int:
        """Move one batch of committed rows to Redis; how many rows it moved."""
        table = self.table
        with self.app.app_context():
            engine = self.db.engine
            shared = engine.dialect.name == "postgresql"
            if not shared and not self._hold_lease():
                return 0
            query = sa.select(table.c.id, table.c.job_id, table.c.queue, table.c.payload)
            query = query.order_by(table.c.id).limit(self.batch)
            if shared:
                query = query.with_for_update(skip_locked=True)
            with engine.begin() as conn:
                rows = conn.execute(query).all()
                if not rows:
                    return 0
                self.push([OutboxRow.from_values(r.job_id, r.queue, r.payload) for r in rows])
                conn.execute(sa.delete(table).where(table.c.id.in_([r.id for r in rows])))
        # The rows are gone: their marks have done their work (else they expire on their own).
        with contextlib.suppress(redis.RedisError):
            self.state.connection.delete(*(outbox_sent_key(r.job_id) for r in rows))
        self.relayed += len(rows)
        return len(rows)

    def push(self, rows: list[OutboxRow]) -> int:
        """Put ``rows`` on their queues in one round trip; how many were new."""
        script = self.state.script(STORE_SCRIPT)
        stream = self.state.history_settings.stream

        def fill(pipe: Any) -> None:
            for row in rows:
                store_job(
                    script,
                    pipe,
                    row.job_id,
                    row.queue,
                    row.fields,
                    stream,
                    row.event,
                    run_at=row.run_at,
                    at_front=row.at_front,
                    mark_ttl=SENT_TTL,
                )

        results = run_pipeline(self.state.connection, fill, transaction=False)
        # A run whose unique key another job holds was not stored: not new.
        return sum(
            stored_as(result, row.job_id) == row.job_id
            for row, result in zip(rows, results, strict=True)
        )

    def _hold_lease(self) -> bool:
        lease = self.state.script(LEASE_SCRIPT)
        return bool(lease(keys=[OUTBOX_RELAY_LOCK_KEY], args=[self.token, LEASE_MS]))


def start_relay_process(app: Flask, state: JobsState, name: str) -> int:
    """Fork a process that relays the outbox until told to stop (SIGTERM) or orphaned.

    A process, as the history recorder is, so a worker that forks never
    inherits a thread inside a database driver.
    """
    return start_companion(
        app, lambda: OutboxRelay(app, state, name=f"{name}.relay"), "outbox relay"
    )


def stop_relay_process(pid: int, timeout: float = 10.0) -> None:
    """Ask the relay process to finish its batch and exit; kill it after ``timeout``."""
    stop_companion(pid, timeout)
