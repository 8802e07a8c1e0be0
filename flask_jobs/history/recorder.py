"""The recorder: a process beside each worker that moves history events from Redis into SQL.

Recorders of all workers form one consumer group on the events stream. An
event is acknowledged (and deleted) only once its row is committed, so a
database outage or a crashed recorder loses nothing: the events wait in the
stream, and pending events of a dead recorder are claimed by a live one.

Beside that, each recorder offers to do the history's chores, and one at a
time does each (a lock in Redis): roll up closed hours, purge rows past the
retention, sample every queue's depth and oldest wait once a minute
(`samples`), and evaluate the alerts (`alerts`). The alerts run here rather
than in the scheduler because every deployment runs workers, and so
recorders, while many run no scheduler; and a recorder already holds the
history database the failure-rate check reads. A dashboard banner says when
no recorder has evaluated them for a while.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import redis

from ..forking import start_companion, stop_companion
from ..keys import ALERTS_LOCK_KEY, QUEUE_SAMPLE_LOCK_KEY, RETENTION_LOCK_KEY, ROLLUP_LOCK_KEY
from ..keys import RECORDER_GROUP as GROUP
from .alerts import EVALUATE_EVERY, evaluate
from .events import unpacked
from .samples import sample_queues

if TYPE_CHECKING:
    from flask import Flask

    from ..config import JobsConfig
    from .events import HistorySettings
    from .store import HistoryStore

__all__ = ["HistoryRecorder", "RecorderSource", "start_recorder_process", "stop_recorder_process"]

log = logging.getLogger("flask_jobs.recorder")

BATCH = 500
CLAIM_IDLE_MS = 30_000


class RecorderSource(Protocol):
    """Where a recorder reads events from and writes rows to (an app's ``JobsState``)."""

    @property
    def connection(self) -> redis.Redis: ...

    config: JobsConfig
    history: HistoryStore
    history_enabled: bool
    history_settings: HistorySettings
    history_retention: timedelta | None


class HistoryRecorder:
    """Reads the history stream as consumer ``name`` and writes rows until stopped."""

    def __init__(
        self, app: Flask, state: RecorderSource, name: str, *, block_ms: int = 200
    ) -> None:
        self.app = app
        self.state = state
        self.name = name
        self.block_ms = block_ms
        self.stream = state.history_settings.stream
        self._stop = threading.Event()
        self._behind_logged = 0.0
        self._failing = False
        self._orphaned = False
        self._last_maintenance = 0.0
        self.written = 0
        #: How long another recorder's events must wait unacknowledged before we take them.
        self.claim_idle_ms = CLAIM_IDLE_MS
        #: How long a stopping recorder keeps trying to write what is left.
        self.shutdown_grace = 10.0
        #: Pause after a partial batch, so that commits are few and large (one per
        #: interval under load) rather than one per event; bounds freshness too.
        self.flush_interval = 0.25

    # -- lifecycle ---------------------------------------------------------------

    def stop(self) -> None:
        """Ask `run` to write what is waiting (for up to ``shutdown_grace`` seconds) and end."""
        self._stop.set()

    def run(self, parent: int | None = None) -> None:
        """Loop: maintenance, read a batch, write it, acknowledge it; back off on errors.

        With ``parent``, also stop when that process is gone.
        """
        delay = 0.5
        deadline: float | None = None
        while True:
            if parent is not None and os.getppid() != parent and not self._orphaned:
                # Our worker died: write what we hold, take nothing new, and go.
                self._orphaned = True
                self.shutdown_grace = min(self.shutdown_grace, 2.0)
                self._stop.set()
            stopping = self._stop.is_set()
            if stopping and deadline is None:
                deadline = time.monotonic() + self.shutdown_grace
            if deadline is not None and time.monotonic() > deadline:
                log.warning(
                    "history recorder: stopping with events not yet written; another worker's "
                    "recorder will write them"
                )
                break
            try:
                self._ensure_group()
                self._maintenance()
                written = self.drain_once(block=not stopping)
                delay = 0.5
                if stopping and not written and not self._failing:
                    break
                if 0 < written < BATCH and not stopping:
                    self._stop.wait(self.flush_interval)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning(
                    "history recorder: Redis unavailable (%s); retrying in %.0fs", exc, delay
                )
                self._pause(stopping, delay)
                delay = min(delay * 2, 30.0)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.exception("history recorder: unexpected error; retrying in %.0fs", delay)
                # the stream (and our group) were deleted, e.g. by a FLUSHDB: make them again
                self._group_ready = False
                self._pause(stopping, min(delay, 0.1))
            except Exception:
                log.exception("history recorder: unexpected error; retrying in %.0fs", delay)
                self._pause(stopping, delay)
                delay = min(delay * 2, 30.0)
        self._leave_group()

    def _pause(self, stopping: bool, seconds: float) -> None:
        if stopping:
            time.sleep(min(seconds, 1.0))  # the stop event is set: wait() would not wait
        else:
            self._stop.wait(seconds)

    # -- one step ----------------------------------------------------------------

    def drain_once(self, *, block: bool = True) -> int:
        """Write one batch: this consumer's own pending events first, then new ones."""
        conn: Any = self.state.connection  # RESP2 replies: lists (redis-py types RESP3's too)
        pending = conn.xreadgroup(GROUP, self.name, {self.stream: "0"}, count=BATCH)
        entries = pending[0][1] if pending and pending[0][1] else []
        if not entries and not self._orphaned:
            fresh = conn.xreadgroup(
                GROUP,
                self.name,
                {self.stream: ">"},
                count=BATCH,
                block=self.block_ms if block else None,
            )
            entries = fresh[0][1] if fresh else []
        if not entries:
            return 0
        return self._write(entries)

    def _write(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        events = [unpacked(fields) for _, fields in entries if fields]
        ids = [entry_id for entry_id, _ in entries]
        try:
            rows = self.state.history.write(self.app, events)
        except Exception as exc:
            self._failing = True
            self._log_behind(exc)
            time.sleep(1.0)
            return 0
        self._failing = False
        if self._behind_logged:
            log.warning("history recorder: database is back; history caught up")
            self._behind_logged = 0.0
        with self.state.connection.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
        self.written += rows
        return len(ids)

    def _log_behind(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._behind_logged < 10:
            return
        self._behind_logged = now
        try:
            waiting = self.state.connection.xlen(self.stream)
        except redis.RedisError:
            waiting = -1
        log.warning(
            "history recorder: cannot write to the history database (%s: %s); %s event(s) wait "
            "in Redis and will be written when it is back",
            type(exc).__name__,
            str(exc).splitlines()[0][:300] if str(exc) else "",
            waiting if waiting >= 0 else "some",
        )

    # -- group and bounds ---------------------------------------------------------

    def _ensure_group(self) -> None:
        if getattr(self, "_group_ready", False):
            return
        if self.state.history.owns_database:
            try:
                self.state.history.create(self.app)  # our own database: nobody else migrates it
            except Exception as exc:
                self._log_behind(exc)
        try:
            self.state.connection.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _maintenance(self) -> None:
        now = time.monotonic()
        if now - self._last_maintenance < 5:
            return
        self._last_maintenance = now
        conn = self.state.connection
        # Events a dead recorder read but never committed: take them over.
        claimed: Any = conn.xautoclaim(
            self.stream, GROUP, self.name, min_idle_time=self.claim_idle_ms, count=BATCH
        )
        if claimed and claimed[1]:
            log.info(
                "history recorder: took over %d event(s) of a stopped recorder", len(claimed[1])
            )
        # The stream's bound: past it, the oldest events go, and the log says how many.
        maxlen = self.state.history_settings.stream_maxlen
        if conn.xlen(self.stream) > maxlen:
            dropped = conn.xtrim(self.stream, maxlen=maxlen, approximate=False)
            if dropped:
                log.error(
                    "history recorder: the events stream reached JOBS_HISTORY_STREAM_MAXLEN=%d; "
                    "dropped the %d oldest event(s), whose history rows will be incomplete",
                    maxlen,
                    dropped,
                )
        self._retention()
        self._roll_up()
        self._sample_and_alert()

    def _roll_up(self) -> None:
        # Closed hours are counted once, ahead of the dashboard's week-long charts.
        if self.state.connection.set(ROLLUP_LOCK_KEY, self.name, nx=True, ex=60):
            try:
                self.state.history.roll_up(self.app)
            except Exception as exc:
                log.warning("history: could not roll up closed hours (%s); will retry", exc)

    def _sample_and_alert(self) -> None:
        # Whoever takes a lock does a chore, so a fleet samples once a minute and
        # evaluates the alerts once an interval, not once per recorder.
        conn = self.state.connection
        sample = bool(conn.set(QUEUE_SAMPLE_LOCK_KEY, self.name, nx=True, ex=60))
        judge = bool(conn.set(ALERTS_LOCK_KEY, self.name, nx=True, ex=EVALUATE_EVERY))
        if not sample and not judge:
            return
        now = datetime.now(timezone.utc)
        samples = sample_queues(conn, self.state.config.queues, now)
        if sample:
            try:
                with self.state.history.engine(self.app).connect() as db:
                    self.state.history.samples.write(db, now, samples)
            except Exception as exc:
                log.warning(
                    "history: could not store queue samples (%s); trying next minute (`flask jobs "
                    "history init` or your migrations create their table)",
                    exc,
                )
        if judge:
            try:
                evaluate(self.app, self.state, samples=samples, now=now)
            except redis.RedisError:
                raise
            except Exception:
                log.exception("alerts: evaluation failed; trying again next interval")

    def _retention(self) -> None:
        retention = self.state.history_retention
        if retention is None:
            return
        conn = self.state.connection
        # One recorder an hour purges, whichever gets the key.
        if conn.set(RETENTION_LOCK_KEY, self.name, nx=True, ex=3600):
            try:
                deleted = self.state.history.purge(self.app, retention)
            except Exception as exc:
                log.warning("history: could not purge old rows (%s); will try in an hour", exc)
                return
            if deleted:
                log.info("history: purged %d row(s) older than %s", deleted, retention)

    def _leave_group(self) -> None:
        try:
            conn = self.state.connection
            pending = conn.xpending(self.stream, GROUP)
            mine = {c["name"]: c["pending"] for c in pending.get("consumers", [])}
            if not mine.get(self.name.encode(), mine.get(self.name, 0)):
                conn.xgroup_delconsumer(self.stream, GROUP, self.name)
        except redis.RedisError:
            pass  # the consumer entry is harmless; a live recorder claims what it held


def start_recorder_process(app: Flask, state: RecorderSource, name: str) -> int:
    """Fork a process that runs a recorder until told to stop (SIGTERM) or orphaned."""
    # The engine made before the fork: its dialect, pool class and caches are then built
    # once and shared with the recorder's process, not copied into it as they are made.
    state.history.engine(app)

    def make() -> HistoryRecorder:
        state.history.dispose()
        return HistoryRecorder(app, state, name=f"{name}.recorder")

    return start_companion(app, make, "history recorder")


def stop_recorder_process(pid: int, timeout: float = 20.0) -> None:
    """Ask the recorder process to write what is left and exit; kill it after ``timeout``."""
    stop_companion(pid, timeout)
