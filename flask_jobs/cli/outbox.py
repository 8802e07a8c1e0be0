"""``flask jobs outbox status|relay``: what waits in the outbox, and a relay run by hand."""

from __future__ import annotations

import signal
from datetime import datetime, timezone
from typing import Any

import click
from flask.cli import with_appcontext

from ..outbox import OutboxRelay, outbox_status
from ..worker.logs import configure_logging
from .common import app_state

__all__ = ["outbox_group"]


@click.group("outbox")
def outbox_group() -> None:
    """The outbox (JOBS_OUTBOX): jobs committed with your data, on their way to Redis."""


def _check() -> None:
    _, state = app_state()
    if state.outbox_table is None:
        raise click.ClickException("no outbox: flask-jobs has no database (Jobs(app, db=db))")


@outbox_group.command("status")
@with_appcontext
def status_command() -> None:
    """How many jobs wait in the outbox table, and the age of the oldest."""
    _check()
    _, state = app_state()
    status = outbox_status(state)
    age = "-"
    if status.oldest is not None:
        age = f"{(datetime.now(timezone.utc) - status.oldest).total_seconds():.1f}s"
    click.echo(f"waiting: {status.waiting}")
    click.echo(f"oldest:  {age}")
    click.echo(f"outbox:  {'on' if state.config.outbox else 'off'} (JOBS_OUTBOX)")


@outbox_group.command("relay")
@click.option("--once", is_flag=True, help="Relay what waits now, then exit.")
@with_appcontext
def relay_command(once: bool) -> None:
    """Move committed outbox rows to Redis (workers and the scheduler run one already)."""
    _check()
    app, state = app_state()
    configure_logging(state.config.log_level, state.config.log_format)
    relay = OutboxRelay(app, state, name="cli")
    if once:
        while relay.relay_once():
            pass
        click.echo(f"relayed {relay.relayed} job(s)")
        return

    def stop(signum: int, frame: Any) -> None:
        relay.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay.run()
    click.echo(f"relayed {relay.relayed} job(s)")
