"""``flask jobs status``: queues with their jobs per state, and workers."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..ops.live import REGISTRIES, status_data
from .common import app_state, table

__all__ = ["status_command"]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """Show queues (jobs per state) and workers."""
    _, state = app_state()
    data = status_data(state)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    columns = ["queued", *REGISTRIES]
    click.echo(f"Redis: {data['redis']}\n")
    click.echo(
        table(
            ["queue", "state", *columns],
            [
                [q["name"], "paused" if q["paused"] else "active", *(q[c] for c in columns)]
                for q in data["queues"]
            ],
        )
    )
    paused = [q["name"] for q in data["queues"] if q["paused"]]
    if paused:
        click.echo(
            f"\nPaused: {', '.join(paused)}; workers leave their jobs alone until "
            "`flask jobs queue resume NAME`."
        )
    click.echo()
    if not data["workers"]:
        click.echo("No workers running. Start one with: flask jobs worker")
        return
    click.echo(
        table(
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
