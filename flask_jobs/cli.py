"""The ``flask jobs`` command group, registered by ``init_app``."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo
from rq.exceptions import NoSuchJobError
from rq.registry import FailedJobRegistry

from .actions import cancel, requeue, requeue_failed
from .errors import JobsError
from .namespace import claim_database
from .rq_job import FlaskJob
from .scheduler import Scheduler
from .state import REGISTRIES, JobsState, redact_url
from .status import queue_names, status_data
from .supervisor import Supervisor
from .worker import APP_ENV, build_worker, configure_logging

__all__ = ["jobs_cli"]

F = TypeVar("F", bound=Callable[..., Any])

jobs_cli = AppGroup("jobs", help="Run workers and manage background jobs (flask-jobs).")


def _state() -> tuple[Flask, JobsState]:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions["jobs"]
    assert isinstance(state, JobsState)
    return app, state


def _clean_errors(command: F) -> F:
    """Show our errors and Redis outages as one line and a non-zero exit, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except JobsError as exc:
            raise click.ClickException(str(exc)) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            _, state = _state()
            raise click.ClickException(str(state.connection_error(exc))) from exc

    return wrapper  # type: ignore[return-value]


def _check_queue_names(state: JobsState, names: tuple[str, ...]) -> None:
    for name in names:
        try:
            state.queue(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="QUEUE") from exc


@jobs_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes to run under one supervisor [default: JOBS_WORKER_CONCURRENCY].",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Exit (or, under --concurrency, restart) a worker process after this many jobs.",
)
@click.option(
    "--worker-class",
    type=click.Choice(["lean", "fork", "simple", "spawn"]),
    default=None,
    help="lean: jobs in the worker process, 2 Redis round trips each; fork: a fresh process "
    "per job; simple: RQ's loop in the worker process; spawn: no fork() "
    "[default: JOBS_WORKER_CLASS].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Jobs at a time per lean worker process; only jobs declared @thread_safe share it "
    "[default: JOBS_WORKER_THREADS].",
)
@click.option("--name", default=None, help="Worker name (suffixed -1, -2... under --concurrency).")
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run the periodic-job scheduler, in a process of its own beside the workers.",
)
@_clean_errors
def worker_command(
    queues: tuple[str, ...],
    burst: bool,
    concurrency: int | None,
    max_jobs: int | None,
    worker_class: str | None,
    threads: int | None,
    name: str | None,
    with_scheduler: bool,
) -> None:
    """Run a worker on QUEUE... (default: JOBS_QUEUES, highest priority first).

    SIGTERM or Ctrl-C finishes the current job and exits (warm shutdown); a
    second one stops at once (cold shutdown).
    """
    app, state = _state()
    _check_queue_names(state, queues)
    rq_level = configure_logging(state.config.log_level, state.config.log_format)
    info = click.get_current_context().find_object(ScriptInfo)
    if info is not None and info.app_import_path:
        os.environ[APP_ENV] = info.app_import_path  # for spawned work horses
    state.connection.ping()
    claim_database(state)
    concurrency = concurrency or state.config.worker_concurrency
    kind = worker_class or state.config.worker_class

    def run_child(index: int) -> int:
        child_name = f"{name}-{index}" if name and index else name
        worker = build_worker(
            app, state, queues, worker_class=kind, name=child_name, threads=threads
        )
        click.echo(
            f"flask-jobs worker {worker.name} ({kind}, pid {os.getpid()}) on "
            f"{', '.join(worker.queue_names())} at {redact_url(state.redis_url)}",
            err=True,
        )
        worker.work(burst=burst, max_jobs=max_jobs, with_scheduler=True, logging_level=rq_level)
        return 0

    def run_scheduler() -> int:
        _run_scheduler(app, state)
        return 0

    if concurrency == 1 and not with_scheduler:
        run_child(0)
        return
    extra = run_scheduler if with_scheduler else None
    sys.exit(Supervisor(run_child, concurrency, burst=burst, extra=extra).run())


def _run_scheduler(app: Flask, state: JobsState) -> None:
    scheduler = Scheduler(app, state)

    def stop(signum: int, frame: Any) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(
        f"flask-jobs scheduler {scheduler.token} (pid {os.getpid()}) with "
        f"{len(state.schedules())} schedule(s) at {redact_url(state.redis_url)}",
        err=True,
    )
    scheduler.run()


@jobs_cli.command("scheduler")
@_clean_errors
def scheduler_command() -> None:
    """Run the scheduler: enqueue periodic jobs (JOBS_SCHEDULE, @jobs.periodic) when due.

    Run as many as you like, on any hosts: one leads, the others stand by and
    take over within seconds if it dies. SIGTERM or Ctrl-C stops it.
    """
    app, state = _state()
    configure_logging(state.config.log_level, state.config.log_format)
    state.connection.ping()
    claim_database(state)
    _run_scheduler(app, state)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


@jobs_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@_clean_errors
def status_command(as_json: bool) -> None:
    """Show queues (jobs per state) and workers."""
    _, state = _state()
    data = status_data(state)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    columns = ["queued", *REGISTRIES]
    click.echo(f"Redis: {data['redis']}\n")
    click.echo(
        _table(["queue", *columns], [[q["name"], *(q[c] for c in columns)] for q in data["queues"]])
    )
    click.echo()
    if not data["workers"]:
        click.echo("No workers running. Start one with: flask jobs worker")
        return
    click.echo(
        _table(
            ["worker", "state", "queues", "current job", "host", "pid", "ok", "failed"],
            [
                [
                    w["name"],
                    w["state"],
                    ",".join(w["queues"]),
                    w["current_job"],
                    w["host"],
                    w["pid"],
                    w["successful_jobs"],
                    w["failed_jobs"],
                ]
                for w in data["workers"]
            ],
        )
    )


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


@jobs_cli.command("enqueue")
@click.argument("path")
@click.option("--args", "args_json", default=None, help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments as a JSON object.")
@click.option("--queue", default=None, help="Queue to use instead of the job's own.")
@_clean_errors
def enqueue_command(
    path: str, args_json: str | None, kwargs_json: str | None, queue: str | None
) -> None:
    """Enqueue the job at import path PATH (``package.module:function``); prints its id."""
    _, state = _state()
    args = _json_option(args_json, list, "--args")
    kwargs = _json_option(kwargs_json, dict, "--kwargs")
    if queue is not None:
        _check_queue_names(state, (queue,))
    call = state.jobs.function(path).options(origin="cli")
    if queue is not None:
        call = call.options(queue=queue)
    job = call.enqueue(*args, **kwargs)
    click.echo(job.id)


def _failed_registries(state: JobsState, queue: str | None) -> list[FailedJobRegistry]:
    names = [queue] if queue else queue_names(state)
    return [FailedJobRegistry(queue=state.queue(name)) for name in names]


@jobs_cli.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Requeue every failed job.")
@click.option("--queue", default=None, help="With --failed: only this queue's failed jobs.")
@_clean_errors
def requeue_command(job_ids: tuple[str, ...], all_failed: bool, queue: str | None) -> None:
    """Put failed (or stopped, canceled) jobs back on their queue: JOB_ID... or --failed."""
    _, state = _state()
    if bool(job_ids) == all_failed:
        raise click.UsageError("give job ids or --failed (not both)")
    if queue is not None and not all_failed:
        raise click.UsageError("--queue goes with --failed")
    if all_failed:
        names = [queue] if queue else queue_names(state)
        count = sum(requeue_failed(state, name) for name in names)
        click.echo(f"requeued {count} failed job(s)")
        return
    _each_job(
        state,
        job_ids,
        lambda job: requeue(state, job),
        lambda job: f"requeued {job.id} on {job.origin} (attempt {job.attempt})",
    )


def _each_job(
    state: JobsState,
    job_ids: tuple[str, ...],
    action: Callable[[FlaskJob], object],
    done: Callable[[FlaskJob], str],
) -> None:
    """Apply ``action`` to each job; report every problem at the end, in one line."""
    problems = []
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
        click.echo(done(job))
    if problems:
        raise click.ClickException("; ".join(problems))


@jobs_cli.command("cancel")
@click.argument("job_ids", nargs=-1, required=True)
@_clean_errors
def cancel_command(job_ids: tuple[str, ...]) -> None:
    """Cancel queued, scheduled or deferred jobs: JOB_ID..."""
    _, state = _state()
    _each_job(state, job_ids, lambda job: cancel(state, job), lambda job: f"canceled {job.id}")


@jobs_cli.command("purge")
@click.option("--failed", "failed", is_flag=True, required=True, help="Delete failed jobs.")
@click.option("--queue", default=None, help="Only this queue's failed jobs.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_clean_errors
def purge_command(failed: bool, queue: str | None, yes: bool) -> None:
    """Delete failed jobs (their data and their entry in the failed registry)."""
    _, state = _state()
    registries = _failed_registries(state, queue)
    total = sum(registry.count for registry in registries)
    if total == 0:
        click.echo("no failed jobs")
        return
    where = f"queue {queue!r}" if queue else "all queues"
    if not yes:
        click.confirm(f"Delete {total} failed job(s) from {where}?", abort=True)
    count = 0
    for registry in registries:
        for job_id in registry.get_job_ids():
            try:
                job = FlaskJob.fetch(
                    job_id, connection=state.connection, serializer=state.serializer
                )
                job.delete()
            except NoSuchJobError:
                registry.remove(job_id)
            count += 1
    click.echo(f"deleted {count} failed job(s)")


@jobs_cli.command("embedded")
@click.option("--stop", is_flag=True, help="Shut the embedded redis-server down (saving its data).")
@_clean_errors
def embedded_command(stop: bool) -> None:
    """Show (or stop) the embedded redis-server used when JOBS_REDIS_URL is not set."""
    _, state = _state()
    embedded = state.embedded
    if embedded is None:
        raise click.ClickException(
            f"JOBS_REDIS_URL is set ({redact_url(state.redis_url)}): "
            "no embedded redis-server in use"
        )
    if stop:
        click.echo("stopped" if embedded.stop() else "not running")
        return
    running = embedded.is_running()
    click.echo(f"socket: {embedded.socket_path}")
    click.echo(f"data:   {embedded.folder}")
    click.echo(f"state:  {'running, pid ' + str(embedded.pid) if running else 'not running'}")


# The command groups of the other modules register themselves on import.
from . import cli_config, cli_history, cli_schedule  # noqa: E402, F401
