"""``flask jobs history ...``: create, purge and show the job-history table."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..durations import parse_duration
from ..history.query import HistoryQuery
from .common import app_state, table

__all__ = ["history_group"]


history_group = AppGroup(
    "history", help="The job history table: create it, purge it, show a job's attempts."
)


@history_group.command("init")
def history_init_command() -> None:
    """Create the history table (for apps without migrations)."""
    app, state = app_state()
    state.history.create(app)
    click.echo(f"history table {state.history.table.name} is ready")


@history_group.command("purge")
@click.option(
    "--older-than",
    default=None,
    help="Delete rows that ended longer ago than this, e.g. 30d [default: JOBS_HISTORY_RETENTION].",
)
def history_purge_command(older_than: str | None) -> None:
    """Delete old history rows, in batches."""
    app, state = app_state()
    if older_than is None:
        if state.history_retention is None:
            raise click.UsageError("give --older-than (JOBS_HISTORY_RETENTION is not set)")
        age = state.history_retention
    else:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    deleted = state.history.purge(app, age)
    click.echo(f"deleted {deleted} history row(s) older than {age}")


@history_group.command("show")
@click.argument("job_id")
def history_show_command(job_id: str) -> None:
    """Show every recorded attempt of JOB_ID."""
    app, state = app_state()
    rows = HistoryQuery(state.history, app).get(job_id)
    if not rows:
        raise click.ClickException(f"no history for job {job_id!r}")
    click.echo(
        table(
            ["attempt", "status", "function", "queue", "started", "run s", "worker", "error"],
            [
                [
                    r["attempt"],
                    r["status"],
                    r["func"],
                    r["queue"],
                    r["started_at"],
                    None if r["run_seconds"] is None else f"{r['run_seconds']:.3f}",
                    r["worker"],
                    " ".join(filter(None, [r["exc_type"], (r["exc_message"] or "")[:60]])) or None,
                ]
                for r in rows
            ],
        )
    )
