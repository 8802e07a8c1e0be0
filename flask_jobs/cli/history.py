"""``flask jobs history ...``: create, purge and show the job-history table."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click
from flask.cli import AppGroup

from ..durations import parse_duration
from ..history.query import HistoryQuery
from ..ops.audit import AUDIT_TABLE, audit_table
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
    audit_table(state.history.table.metadata).create(state.history.engine(app), checkfirst=True)
    click.echo(f"history table {state.history.table.name} is ready (and {AUDIT_TABLE})")


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


#: How much of an error the attempts table shows (the full one follows the table).
ERROR_WIDTH = 60


def _stamp(moment: Any) -> str | None:
    """A time to the second, in UTC, saying so."""
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite may hand back text
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return str(moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _cut(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` with an ellipsis only when it was longer."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _error(row: dict[str, Any]) -> str:
    return ": ".join(filter(None, [row["exc_type"], row["exc_message"]]))


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (_stamp(value) if key.endswith("_at") else value)
        for key, value in row.items()
        if key != "status_rank"
    }


@history_group.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print every attempt as JSON.")
@click.option("--traceback", "tracebacks", is_flag=True, help="Print each failure's traceback.")
def history_show_command(job_id: str, as_json: bool, tracebacks: bool) -> None:
    """Show every recorded attempt of JOB_ID: what it ran, with what, and how each attempt ended."""
    app, state = app_state()
    rows = HistoryQuery(state.history, app).get(job_id)
    if not rows:
        raise click.ClickException(f"no history for job {job_id!r}")
    if as_json:
        click.echo(json.dumps([_json_row(r) for r in rows], indent=2, default=str))
        return
    latest = rows[-1]
    with_args = next((r for r in reversed(rows) if r["args"] is not None), latest)
    cut = " (cut short by JOBS_HISTORY_MAX_ARG_BYTES)" if with_args["args_truncated"] else ""
    for label, value in (
        ("job", job_id),
        ("function", latest["func"]),
        ("queue", latest["queue"]),
        ("origin", latest["origin"]),
        ("args", (with_args["args"] or "-") + cut),
        ("kwargs", with_args["kwargs"] or "-"),
        ("enqueued", _stamp(latest["enqueued_at"])),
    ):
        click.echo(f"{label + ':':<10}{value if value is not None else '-'}")
    click.echo()
    click.echo(
        table(
            ["attempt", "status", "started", "ended", "run s", "worker", "error"],
            [
                [
                    r["attempt"],
                    r["status"],
                    _stamp(r["started_at"]),
                    _stamp(r["ended_at"]),
                    None if r["run_seconds"] is None else f"{r['run_seconds']:.3f}",
                    r["worker"],
                    _cut(" ".join(filter(None, [r["exc_type"], r["exc_message"]])), ERROR_WIDTH)
                    or None,
                ]
                for r in rows
            ],
        )
    )
    for r in rows:
        if r["exc_type"] or r["exc_message"]:
            click.echo(f"\nattempt {r['attempt']} error: {_error(r)}")
            if tracebacks and r["traceback"]:
                click.echo(r["traceback"].rstrip())
    if not tracebacks and any(r["traceback"] for r in rows):
        click.echo("\n(--traceback prints each failure's traceback)")
