"""``flask jobs scheduler``: enqueue periodic jobs when due, exactly once per fire time.

Any number of scheduler processes may run; one leads. The leader holds a
lock in Redis (a random token with a TTL, renewed every second; a leader that
cannot renew stops firing at once), and every fire is claimed with a
set-if-absent key for (schedule, fire time), so even two processes that both
think they lead cannot enqueue the same run twice. A standby takes over
within the lock TTL (10 s) of the leader's death.

All state lives in Redis (last fire time, last job, next fire time, paused,
missed runs), so a scheduler restarted on another host carries on where the
last one stopped: ``every`` schedules stay anchored on their last run, runs
missed while no scheduler ran are enqueued if they are within
``misfire_grace`` (once, when ``coalesce``), and recorded as missed if not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from rq.utils import now as utcnow

from ..keys import SCHEDULER_LEADER_KEY as LEADER_KEY
from ..keys import SCHEDULER_PROCESSES_KEY, schedule_fired_key, schedule_key
from .control import enqueue_schedule, stamp, stamped
from .declarations import app_schedules

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState
    from .declarations import Schedule

__all__ = ["PROCESS_TTL", "Scheduler"]

log = logging.getLogger("flask_jobs.scheduler")

LEADER_TTL_MS = 10_000
#: A scheduler process whose last tick is older than this many seconds is gone.
PROCESS_TTL = 30
#: How long a fire-time claim outlives its schedule's misfire_grace. Past the grace
#: a fire time can only be recorded as missed, never enqueued, so the claim has done
#: its work; the margin covers clocks that disagree between scheduler hosts. (Claims
#: kept 7 days held ~600,000 keys for an every-second schedule.)
FIRED_MARGIN = 3600

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Scheduler:
    """The scheduler loop of one process; ``run()`` until ``stop()``."""

    def __init__(self, app: Flask, state: JobsState, *, tick: float = 1.0) -> None:
        self.app = app
        self.state = state
        self.tick = tick
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.leading = False
        self._stop = threading.Event()
        self._next_due: datetime | None = None
        self.fired = 0

    def stop(self) -> None:
        """Ask the loop to end (it releases the lock if it leads)."""
        self._stop.set()

    def run(self) -> None:
        """Lead or stand by until stopped; Redis outages are waited out with backoff."""
        delay = 0.5
        count = len(app_schedules(self.state))
        log.info("scheduler %s started with %d schedule(s)", self.token, count)
        while not self._stop.is_set():
            try:
                self._tick()
                if self._lead():
                    with self.app.app_context():
                        self.fire_due()
                    delay = 0.5
                    self._stop.wait(self._sleep_for())
                else:
                    self._stop.wait(1.0)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self.leading:
                    log.warning("scheduler %s: lost Redis, stops leading", self.token)
                self.leading = False
                log.warning("scheduler: Redis unavailable (%s); retrying in %.0fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
        self._release()
        with contextlib.suppress(redis.RedisError):  # else it ages out of the set
            self.state.connection.zrem(SCHEDULER_PROCESSES_KEY, self.token)
        log.info("scheduler %s stopped", self.token)

    def _tick(self) -> None:
        # The heartbeat the dashboard's workers page reads: this process, and when it
        # last went round its loop; processes gone longer than PROCESS_TTL are dropped.
        moment = time.time()
        with self.state.connection.pipeline(transaction=False) as pipe:
            pipe.zadd(SCHEDULER_PROCESSES_KEY, {self.token: moment})
            pipe.zremrangebyscore(SCHEDULER_PROCESSES_KEY, 0, moment - PROCESS_TTL)
            pipe.execute()

    def _sleep_for(self) -> float:
        # Wake for the next due run (lateness is the point), and at least every `tick`
        # seconds to renew the lock and see schedules changed from elsewhere.
        if self._next_due is None:
            return self.tick
        until = (self._next_due - utcnow()).total_seconds()
        return max(0.001, min(self.tick, until))

    def _lead(self) -> bool:
        conn = self.state.connection
        if self.leading:
            if conn.eval(_RENEW, 1, LEADER_KEY, self.token, LEADER_TTL_MS):
                return True
            self.leading = False
            log.warning("scheduler %s: lost the leader lock; standing by", self.token)
            return False
        if conn.set(LEADER_KEY, self.token, nx=True, px=LEADER_TTL_MS):
            self.leading = True
            log.info("scheduler %s: now leading", self.token)
            return True
        return False

    def _release(self) -> None:
        if not self.leading:
            return
        with contextlib.suppress(redis.RedisError):  # else the lock expires on its own
            self.state.connection.eval(_RELEASE, 1, LEADER_KEY, self.token)
        self.leading = False

    def fire_due(self, now: datetime | None = None) -> int:
        """Enqueue every run that is due now; return how many were enqueued."""
        now = now or utcnow()
        fired = 0
        self._next_due = None
        for schedule in app_schedules(self.state).values():
            if not schedule.enabled:
                continue
            try:
                fired += self._fire_schedule(schedule, now)
            except (redis.ConnectionError, redis.TimeoutError):
                raise
            except Exception:
                log.exception("scheduler: schedule %r failed to fire", schedule.name)
        self.fired += fired
        return fired

    def _fire_schedule(self, schedule: Schedule, now: datetime) -> int:
        conn: Any = self.state.connection
        key = schedule_key(schedule.name)
        stored = {k.decode(): v.decode() for k, v in conn.hgetall(key).items()}
        if stored.get("paused") == "1":
            return 0
        last = stamped(stored.get("last_fire"))
        due = stamped(stored.get("next_fire")) or schedule.next_fire(last, now)
        if last is None and due is None:
            return 0
        runnable: list[datetime] = []
        missed: list[datetime] = []
        while due is not None and due <= now:
            late = (now - due).total_seconds()
            (runnable if late <= schedule.misfire_grace else missed).append(due)
            last = due
            due = schedule.next_fire(due, now)
        if due is not None and (self._next_due is None or due < self._next_due):
            self._next_due = due
        if not runnable and not missed:
            if stored.get("next_fire") is None and due is not None:
                conn.hset(key, "next_fire", stamp(due))
            return 0
        if missed:
            self._record_missed(schedule, missed)
        if schedule.coalesce and len(runnable) > 1:
            log.info(
                "scheduler: %s had %d runs due; coalesced into one", schedule.name, len(runnable)
            )
            runnable = runnable[-1:]
        fired = 0
        last_job = stored.get("last_job_id", "")
        for fire_time in runnable:
            if not self._still_leading():
                return fired
            # Claim this fire time: only one process, leader or not, may enqueue it. The
            # claim is set with the run, in one Lua call, so a process killed in between
            # leaves neither a claimed fire time without its run nor a run unclaimed.
            claim = schedule_fired_key(schedule.name, int(fire_time.timestamp() * 1000))
            ttl = int(schedule.misfire_grace) + FIRED_MARGIN
            delay = random.uniform(0, schedule.jitter) if schedule.jitter else 0.0
            job_id, new = enqueue_schedule(
                self.state,
                schedule,
                origin=f"schedule:{schedule.name}",
                delay=delay,
                claim=(claim, ttl),
            )
            if job_id is None:  # another process had it
                continue
            last_job = job_id
            if not new:  # a unique schedule whose previous run has not finished
                with conn.pipeline() as pipe:
                    pipe.hincrby(key, "skipped", 1)
                    pipe.hset(key, "last_skipped", stamp(fire_time))
                    pipe.execute()
                log.info(
                    "scheduler: skipped %s at %s: its previous run %s is still queued or running",
                    schedule.name,
                    fire_time.isoformat(),
                    last_job,
                )
                continue
            fired += 1
            log.info(
                "scheduler: enqueued %s for %s (due %s)",
                last_job,
                schedule.name,
                fire_time.isoformat(),
            )
        mapping = {"last_fire": stamp(last), "last_job_id": last_job} if last else {}
        with conn.pipeline() as pipe:
            if mapping:
                pipe.hset(key, mapping=mapping)
            if due is not None:
                pipe.hset(key, "next_fire", stamp(due))
            else:
                pipe.hdel(key, "next_fire")
            pipe.execute()
        return fired

    def _still_leading(self) -> bool:
        token: Any = self.state.connection.get(LEADER_KEY)
        return token is not None and token.decode() == self.token

    def _record_missed(self, schedule: Schedule, missed: list[datetime]) -> None:
        conn: Any = self.state.connection
        key = schedule_key(schedule.name)
        log.warning(
            "scheduler: %s missed %d run(s) from %s to %s (older than misfire_grace=%ss); "
            "not enqueued",
            schedule.name,
            len(missed),
            missed[0].isoformat(),
            missed[-1].isoformat(),
            f"{schedule.misfire_grace:g}",
        )
        with conn.pipeline() as pipe:
            pipe.hincrby(key, "missed", len(missed))
            pipe.hset(key, "last_missed", stamp(missed[-1]))
            if self.state.history_enabled:
                for fire_time in missed[-100:]:  # a long outage is summed up, not listed
                    event = self.state.events.missed_run(
                        schedule=schedule.name,
                        func=schedule.job.replace(":", "."),
                        queue=schedule.queue or self.state.config.queues[0],
                        fire_time=fire_time,
                    )
                    pipe.xadd(self.state.history_settings.stream, event)
            pipe.execute()
