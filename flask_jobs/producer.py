"""Enqueue from outside Flask: a `Producer` hands jobs to a Flask app's workers from any
Python process (a Django command, a cron script, another service) with no Flask app."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .config import DEFAULTS, load_config
from .enqueue import enqueue
from .errors import ConfigurationError, JobArgumentError
from .jobs.function import JobOptions
from .keys import QUEUE_NAME
from .redis.connection import redact_url
from .state import JobsClient

if TYPE_CHECKING:
    from types import TracebackType

    from .jobs.flask_job import FlaskJob
    from .jobs.retry import Retry

__all__ = ["Producer"]

#: A job's import path: ``package.module:function`` or ``package.module.function``.
_JOB_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([:.][A-Za-z_]\w*)$")


class Producer:
    """Enqueues jobs of a Flask app for its workers, from a process with no Flask app.

    A job enqueued here is the same as one from ``.enqueue()`` in the app: the same
    job hash, queue entry and "queued" history event, so the app's workers run it in
    the app's context, and the dashboard, history and ``rq info`` show it.

    :param redis_url: the Redis the app's workers use (the app's ``JOBS_REDIS_URL``).
    :param config: ``JOBS_*`` settings to share with the app where they matter to an
        enqueue: ``JOBS_QUEUES`` (the first is the default queue),
        ``JOBS_DEFAULT_TIMEOUT``, ``JOBS_RESULT_TTL``, ``JOBS_FAILURE_TTL``,
        ``JOBS_SERIALIZER``, ``JOBS_HISTORY_*`` and ``JOBS_REDACT_KEYS``. Other keys are
        validated and ignored.
    """

    def __init__(self, redis_url: str, *, config: Mapping[str, Any] | None = None) -> None:
        settings = {**DEFAULTS, **(config or {}), "JOBS_REDIS_URL": redis_url}
        if not redis_url:
            raise ConfigurationError(
                "Producer needs the URL of the Redis the app's workers use, "
                "e.g. Producer('redis://localhost:6379/0')"
            )
        loaded = load_config(settings)
        if loaded.eager:
            raise ConfigurationError(
                "JOBS_EAGER = True runs jobs inside the app; a Producer has no app to run "
                "them in: leave JOBS_EAGER out of its config"
            )
        self._client = JobsClient(loaded, instance_path=None)

    def enqueue(
        self,
        func: str,
        /,
        *args: Any,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        timeout: int | None = None,
        retry: Retry | None = None,
        job_id: str | None = None,
        description: str | None = None,
        meta: Mapping[str, Any] | None = None,
        at_front: bool = False,
    ) -> FlaskJob:
        """Enqueue one run of the app's job ``func`` with ``args`` and ``kwargs``.

        :param func: the job's import path, ``"app.tasks:send"`` (or
            ``"app.tasks.send"``): a function declared with ``@jobs.job`` in the app.
        :param kwargs: the job's keyword arguments (keywords of this method are
            options of the enqueue, so the job's own go in this mapping).
        :param queue: the queue (default: the first of ``JOBS_QUEUES``).
        :param delay: run no sooner than this from now; ``at``: no sooner than then.
        :returns: RQ's job, with ``.id``, ``.get_status()`` and ``.return_value()``.
        :raises JobArgumentError: a malformed ``func``, or an argument JSON cannot
            carry; nothing is enqueued.
        :raises JobsConnectionError: Redis cannot be reached, or refuses the job.
        """
        if not isinstance(func, str) or not _JOB_PATH.match(func):
            raise JobArgumentError(
                f"{func!r} is not a job's import path: use 'package.module:function', "
                "the function declared with @jobs.job in the app"
            )
        if queue is not None and not (isinstance(queue, str) and QUEUE_NAME.match(queue)):
            raise JobArgumentError(
                f"queue name {queue!r} is not valid: use 1-100 letters, digits, '_', '-', '.', ':'"
            )
        if delay is not None and at is not None:
            raise JobArgumentError("give delay= or at=, not both")
        path = func if ":" in func else ":".join(func.rsplit(".", 1))
        options = JobOptions(
            queue=queue,
            timeout=timeout,
            retry=retry,
            job_id=job_id,
            description=description,
            meta=dict(meta) if meta else None,
            at_front=at_front,
            origin="producer",
            on_commit=False,
        )
        return enqueue(
            self._client, path, tuple(args), dict(kwargs or {}), options, delay=delay, at=at
        )

    def close(self) -> None:
        """Close the connection to Redis (a new one is made on the next enqueue)."""
        self._client.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Producer {redact_url(self._client.redis_url)}>"
