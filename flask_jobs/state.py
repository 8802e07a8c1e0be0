"""Per-app state of the extension, kept in ``app.extensions["jobs"]``: config, Redis, queues."""

from __future__ import annotations

import importlib
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from flask import Flask
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer, PickleSerializer

from .config import QUEUE_NAME, JobsConfig
from .connection import close, connect
from .embedded import EmbeddedRedis
from .errors import JobsConnectionError, UnknownJobError
from .events import EventEncoder, HistorySettings
from .history import HistoryStore
from .rq_job import FlaskJob
from .schedules import Schedule, parse_schedule
from .stopping import StopSafeQueue

if TYPE_CHECKING:
    from .extension import Jobs

__all__ = ["HISTORY_STREAM", "REGISTRIES", "JobsState", "import_path", "redact_url"]

HISTORY_STREAM = "flask_jobs:history"

REGISTRIES = {
    "started": StartedJobRegistry,
    "scheduled": ScheduledJobRegistry,
    "deferred": DeferredJobRegistry,
    "failed": FailedJobRegistry,
    "finished": FinishedJobRegistry,
    "canceled": CanceledJobRegistry,
}


def redact_url(url: str) -> str:
    """``url`` with any password (in the netloc or a ``*password`` option) replaced by ``***``."""
    parts = urlsplit(url)
    if "password" in parts.query:
        query = [
            (key, "***" if "password" in key else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostinfo}")
    return urlunsplit(parts)


class JobsState:
    """What one app's `Jobs` needs at run time: validated config, Redis, queues."""

    def __init__(self, jobs: Jobs, app: Flask, config: JobsConfig) -> None:
        self.jobs = jobs
        self.app_name = app.import_name
        self.config = config
        self.embedded = EmbeddedRedis(app.instance_path) if config.redis_url is None else None
        self._connection: redis.Redis | None = None
        self._queues: dict[str, Queue] = {}
        self._lock = threading.Lock()
        self.serializer = JSONSerializer if config.serializer == "json" else PickleSerializer
        self.history_settings = HistorySettings(
            stream=HISTORY_STREAM,
            max_arg_bytes=config.history_max_arg_bytes,
            max_result_bytes=config.history_max_result_bytes,
            redact_keys=config.redact_keys,
            stream_maxlen=config.history_stream_maxlen,
        )
        self.events = EventEncoder(self.history_settings)
        self.history_enabled = config.history_enabled
        self.history_retention = config.history_retention
        uri = config.history_database_uri
        if uri is None and jobs.db is None:
            uri = "sqlite:///" + os.path.join(app.instance_path, "flask_jobs_history.db")
            os.makedirs(app.instance_path, exist_ok=True)
        self.history = HistoryStore(
            jobs.history_table, db=jobs.db, uri=uri, hourly=jobs.history_hourly_table
        )
        self._config_schedules = {
            name: parse_schedule(name, entry, config.timezone)
            for name, entry in config.schedule.items()
        }
        self._schedules: dict[str, Schedule] | None = None
        self._periodic_seen = -1

    def schedules(self) -> dict[str, Schedule]:
        """Every schedule of this app: ``JOBS_SCHEDULE`` and ``@jobs.periodic`` ones."""
        declared = self.jobs._periodic
        if self._schedules is None or self._periodic_seen != len(declared):
            merged = dict(self._config_schedules)
            for name, entry in declared.items():
                merged.setdefault(name, parse_schedule(name, entry, self.config.timezone))
            self._schedules, self._periodic_seen = merged, len(declared)
        return self._schedules

    @property
    def redis_url(self) -> str:
        """The URL of the Redis in use (the embedded server's socket when there is no URL)."""
        if self.embedded is not None:
            return self.embedded.url
        assert self.config.redis_url is not None
        return self.config.redis_url

    @property
    def connection(self) -> redis.Redis:
        """The app's Redis client (starting the embedded server on first use)."""
        if self._connection is None:
            with self._lock:
                if self._connection is None:
                    if self.embedded is not None:
                        self.embedded.start()
                    # Few, quick retries: an enqueue in a web request must fail fast
                    # with a clear error when Redis is down, not hang for seconds.
                    self._connection = connect(
                        self.redis_url,
                        socket_connect_timeout=5,
                        health_check_interval=30,
                        retry=RedisRetry(ExponentialBackoff(cap=0.5, base=0.05), 2),
                    )
        return self._connection

    def close(self) -> None:
        """Close the Redis connections of this app (a new client is made on next use)."""
        with self._lock:
            if self._connection is not None:
                close(self._connection)
            self._connection = None
            self._queues.clear()

    def queue(self, name: str) -> Queue:
        """The RQ queue ``name`` bound to this app's connection, job class and serializer."""
        queue = self._queues.get(name)
        if queue is None:
            if not isinstance(name, str) or not QUEUE_NAME.match(name):
                raise ValueError(
                    f"queue name {name!r} is not valid: "
                    "use 1-100 letters, digits, '_', '-', '.', ':'"
                )
            # StopSafeQueue: RQ's Queue, whose blocking pops a warm stop may interrupt
            # (and nothing else of a worker's loop); see stopping.py.
            queue = StopSafeQueue(
                name,
                connection=self.connection,
                default_timeout=self.config.default_timeout,
                job_class=FlaskJob,
                serializer=self.serializer,
            )
            self._queues[name] = queue
        return queue

    def connection_error(self, exc: Exception) -> JobsConnectionError:
        """A `JobsConnectionError` that says which Redis could not be reached and how to fix it."""
        return JobsConnectionError(
            f"cannot reach Redis at {redact_url(self.redis_url)} ({exc}); is it running? "
            "Check JOBS_REDIS_URL."
        )


def import_path(path: str) -> Any:
    """Import ``"package.module:name"`` (or ``"package.module.name"``), else `UnknownJobError`."""
    if not isinstance(path, str) or not path.strip():
        raise UnknownJobError(f"{path!r} is not an import path like 'package.module:function'")
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UnknownJobError(f"{path!r} is not an import path like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownJobError(f"cannot import {path!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UnknownJobError(
                f"cannot import {path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return target
