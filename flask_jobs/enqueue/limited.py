"""Runs with a unique key, a concurrency limit or a rate: each checked by the one-call store
script, and a duplicate gives back the job it repeats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rq.exceptions import NoSuchJobError
from rq.utils import as_text

from ..jobs.flask_job import FlaskJob
from ..jobs.prepare import Prepared, limit_fields
from ..jobs.store import STORE_SCRIPT, job_fields, run_pipeline, store_job, stored_as
from ..keys import RATE_LIMIT_CONCURRENCY_FIELD, RATE_LIMIT_KEY_FIELD
from .sending import new_jobs, queued_event, sending

if TYPE_CHECKING:
    from ..jobs.function import JobOptions
    from ..state import JobsClient

__all__ = ["kept", "limited", "mirror_limits", "push_limited"]


def limited(options: JobOptions) -> bool:
    """Whether runs with ``options`` need the per-run checks of our store script."""
    return bool(
        options.unique
        or options.unique_key is not None
        or options.concurrency is not None
        or options.rate is not None
    )


def push_limited(
    state: JobsClient,
    prepared: Prepared,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    options: JobOptions,
    jobs: list[FlaskJob] | None = None,
) -> list[FlaskJob]:
    """Put runs with a unique key or a limit on their queue: one store call each (the key
    is checked per run), all in one round trip; a duplicate gives back the job it repeats."""
    queue = state.queue(prepared.queue_name)
    if jobs is None:
        jobs = new_jobs(queue, prepared, calls)
    script = state.script(STORE_SCRIPT)
    stream = state.history_settings.stream
    history = state.history_enabled
    runs = [
        (
            job,
            {**job_fields(job), **limit_fields(prepared.path, options, a, k)},
            queued_event(state, job, prepared, a, k) if history else None,
        )
        for job, (a, k) in zip(jobs, calls, strict=True)
    ]

    def fill(pipe: Any) -> None:
        for job, fields, event in runs:
            mirror_limits(job, fields)
            store_job(script, pipe, job.id, queue.name, fields, stream, event,
                      at_front=options.at_front)  # fmt: skip

    with sending(state):
        replies = run_pipeline(state.connection, fill, transaction=False)
    return [
        kept(state, job, stored_as(reply, job.id))
        for (job, _, _), reply in zip(runs, replies, strict=True)
    ]


def mirror_limits(job: FlaskJob, limits: Mapping[str, str | bytes]) -> None:
    """Give the ``job`` returned to the caller RQ's concurrency key and limit, as stored."""
    if RATE_LIMIT_KEY_FIELD in limits:
        job.rate_limit_key = as_text(limits[RATE_LIMIT_KEY_FIELD])
        job.rate_limit_concurrency = int(limits[RATE_LIMIT_CONCURRENCY_FIELD])


def kept(state: JobsClient, job: FlaskJob, stored: str | None) -> FlaskJob:
    """``job``, or the job already holding its unique key (which the enqueue gives back)."""
    if stored is None or stored == job.id:
        return job
    try:
        kept = FlaskJob.fetch(stored, connection=state.connection, serializer=state.serializer)
    except NoSuchJobError:  # it ended and expired since: what is known of it is its id
        return FlaskJob(stored, connection=state.connection, serializer=state.serializer)
    assert isinstance(kept, FlaskJob)
    return kept
