"""``flask jobs enqueue|requeue|run-now|cancel|stop|purge``: put jobs on queues, and act on
them by id."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext
from rq.exceptions import NoSuchJobError
from rq.registry import FailedJobRegistry

from ..errors import JobsError
from ..jobs.flask_job import FlaskJob
from ..ops.jobs import cancel, requeue, requeue_failed, retry_note, run_now, stop
from ..ops.queues import queue_names
from ..state import JobsState
from .common import app_state, audit, check_queue_names

__all__ = [
    "cancel_command",
    "enqueue_command",
    "purge_command",
    "requeue_command",
    "run_now_command",
    "stop_command",
]


def _json_option(value: str | None, kind: type, label: str) -> Any:
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc.msg} at char {exc.pos})", param_hint=label
        ) from None
    if not isinstance(parsed, kind):
        shape = (
            "a JSON array, e.g. '[1, \"a\"]'"
            if kind is list
            else "a JSON object, e.g. '{\"x\": 1}'"
        )
        raise click.BadParameter(f"must be {shape}", param_hint=label)
    return parsed


@click.command("enqueue")
@click.argument("path")
@click.option("--args", "args_json", default=None, help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments as a JSON object.")
@click.option("--queue", default=None, help="Queue to use instead of the job's own.")
@with_appcontext
def enqueue_command(
    path: str, args_json: str | None, kwargs_json: str | None, queue: str | None
) -> None:
    """Enqueue the job at import path PATH (``package.module:function``); prints its id."""
    _, state = app_state()
    args = _json_option(args_json, list, "--args")
    kwargs = _json_option(kwargs_json, dict, "--kwargs")
    if queue is not None:
        check_queue_names(state, (queue,))
    call = state.jobs.function(path).options(origin="cli")
    if queue is not None:
        call = call.options(queue=queue)
    job = call.enqueue(*args, **kwargs)
    click.echo(job.id)


def _failed_registries(state: JobsState, queue: str | None) -> list[FailedJobRegistry]:
    names = [queue] if queue else queue_names(state)
    return [FailedJobRegistry(queue=state.queue(name)) for name in names]


@click.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Requeue every failed job.")
@click.option("--queue", default=None, help="With --failed: only this queue's failed jobs.")
@with_appcontext
def requeue_command(job_ids: tuple[str, ...], all_failed: bool, queue: str | None) -> None:
    """Put failed (or stopped, canceled) jobs back on their queue: JOB_ID... or --failed."""
    _, state = app_state()
    if bool(job_ids) == all_failed:
        raise click.UsageError("give job ids or --failed (not both)")
    if queue is not None and not all_failed:
        raise click.UsageError("--queue goes with --failed")
    if all_failed:
        registries = _failed_registries(state, queue)
        total = sum(registry.count for registry in registries)
        count = 0
        with _progress(total, "Requeuing failed jobs") as bar:
            for registry in registries:
                count += requeue_failed(state, registry.name, progress=bar.update)
        audit("requeue", f"failed jobs of {queue or 'all queues'}", count)
        skipped = (
            f", skipped {total - count} (expired, or no longer failed)" if count < total else ""
        )
        click.echo(f"requeued {count} failed job(s){skipped}")
        return
    _each_job(
        state,
        "requeue",
        job_ids,
        lambda job: requeue(state, job),
        lambda job: f"requeued {job.id} on {job.origin} (attempt {job.attempt}). {retry_note(job)}",
    )


def _progress(total: int, label: str) -> Any:
    """click's progress bar on stderr (it draws only on a terminal; scripts see the summary)."""
    return click.progressbar(length=total, label=label, file=sys.stderr)


def _each_job(
    state: JobsState,
    name: str,
    job_ids: tuple[str, ...],
    action: Callable[[FlaskJob], object],
    done: Callable[[FlaskJob], str],
) -> None:
    """Apply ``action`` (called ``name``) to each job, record it in the audit log, and
    report every problem at the end, in one line."""
    problems = []
    count = 0
    for job_id in job_ids:
        try:
            job = FlaskJob.fetch(job_id, connection=state.connection, serializer=state.serializer)
        except NoSuchJobError:
            problems.append(f"no job with id {job_id!r}")
            continue
        assert isinstance(job, FlaskJob)
        try:
            action(job)
        except JobsError as exc:
            problems.append(str(exc))
            continue
        count += 1
        click.echo(done(job))
    target = job_ids[0] if len(job_ids) == 1 else f"{len(job_ids)} jobs"
    audit(name, target, count, "; ".join(problems) or None)
    if problems:
        raise click.ClickException("; ".join(problems))


@click.command("cancel")
@click.argument("job_ids", nargs=-1, required=True)
@with_appcontext
def cancel_command(job_ids: tuple[str, ...]) -> None:
    """Cancel queued, scheduled or deferred jobs: JOB_ID..."""
    _, state = app_state()
    _each_job(
        state, "cancel", job_ids, lambda job: cancel(state, job), lambda job: f"canceled {job.id}"
    )


@click.command("run-now")
@click.argument("job_ids", nargs=-1, required=True)
@with_appcontext
def run_now_command(job_ids: tuple[str, ...]) -> None:
    """Run scheduled jobs now: JOB_ID... (delayed ones, or ones waiting for a retry)."""
    _, state = app_state()
    _each_job(
        state,
        "run_now",
        job_ids,
        lambda job: run_now(state, job),
        lambda job: f"queued {job.id} on {job.origin} to run now (attempt {job.attempt})",
    )


@click.command("stop")
@click.argument("job_ids", nargs=-1, required=True)
@with_appcontext
def stop_command(job_ids: tuple[str, ...]) -> None:
    """Stop running jobs: JOB_ID... (the worker ends each as stopped; requeue it later)."""
    _, state = app_state()
    _each_job(
        state,
        "stop",
        job_ids,
        lambda job: stop(state, job),
        lambda job: f"asked worker {job.worker_name} to stop {job.id}",
    )


@click.command("purge")
@click.option("--failed", "failed", is_flag=True, required=True, help="Delete failed jobs.")
@click.option("--queue", default=None, help="Only this queue's failed jobs.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def purge_command(failed: bool, queue: str | None, yes: bool) -> None:
    """Delete failed jobs (their data and their entry in the failed registry)."""
    _, state = app_state()
    registries = _failed_registries(state, queue)
    total = sum(registry.count for registry in registries)
    if total == 0:
        click.echo("no failed jobs")
        return
    where = f"queue {queue!r}" if queue else "all queues"
    if not yes:
        click.confirm(f"Delete {total} failed job(s) from {where}?", abort=True)
    count = gone = 0
    with _progress(total, "Deleting failed jobs") as bar:
        for registry in registries:
            for job_id in registry.get_job_ids():
                try:
                    job = FlaskJob.fetch(
                        job_id, connection=state.connection, serializer=state.serializer
                    )
                    job.delete()
                    count += 1
                except NoSuchJobError:
                    registry.remove(job_id)
                    gone += 1
                bar.update(1)
    audit("delete", f"failed jobs of {queue or 'all queues'}", count)
    expired = f" ({gone} had expired: their entries were removed)" if gone else ""
    click.echo(f"deleted {count} failed job(s) from {where}{expired}")
