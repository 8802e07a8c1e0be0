"""What every run of one enqueue shares, worked out once: checked arguments, names, meta
and RQ's options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import has_request_context
from rq.job import get_current_job as rq_current_job

from ..keys import (
    JOB_RATE_FIELD,
    JOB_RATE_KEY_FIELD,
    JOB_UNIQUE_FIELD,
    JOB_UNIQUE_TTL_FIELD,
    JOB_UNIQUE_WHILE_FIELD,
    RATE_LIMIT_CONCURRENCY_FIELD,
    RATE_LIMIT_KEY_FIELD,
)
from .arguments import check_json_arguments
from .flask_job import META_ORIGIN, META_RETRY, META_SOFT_TIMEOUT
from .limits import check_unique_key, concurrency_key_for, parse_rate, unique_key_for

if TYPE_CHECKING:
    from ..config import JobsConfig
    from .function import JobOptions

__all__ = ["DEFAULT_UNIQUE_FOR", "Prepared", "limit_fields", "prepare"]

#: How long a unique key holds when ``unique_for`` is not given: a day.
DEFAULT_UNIQUE_FOR = 86400


@dataclass(frozen=True)
class Prepared:
    """What every run of one enqueue shares: names, meta and RQ's options."""

    #: The job's ``module:function`` path.
    path: str
    func_name: str
    queue_name: str
    meta: dict[str, Any]
    #: RQ's ``enqueue_call`` options (``timeout``, TTLs, ``meta``, ``retry``...).
    rq_options: dict[str, Any]

    @property
    def origin(self) -> str:
        """Where the enqueue came from (``view``, ``cli``, ``schedule:<name>``...)."""
        return str(self.meta[META_ORIGIN])


def prepare(
    config: JobsConfig,
    path: str,
    options: JobOptions,
    runs: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
) -> Prepared:
    """Check every run's arguments, then work out the options the runs share."""
    if config.serializer == "json":
        for args, kwargs in runs:
            check_json_arguments(path, args, kwargs)
    meta = dict(options.meta or {})
    meta[META_ORIGIN] = options.origin or _guess_origin()
    if options.retry is not None:
        meta[META_RETRY] = options.retry.to_meta()
    if options.soft_timeout is not None:
        meta[META_SOFT_TIMEOUT] = options.soft_timeout
    rq_options: dict[str, Any] = {
        "timeout": options.timeout,
        "result_ttl": config.result_ttl if options.result_ttl is None else options.result_ttl,
        "failure_ttl": config.failure_ttl if options.failure_ttl is None else options.failure_ttl,
        "ttl": options.ttl,
        "description": options.description,
        "meta": meta,
        "retry": options.retry.to_rq() if options.retry is not None else None,
    }
    if options.on_failure is not None:
        rq_options["on_failure"] = options.on_failure
    return Prepared(
        path=path,
        func_name=path.replace(":", "."),
        queue_name=options.queue or config.queues[0],
        meta=meta,
        rq_options=rq_options,
    )


def limit_fields(
    path: str, options: JobOptions, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, str]:
    """The job-hash fields of one run's limits: its unique key, RQ's concurrency key and
    limit, its rate (field names in `flask_jobs.keys`; `store.STORE_SCRIPT` reads them)."""
    fields: dict[str, str] = {}
    if options.unique or options.unique_key is not None:
        key = options.unique_key or unique_key_for(path, args, kwargs)
        fields[JOB_UNIQUE_FIELD] = check_unique_key(key)
        fields[JOB_UNIQUE_TTL_FIELD] = str(options.unique_for or DEFAULT_UNIQUE_FOR)
        fields[JOB_UNIQUE_WHILE_FIELD] = options.unique_while
    limit_key = None
    if options.concurrency is not None:
        limit_key = concurrency_key_for(options.concurrency_key, path, args, kwargs)
        fields[RATE_LIMIT_KEY_FIELD] = limit_key
        fields[RATE_LIMIT_CONCURRENCY_FIELD] = str(options.concurrency)
    if options.rate is not None:
        rate = parse_rate(options.rate)
        fields[JOB_RATE_FIELD] = f"{rate.limit}/{rate.period}"
        fields[JOB_RATE_KEY_FIELD] = limit_key or path
    return fields


def _guess_origin() -> str:
    if has_request_context():
        return "view"
    parent = rq_current_job()
    if parent is not None:
        return f"job:{parent.id}"
    return "code"
