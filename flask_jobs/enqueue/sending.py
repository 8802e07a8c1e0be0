"""What every enqueue path shares: the "queued" history event, RQ's job of each run, and
Redis errors turned into one clear error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis
from rq.utils import now

from ..errors import JobsConnectionError
from ..history.events import workflow_of
from ..jobs.flask_job import FlaskJob
from ..jobs.prepare import Prepared
from ..jobs.store import is_refusal, new_job
from ..redis.connection import redact_url

if TYPE_CHECKING:
    from ..state import JobsClient

__all__ = ["REFUSED", "new_jobs", "own_meta", "queued_event", "refused_error", "sending"]

#: Redis is up but refuses writes (full under ``noeviction``, or a read-only replica).
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


@contextmanager
def sending(state: JobsClient) -> Iterator[None]:
    """Turn a Redis that cannot be reached, or refuses the job, into a clear error."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise state.connection_error(exc) from exc
    except REFUSED as exc:
        raise refused_error(state, exc) from exc
    except redis.ResponseError as exc:
        if is_refusal(exc):  # the same refusals, met inside our script
            raise refused_error(state, exc) from exc
        raise


def new_jobs(
    queue: Any, prepared: Prepared, calls: list[tuple[tuple[Any, ...], dict[str, Any]]]
) -> list[FlaskJob]:
    """RQ's job of each run, each with a ``meta`` of its own (nothing is sent)."""
    return [
        new_job(queue, prepared.func_name, args, kwargs, own_meta(prepared), when=None)
        for args, kwargs in calls
    ]


def own_meta(prepared: Prepared) -> dict[str, Any]:
    """RQ's options with a ``meta`` of the job's own (runs of one enqueue share the rest)."""
    return {**prepared.rq_options, "meta": dict(prepared.meta)}


def refused_error(state: JobsClient, exc: Exception) -> JobsConnectionError:
    """The error for a Redis that refused an enqueue; nothing was stored."""
    return JobsConnectionError(
        f"Redis at {redact_url(state.redis_url)} refused the job ({exc}): it is full "
        "(maxmemory with noeviction: free memory or raise maxmemory) or a read-only "
        "replica (point JOBS_REDIS_URL at the master, or use a redis+sentinel:// URL)"
    )


def queued_event(
    state: JobsClient,
    job: Any,
    prepared: Prepared,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> dict[str, str]:
    """The history's "queued" event of ``job``."""
    return state.events.queued(
        job_id=job.id,
        attempt=1,
        func=prepared.func_name,
        queue=prepared.queue_name,
        args=args,
        kwargs=kwargs,
        description=job.description,
        origin=prepared.origin,
        enqueued_at=job.enqueued_at or now(),
        workflow_id=workflow_of(prepared.meta) or None,
    )
