"""``flask jobs schedule ...``: list, pause, resume and run periodic jobs."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup

from ..ops.schedules import with_last_runs
from ..scheduler.control import ScheduleControl
from .common import app_state, audit, table

__all__ = ["schedule_group"]


schedule_group = AppGroup("schedule", help="List, pause, resume or run periodic jobs.")


def _when(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@schedule_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def schedule_list_command(as_json: bool) -> None:
    """Every schedule: trigger, next run, last run and its outcome, paused."""
    app, state = app_state()
    rows = ScheduleControl(app, state).list()
    with_last_runs(app, state, rows)
    if as_json:
        data = [
            {**row, "next_run": _when(row["next_run"]), "last_run": _when(row["last_run"])}
            for row in rows
        ]
        click.echo(json.dumps(data, indent=2))
        return
    if not rows:
        click.echo("No schedules. Declare them in JOBS_SCHEDULE or with @jobs.periodic.")
        return
    click.echo(
        table(
            ["name", "when", "next run", "last run", "outcome", "state"],
            [
                [
                    row["name"],
                    row["trigger"],
                    _when(row["next_run"]),
                    _when(row["last_run"]),
                    row["last_outcome"],
                    "paused"
                    if row["paused"]
                    else ("disabled" if not row["enabled"] else "active")
                    + (f", {row['missed']} missed" if row["missed"] else "")
                    + (f", {row['skipped']} skipped (still running)" if row.get("skipped") else ""),
                ]
                for row in rows
            ],
        )
    )


@schedule_group.command("pause")
@click.argument("name")
def schedule_pause_command(name: str) -> None:
    """Stop firing NAME until resumed (survives restarts)."""
    app, state = app_state()
    ScheduleControl(app, state).pause(name)
    audit("pause_schedule", name, 1)
    click.echo(f"paused {name}")


@schedule_group.command("resume")
@click.argument("name")
def schedule_resume_command(name: str) -> None:
    """Fire NAME again, from now on."""
    app, state = app_state()
    ScheduleControl(app, state).resume(name)
    audit("resume_schedule", name, 1)
    click.echo(f"resumed {name}")


@schedule_group.command("run")
@click.argument("name")
def schedule_run_command(name: str) -> None:
    """Enqueue NAME's job now, outside its timetable; prints the job id."""
    app, state = app_state()
    job_id = ScheduleControl(app, state).run(name)
    audit("run_schedule", name, 1, f"enqueued job {job_id}")
    click.echo(job_id)
