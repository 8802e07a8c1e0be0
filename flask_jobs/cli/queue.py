"""``flask jobs queue ...``: pause, resume or empty a queue (as the dashboard's queues page)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..ops.queues import empty_queue, known_queue, pause_queue, resume_queue
from .common import app_state, audit

__all__ = ["queue_group"]

queue_group = AppGroup("queue", help="Pause, resume or empty a queue.")


@queue_group.command("pause")
@click.argument("name")
def queue_pause_command(name: str) -> None:
    """Make our workers leave queue NAME's jobs alone until it is resumed.

    Jobs can still be enqueued to it; a plain ``rq worker`` does not know of
    pausing and keeps working it.
    """
    _, state = app_state()
    pause_queue(state, name)
    audit("pause_queue", name, 1)
    click.echo(f"queue {name} is paused: workers leave its jobs alone until it is resumed")


@queue_group.command("resume")
@click.argument("name")
def queue_resume_command(name: str) -> None:
    """Let our workers take queue NAME's jobs again."""
    _, state = app_state()
    resume_queue(state, name)
    audit("resume_queue", name, 1)
    click.echo(f"queue {name} is resumed")


@queue_group.command("empty")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def queue_empty_command(name: str, yes: bool) -> None:
    """Delete every job waiting in queue NAME (running, scheduled and failed jobs stay)."""
    _, state = app_state()
    count = state.queue(known_queue(state, name)).count
    if not yes:
        click.confirm(f"Delete the {count} job(s) waiting in queue {name}?", abort=True)
    deleted = empty_queue(state, name)
    audit("empty_queue", name, deleted)
    click.echo(f"queue {name} is emptied: {deleted} job(s) deleted")
