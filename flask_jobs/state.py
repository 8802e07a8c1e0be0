"""Per-app state of the extension, kept in ``app.extensions["jobs"]``: config, Redis, queues,
and the history's store and event encoder."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import redis
import sqlalchemy as sa
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue
from rq.serializers import JSONSerializer, PickleSerializer

from .config import JobsConfig
from .errors import ConfigurationError, JobsConnectionError
from .history.events import EventEncoder, HistorySettings
from .history.store import HistoryStore, database_backend
from .jobs.flask_job import FlaskJob
from .keys import HISTORY_STREAM, QUEUE_NAME
from .redis.connection import close, connect, redact_url
from .redis.embedded import EmbeddedRedis

if TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from .jobs.function import JobsOwner

__all__ = ["JobsClient", "JobsState"]


class JobsClient:
    """The Redis side of one app's jobs: validated config, the connection, scripts, queues
    and the history events an enqueue writes. A `flask_jobs.Producer` is one with no app;
    an app's `JobsState` adds its database and history store."""

    #: Flask-SQLAlchemy, when the app has one: enqueues wait for its session's commits.
    db: SQLAlchemy | None = None
    #: ``flask_jobs_outbox`` on ``db.metadata`` (None without a ``db``).
    outbox_table: sa.Table | None = None

    def __init__(self, config: JobsConfig, *, instance_path: str | None) -> None:
        self.config = config
        self.embedded: EmbeddedRedis | None = None
        if config.redis_url is None:
            if instance_path is None:
                raise ConfigurationError(
                    "no Redis to send jobs to: pass the URL of the Redis your workers use, "
                    "e.g. Producer('redis://localhost:6379/0')"
                )
            self.embedded = EmbeddedRedis(instance_path)
        self._connection: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
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

    def script(self, text: str) -> Any:
        """The Lua script ``text`` registered on the app's connection (one per text)."""
        script = self._scripts.get(text)
        if script is None:
            script = self._scripts[text] = self.connection.register_script(text)
        return script

    def close(self) -> None:
        """Close the Redis connections of this app (a new client is made on next use)."""
        with self._lock:
            if self._connection is not None:
                close(self._connection)
            self._connection = None
            self._scripts.clear()
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
            queue = Queue(
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


class JobsState(JobsClient):
    """What one app's `Jobs` needs at run time: the Redis side, plus its database, history
    store and outbox."""

    def __init__(
        self,
        jobs: JobsOwner,
        app: Flask,
        config: JobsConfig,
        *,
        db: SQLAlchemy | None,
        history_table: sa.Table,
        hourly_table: sa.Table,
        outbox_table: sa.Table | None = None,
    ) -> None:
        super().__init__(config, instance_path=app.instance_path)
        self.jobs = jobs
        self.db = db
        self.outbox_table = outbox_table
        self.app_name = app.import_name
        self.history_retention = config.history_retention
        uri = config.history_database_uri
        if uri is None and db is None:
            uri = "sqlite:///" + os.path.join(app.instance_path, "flask_jobs_history.db")
            os.makedirs(app.instance_path, exist_ok=True)
        # The app's database URL when the history shares it (Flask-SQLAlchemy's setting).
        backend = database_backend(
            uri if uri is not None else app.config.get("SQLALCHEMY_DATABASE_URI")
        )
        self.history = HistoryStore(
            history_table, db=db, uri=uri, hourly=hourly_table, backend=backend
        )
