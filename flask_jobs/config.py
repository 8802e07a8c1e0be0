"""The ``JOBS_*`` settings: their defaults, and their validation at ``init_app``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .config_rules import RULES

__all__ = ["DEFAULTS", "RULES", "JobsConfig", "load_config"]

#: Every key the extension reads, with its default. ``init_app`` sets each of
#: them with ``app.config.setdefault`` so ``app.config`` shows the effective value.
DEFAULTS: dict[str, Any] = {
    "JOBS_REDIS_URL": None,
    "JOBS_QUEUES": ["default"],
    "JOBS_DEFAULT_TIMEOUT": 180,
    "JOBS_RESULT_TTL": 500,
    "JOBS_FAILURE_TTL": 31_536_000,
    "JOBS_SERIALIZER": "json",
    "JOBS_EAGER": False,
    "JOBS_EAGER_PROPAGATE": True,
    "JOBS_EMBEDDED_REDIS": True,
    "JOBS_WORKER_CLASS": "default",
    "JOBS_WORKER_CONCURRENCY": 1,
    "JOBS_WORKER_THREADS": 8,
    "JOBS_WORKER_ASYNC_LIMIT": 100,
    "JOBS_WORKER_METRICS_PORT": None,
    "JOBS_MIDDLEWARE": [],
    "JOBS_LOG_LEVEL": "INFO",
    "JOBS_LOG_FORMAT": "text",
    "JOBS_ON_FAILURE": [],
    "JOBS_DASHBOARD_ENABLED": True,
    "JOBS_DASHBOARD_URL_PREFIX": "/jobs",
    "JOBS_DASHBOARD_AUTH": None,
    "JOBS_HISTORY_ENABLED": True,
    "JOBS_HISTORY_DATABASE_URI": None,
    "JOBS_HISTORY_MAX_ARG_BYTES": 4096,
    "JOBS_HISTORY_MAX_RESULT_BYTES": 2048,
    "JOBS_REDACT_KEYS": ["password", "token", "secret", "api_key"],
    "JOBS_HISTORY_STREAM_MAXLEN": 1_000_000,
    "JOBS_HISTORY_RETENTION": "30d",
    "JOBS_SCHEDULE": {},
    "JOBS_TIMEZONE": "UTC",
    "JOBS_ENQUEUE_ON_COMMIT": True,
    "JOBS_OUTBOX": False,
    "JOBS_OUTBOX_BATCH": 500,
    "JOBS_OUTBOX_POLL_MS": 100,
    "JOBS_ALERT_QUEUE_WAIT": None,
    "JOBS_ALERT_FAILURE_RATE": None,
    "JOBS_ALERT_MIN_RUNS": 10,
    "JOBS_ALERT_SCHEDULE_GRACE": "5m",
    "JOBS_ON_ALERT": [],
}


@dataclass(frozen=True)
class JobsConfig:
    """The validated settings of one app."""

    redis_url: str | None
    queues: tuple[str, ...]
    default_timeout: int
    result_ttl: int
    failure_ttl: int
    serializer: str
    eager: bool
    eager_propagate: bool
    embedded_redis: bool
    worker_class: str
    worker_concurrency: int
    worker_threads: int
    worker_async_limit: int
    #: ``JOBS_MIDDLEWARE``: worker middleware objects (a class given is instantiated).
    middleware: tuple[Any, ...]
    log_level: str
    log_format: str
    on_failure: tuple[Callable[..., Any], ...]
    dashboard_enabled: bool
    dashboard_url_prefix: str
    dashboard_auth: Callable[..., Any] | None
    history_enabled: bool
    history_database_uri: str | None
    history_max_arg_bytes: int
    history_max_result_bytes: int
    redact_keys: tuple[str, ...]
    history_stream_maxlen: int
    history_retention: timedelta | None
    schedule: dict[str, Any]
    timezone: str
    #: Hold an enqueue made in a transaction with writes until it commits (needs a ``db``).
    enqueue_on_commit: bool
    #: Write such an enqueue to the outbox table instead, in the caller's transaction.
    outbox: bool
    outbox_batch: int
    outbox_poll_ms: int
    #: Alert when a queue's oldest job has waited longer than this (None: off).
    alert_queue_wait: timedelta | None = None
    #: Alert when a function's failure rate over 15 minutes exceeds this (0..1; None: off).
    alert_failure_rate: float | None = None
    #: The fewest runs in those 15 minutes for the failure-rate alert to judge a function.
    alert_min_runs: int = 10
    #: Alert when a schedule's next run is this late (None: off).
    alert_schedule_grace: timedelta | None = timedelta(minutes=5)
    on_alert: tuple[Callable[..., Any], ...] = ()
    #: Serve the workers' Prometheus metrics on this port (None: off).
    worker_metrics_port: int | None = None


def load_config(config: Mapping[str, Any]) -> JobsConfig:
    """Validate the ``JOBS_*`` keys of ``config`` and return them as a `JobsConfig`."""
    values = {key: rule(key, config[key]) for key, rule in RULES.items()}
    return JobsConfig(
        redis_url=values["JOBS_REDIS_URL"],
        queues=values["JOBS_QUEUES"],
        default_timeout=values["JOBS_DEFAULT_TIMEOUT"],
        result_ttl=values["JOBS_RESULT_TTL"],
        failure_ttl=values["JOBS_FAILURE_TTL"],
        serializer=values["JOBS_SERIALIZER"],
        eager=values["JOBS_EAGER"],
        eager_propagate=values["JOBS_EAGER_PROPAGATE"],
        embedded_redis=values["JOBS_EMBEDDED_REDIS"],
        worker_class=values["JOBS_WORKER_CLASS"],
        worker_concurrency=values["JOBS_WORKER_CONCURRENCY"],
        worker_threads=values["JOBS_WORKER_THREADS"],
        worker_async_limit=values["JOBS_WORKER_ASYNC_LIMIT"],
        middleware=values["JOBS_MIDDLEWARE"],
        log_level=values["JOBS_LOG_LEVEL"],
        log_format=values["JOBS_LOG_FORMAT"],
        on_failure=values["JOBS_ON_FAILURE"],
        dashboard_enabled=values["JOBS_DASHBOARD_ENABLED"],
        dashboard_url_prefix=values["JOBS_DASHBOARD_URL_PREFIX"],
        dashboard_auth=values["JOBS_DASHBOARD_AUTH"],
        history_enabled=values["JOBS_HISTORY_ENABLED"],
        history_database_uri=values["JOBS_HISTORY_DATABASE_URI"],
        history_max_arg_bytes=values["JOBS_HISTORY_MAX_ARG_BYTES"],
        history_max_result_bytes=values["JOBS_HISTORY_MAX_RESULT_BYTES"],
        redact_keys=values["JOBS_REDACT_KEYS"],
        history_stream_maxlen=values["JOBS_HISTORY_STREAM_MAXLEN"],
        history_retention=values["JOBS_HISTORY_RETENTION"],
        schedule=values["JOBS_SCHEDULE"],
        timezone=values["JOBS_TIMEZONE"],
        enqueue_on_commit=values["JOBS_ENQUEUE_ON_COMMIT"],
        outbox=values["JOBS_OUTBOX"],
        outbox_batch=values["JOBS_OUTBOX_BATCH"],
        outbox_poll_ms=values["JOBS_OUTBOX_POLL_MS"],
        alert_queue_wait=values["JOBS_ALERT_QUEUE_WAIT"],
        alert_failure_rate=values["JOBS_ALERT_FAILURE_RATE"],
        alert_min_runs=values["JOBS_ALERT_MIN_RUNS"],
        alert_schedule_grace=values["JOBS_ALERT_SCHEDULE_GRACE"],
        on_alert=values["JOBS_ON_ALERT"],
        worker_metrics_port=values["JOBS_WORKER_METRICS_PORT"],
    )
