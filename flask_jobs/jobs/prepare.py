"""What every run of one enqueue shares, worked out once: checked arguments, names, meta
and RQ's options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import has_request_context
from rq.job import get_current_job as rq_current_job

from .arguments import check_json_arguments
from .flask_job import META_ORIGIN, META_RETRY

if TYPE_CHECKING:
    from ..config import JobsConfig
    from .function import JobOptions

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """What every run of one enqueue shares: names, meta and RQ's options."""

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
    rq_options: dict[str, Any] = {
        "timeout": options.timeout,
        "result_ttl": config.result_ttl if options.result_ttl is None else options.result_ttl,
        "failure_ttl": config.failure_ttl if options.failure_ttl is None else options.failure_ttl,
        "ttl": options.ttl,
        "description": options.description,
        "meta": meta,
        "retry": options.retry.to_rq() if options.retry is not None else None,
    }
    return Prepared(
        func_name=path.replace(":", "."),
        queue_name=options.queue or config.queues[0],
        meta=meta,
        rq_options=rq_options,
    )


def _guess_origin() -> str:
    if has_request_context():
        return "view"
    parent = rq_current_job()
    if parent is not None:
        return f"job:{parent.id}"
    return "code"
