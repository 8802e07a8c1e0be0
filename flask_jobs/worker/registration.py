"""A worker's entry in RQ's worker registry: RQ's hash and sets (what ``rq info`` and
rq-dashboard read), our fields beside RQ's, the heartbeat, and the death notice."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rq.utils import now, utcformat
from rq.version import VERSION
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

from ..keys import (
    WORKER_MODE_FIELD,
    WORKER_RSS_FIELD,
    WORKER_SLOTS_FIELD,
    WORKER_SUPERVISOR_FIELD,
    worker_executions_key,
    worker_key,
)
from .memory import resident_mb

if TYPE_CHECKING:
    import redis

__all__ = ["HEARTBEAT_SECONDS", "WORKER_TTL", "Registration"]

log = logging.getLogger("flask_jobs.worker")

#: RQ's worker TTL: a worker that sends no heartbeat for this long (plus 60 s) is gone.
WORKER_TTL = 420
#: How often a worker that runs jobs back to back (and so never waits) writes a heartbeat.
HEARTBEAT_SECONDS = 10.0


@dataclass
class Registration:
    """One worker's registration in Redis (RQ's ``rq:worker:<name>`` hash and sets)."""

    connection: redis.Redis
    name: str
    queues: list[str]
    mode: str
    slots: int
    supervisor: str | None = None
    key: str = field(init=False)
    #: When (``time.monotonic()``) the last heartbeat was written.
    beat_at: float = field(init=False, default=float("-inf"))
    #: Until when (``time.monotonic()``) the worker's hash lives, as last set.
    lives_until: float = field(init=False, default=float("-inf"))
    #: Successes (and their seconds) not yet added to RQ's counters in the hash.
    unsent: list[float] = field(init=False, default_factory=lambda: [0, 0.0])
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.key = worker_key(self.name)

    def ours(self) -> dict[str, str]:
        """Our fields of the worker hash (`flask_jobs.keys`), as of now. The jobs running
        are RQ's: the worker's execution set, which each job's start and end write."""
        fields = {
            WORKER_MODE_FIELD: self.mode,
            WORKER_SLOTS_FIELD: str(self.slots),
            WORKER_RSS_FIELD: str(int(resident_mb() * 2**20)),
        }
        if self.supervisor:
            fields[WORKER_SUPERVISOR_FIELD] = self.supervisor
        return fields

    def birth(self) -> None:
        """Register as RQ's ``register_birth`` does (refusing a live worker's name)."""
        conn = self.connection
        if conn.exists(self.key) and not conn.hexists(self.key, "death"):
            raise ValueError(f"There exists an active worker named {self.name!r} already")
        stamp = utcformat(now())
        fields: Any = {
            "birth": stamp,
            "last_heartbeat": stamp,
            "queues": ",".join(self.queues),
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "ip_address": _ip_address(conn),
            "version": VERSION,
            "python_version": sys.version,
            "state": "started",
            **self.ours(),
        }
        with conn.pipeline() as pipe:
            pipe.delete(self.key)
            pipe.hset(self.key, mapping=fields)
            pipe.sadd(REDIS_WORKER_KEYS, self.key)
            for name in self.queues:
                pipe.sadd(WORKERS_BY_QUEUE_KEY % name, self.key)
            pipe.expire(self.key, WORKER_TTL + 60)
            pipe.execute()
        self.lives_until = time.monotonic() + WORKER_TTL + 60

    def lease(self, ttl: int) -> bool:
        """Whether the worker's hash must now be made to live ``ttl`` seconds more (for a job
        starting with that heartbeat TTL); assumed done when True."""
        until = time.monotonic() + ttl
        with self.lock:
            if until <= self.lives_until:
                return False
            self.lives_until = until
        return True

    def count_success(self, seconds: float) -> None:
        """A job finished: added to RQ's counters with the next heartbeat."""
        with self.lock:
            self.unsent[0] += 1
            self.unsent[1] += seconds

    def beat_due(self) -> bool:
        """Whether `HEARTBEAT_SECONDS` have passed since the last heartbeat."""
        return time.monotonic() - self.beat_at >= HEARTBEAT_SECONDS

    def heartbeat(self, state: str, ttl: int = WORKER_TTL + 60) -> None:
        """RQ's heartbeat (``last_heartbeat`` and TTLs), with the state and our fields."""
        self.beat_at = time.monotonic()
        fields: Any = {"last_heartbeat": utcformat(now()), "state": state, **self.ours()}
        with self.lock:
            done, seconds = self.unsent
            self.unsent = [0, 0.0]
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hset(self.key, mapping=fields)
                if done:
                    pipe.hincrby(self.key, "successful_job_count", int(done))
                    pipe.hincrbyfloat(self.key, "total_working_time", seconds)
                pipe.expire(self.key, ttl)
                pipe.expire(worker_executions_key(self.name), ttl)
                pipe.execute()
        except BaseException:
            with self.lock:  # sent with the next one
                self.unsent[0] += done
                self.unsent[1] += seconds
            raise
        with self.lock:
            self.lives_until = max(self.lives_until, self.beat_at + ttl)

    def shutdown_requested(self) -> None:
        """Record a warm shutdown request (RQ's ``shutdown_requested_date``)."""
        try:
            self.connection.hset(self.key, "shutdown_requested_date", utcformat(now()))
        except Exception as exc:  # in a signal handler: never let Redis break the stop
            log.warning("worker %s: could not record the shutdown request (%s)", self.name, exc)

    def death(self) -> None:
        """Unregister as RQ's ``register_death`` does."""
        with self.connection.pipeline() as pipe:
            pipe.srem(REDIS_WORKER_KEYS, self.key)
            for name in self.queues:
                pipe.srem(WORKERS_BY_QUEUE_KEY % name, self.key)
            pipe.hset(self.key, "death", utcformat(now()))
            pipe.expire(self.key, 60)
            pipe.delete(worker_executions_key(self.name))
            pipe.execute()


def _ip_address(connection: redis.Redis) -> str:
    """This client's address as Redis sees it (RQ's ``ip_address`` field)."""
    try:
        info: Any = connection.client_info()
        return str(info.get("addr", "unknown"))
    except Exception:  # older servers, or CLIENT INFO denied by an ACL
        return "unknown"
