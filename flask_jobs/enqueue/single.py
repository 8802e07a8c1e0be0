"""One run stored by our Lua script (`STORE_SCRIPT`), and the claimed enqueue: a run
stored together with a key that says it was (a schedule's fire time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rq.utils import now

from ..errors import ConfigurationError
from ..jobs.flask_job import FlaskJob
from ..jobs.prepare import Prepared, limit_fields, prepare
from ..jobs.store import STORE_SCRIPT, job_fields, new_job, run_at, store_job, stored_as
from .limited import kept, limited, mirror_limits
from .sending import queued_event, sending

if TYPE_CHECKING:
    from ..jobs.function import JobOptions
    from ..state import JobsClient

__all__ = ["enqueue_claimed", "store_one", "stored_by_script"]


def enqueue_claimed(
    state: JobsClient,
    path: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    *,
    claim: str,
    claim_ttl: int,
    delay: timedelta | None = None,
) -> FlaskJob | None:
    """Enqueue one run unless the key ``claim`` exists, and set that key (for ``claim_ttl``
    seconds) in the same Lua call that stores the run: whoever dies in between leaves
    neither a claim without its run nor a run without its claim. Returns None when the key
    was taken (by another process, or an earlier try), else the run, or the job that holds
    its unique key. Not for runs that wait on others (``depends_on``)."""
    args = tuple(args)
    kwargs = dict(kwargs)
    if not stored_by_script(options):
        raise ConfigurationError(
            f"{path}: a claimed enqueue is one Lua call; it cannot take depends_on or a "
            "fixed job_id without a unique key"
        )
    prepared = prepare(state.config, path, options, [(args, kwargs)])
    when = now() + delay if delay is not None else None
    job, reply = store_one(state, prepared, args, kwargs, options, when, None, (claim, claim_ttl))
    stored = stored_as(reply, job.id)
    return None if stored is None else kept(state, job, stored)


def stored_by_script(options: JobOptions) -> bool:
    """Whether a run with ``options`` is stored by our Lua script (else by RQ's enqueue)."""
    return options.depends_on is None and (options.job_id is None or limited(options))


def store_one(
    state: JobsClient,
    prepared: Prepared,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: JobOptions,
    when: datetime | None,
    job: FlaskJob | None,
    mark: tuple[str, int] | None = None,
) -> tuple[FlaskJob, Any]:
    """Store one run with `STORE_SCRIPT` (one round trip); the job and the script's reply.
    With ``mark`` (a key and its TTL), a run whose key exists is skipped, else the key is
    set with it."""
    queue = state.queue(prepared.queue_name)
    limits = limit_fields(prepared.path, options, args, kwargs)
    if job is None:
        job = new_job(
            queue,
            prepared.func_name,
            args,
            kwargs,
            prepared.rq_options,
            when=when,
            job_id=options.job_id,
        )
    mirror_limits(job, limits)
    event = queued_event(state, job, prepared, args, kwargs) if state.history_enabled else None
    with sending(state):
        reply = store_job(
            state.script(STORE_SCRIPT),
            state.connection,
            job.id,
            queue.name,
            {**job_fields(job), **limits},
            state.history_settings.stream,
            event,
            run_at=run_at(when),
            at_front=options.at_front,
            mark_key=mark[0] if mark else None,
            mark_ttl=mark[1] if mark else 0,
        )
    return job, reply
