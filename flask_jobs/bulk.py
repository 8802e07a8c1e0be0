"""Bulk enqueue: many runs of one job, with their "queued" history events, in one round trip."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis
from rq import Queue

from .arguments import check_json_arguments
from .enqueue import REFUSED, _guess_origin, add_queued_event, refused_error
from .rq_job import META_ORIGIN, META_RETRY, FlaskJob

if TYPE_CHECKING:
    from .job import JobCall

__all__ = ["enqueue_many"]


def enqueue_many(
    call: JobCall[Any, Any], runs: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]
) -> list[FlaskJob]:
    """Enqueue one run of ``call`` per ``(args, kwargs)`` in ``runs``, in one round trip.

    ``call`` is a job (``send_report``) or a job with options
    (``send_report.options(queue="low")``). Every argument is checked before
    anything is sent, so a bad one enqueues nothing. Options that need a round
    trip per job (``depends_on``, a fixed ``job_id``) and eager mode take the
    one-at-a-time path.
    """
    function = call._function
    options = call._options
    calls = [(tuple(args), dict(kwargs)) for args, kwargs in runs]
    if not calls:
        return []
    state = function.jobs.state()
    config = state.config
    if config.eager or options.depends_on is not None or options.job_id is not None:
        return [call.enqueue(*args, **kwargs) for args, kwargs in calls]
    path = function.path
    func_name = path.replace(":", ".")
    if config.serializer == "json":
        for args, kwargs in calls:
            check_json_arguments(path, args, kwargs)
    queue_name = options.queue or config.queues[0]
    meta = dict(options.meta or {})
    meta[META_ORIGIN] = options.origin or _guess_origin()
    if options.retry is not None:
        meta[META_RETRY] = options.retry.to_meta()
    retry = options.retry.to_rq() if options.retry is not None else None
    datas = [
        Queue.prepare_data(
            func_name,
            args=args,
            kwargs=kwargs,
            timeout=options.timeout,
            result_ttl=config.result_ttl if options.result_ttl is None else options.result_ttl,
            failure_ttl=config.failure_ttl if options.failure_ttl is None else options.failure_ttl,
            ttl=options.ttl,
            description=options.description,
            at_front=options.at_front,
            meta=dict(meta),
            retry=retry,
        )
        for args, kwargs in calls
    ]
    queue = state.queue(queue_name)
    try:
        with state.connection.pipeline() as pipe:
            jobs = queue.enqueue_many(datas, pipeline=pipe)
            if state.history_enabled:
                for job, (args, kwargs) in zip(jobs, calls, strict=True):
                    add_queued_event(
                        state, pipe, job, func_name, queue_name, args, kwargs, meta[META_ORIGIN]
                    )
            pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise state.connection_error(exc) from exc
    except REFUSED as exc:
        raise refused_error(state, exc) from exc
    return [job for job in jobs if isinstance(job, FlaskJob)]
