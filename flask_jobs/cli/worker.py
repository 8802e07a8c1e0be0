"""``flask jobs worker``, ``flask jobs scheduler`` and ``flask jobs embedded``: the
processes of a deployment, and the embedded redis-server of development runs."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo, with_appcontext

from ..jobs.app import APP_ENV
from ..outbox import start_relay_process, stop_relay_process
from ..redis.claim import claim_database
from ..redis.connection import redact_url
from ..scheduler.declarations import app_schedules
from ..scheduler.loop import Scheduler
from ..state import JobsState
from ..worker.build import build_worker, check_worker_class
from ..worker.logs import configure_logging
from ..worker.memory import RECYCLE_EXIT
from ..worker.metrics import prepare_metrics
from ..worker.supervisor import Supervisor
from .common import app_state, check_queue_names

__all__ = ["embedded_command", "scheduler_command", "worker_command"]


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option(
    "-p",
    "--processes",
    "-c",
    "--concurrency",
    "concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes to run under one supervisor (--concurrency is the same) "
    "[default: JOBS_WORKER_CONCURRENCY].",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Exit (or, under --processes, restart) a worker process after this many jobs.",
)
@click.option(
    "--max-memory",
    type=click.IntRange(min=1),
    default=None,
    metavar="MB",
    help="Replace a worker process whose resident memory is past MB after a job (the job "
    "finishes; a fresh process takes over).",
)
@click.option(
    "--worker-class",
    default=None,
    metavar="default|fork|rq",
    help="default: our loop, jobs in the worker process (thread-safe ones in --threads "
    "threads, async def ones on an event loop); fork: our loop, a fresh process per job; "
    "rq: RQ's own Worker with our job class (slower) [default: JOBS_WORKER_CLASS].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Jobs at a time per worker process; only jobs declared @thread_safe share it "
    "[default: JOBS_WORKER_THREADS].",
)
@click.option("--name", default=None, help="Worker name (suffixed -1, -2... under --processes).")
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run the periodic-job scheduler, in a process of its own beside the workers.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    metavar="PORT",
    help="Serve Prometheus metrics of the worker processes on PORT, one port for all of "
    "them [default: JOBS_WORKER_METRICS_PORT; unset: off].",
)
@with_appcontext
def worker_command(
    queues: tuple[str, ...],
    burst: bool,
    concurrency: int | None,
    max_jobs: int | None,
    max_memory: int | None,
    worker_class: str | None,
    threads: int | None,
    name: str | None,
    with_scheduler: bool,
    metrics_port: int | None,
) -> None:
    """Run a worker on QUEUE... (default: JOBS_QUEUES, highest priority first).

    SIGTERM or Ctrl-C finishes the current job and exits (warm shutdown); a
    second one stops at once (cold shutdown).
    """
    app, state = app_state()
    check_queue_names(state, queues)
    rq_level = configure_logging(state.config.log_level, state.config.log_format)
    info = click.get_current_context().find_object(ScriptInfo)
    if info is not None and info.app_import_path:
        os.environ[APP_ENV] = info.app_import_path  # for spawned work horses
    state.connection.ping()
    claim_database(state.connection, state.app_name, state.redis_url)
    concurrency = concurrency or state.config.worker_concurrency
    kind = check_worker_class(worker_class or state.config.worker_class)

    supervised = concurrency > 1 or with_scheduler or max_memory is not None
    supervisor = f"{socket.gethostname()}.{os.getpid()}" if supervised else None
    metrics_port = metrics_port or state.config.worker_metrics_port
    shared = None
    if metrics_port is not None:
        # Checked here, once: a child that failed its start would be restarted for ever.
        shared = prepare_metrics(metrics_port, kind, processes=supervised)
        state.config = dataclasses.replace(state.config, worker_metrics_port=metrics_port)

    def run_child(index: int) -> int:
        child_name = f"{name}-{index}" if name and index else name
        worker = build_worker(
            app,
            state,
            queues,
            worker_class=kind,
            name=child_name,
            threads=threads,
            max_memory=max_memory,
            supervisor=supervisor,
        )
        click.echo(
            f"flask-jobs worker {worker.name} ({kind}, pid {os.getpid()}) on "
            f"{', '.join(worker.queue_names())} at {redact_url(state.redis_url)}",
            err=True,
        )
        worker.work(burst=burst, max_jobs=max_jobs, with_scheduler=True, logging_level=rq_level)
        return RECYCLE_EXIT if getattr(worker, "recycled", False) else 0

    def run_scheduler() -> int:
        _run_scheduler(app, state)
        return 0

    if not supervised:
        run_child(0)
        return
    extra = run_scheduler if with_scheduler else None
    try:
        code = Supervisor(run_child, concurrency, burst=burst, extra=extra).run()
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)
    sys.exit(code)


def _run_scheduler(app: Flask, state: JobsState) -> None:
    relay = start_relay_process(app, state, "scheduler") if state.config.outbox else None
    try:
        _schedule(app, state)
    finally:
        if relay is not None:
            stop_relay_process(relay)


def _schedule(app: Flask, state: JobsState) -> None:
    scheduler = Scheduler(app, state)

    def stop(signum: int, frame: Any) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(
        f"flask-jobs scheduler {scheduler.token} (pid {os.getpid()}) with "
        f"{len(app_schedules(state))} schedule(s) at {redact_url(state.redis_url)}",
        err=True,
    )
    scheduler.run()


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler: enqueue periodic jobs (JOBS_SCHEDULE, @jobs.periodic) when due.

    Run as many as you like, on any hosts: one leads, the others stand by and
    take over within seconds if it dies. SIGTERM or Ctrl-C stops it.
    """
    app, state = app_state()
    configure_logging(state.config.log_level, state.config.log_format)
    state.connection.ping()
    claim_database(state.connection, state.app_name, state.redis_url)
    _run_scheduler(app, state)


@click.command("embedded")
@click.option("--stop", is_flag=True, help="Shut the embedded redis-server down (saving its data).")
@with_appcontext
def embedded_command(stop: bool) -> None:
    """Show (or stop) the embedded redis-server used when JOBS_REDIS_URL is not set."""
    _, state = app_state()
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
