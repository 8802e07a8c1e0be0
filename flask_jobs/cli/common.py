"""What every ``flask jobs`` command shares: the group that turns our errors into one
clean line, the app's state, queue-name checks and plain-text tables."""

from __future__ import annotations

import getpass
from typing import Any

import click
import redis
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo

from ..errors import JobsError
from ..ops.audit import record
from ..state import JobsState

__all__ = ["JobsGroup", "app_state", "audit", "check_queue_names", "table"]


class JobsGroup(AppGroup):
    """Flask's command group, with every command's errors shown as one line, not a traceback.

    A `JobsError` (bad input, an unknown job...) and a Redis that cannot be reached end
    the command with ``Error: <what is wrong and how to fix it>`` and exit status 1,
    whichever command raised them: none can forget to.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; our errors become a `click.ClickException`."""
        try:
            return super().invoke(ctx)
        except JobsError as exc:
            raise click.ClickException(str(exc)) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            info = ctx.ensure_object(ScriptInfo)
            state: JobsState = info.load_app().extensions["jobs"]
            raise click.ClickException(str(state.connection_error(exc))) from exc


def app_state() -> tuple[Flask, JobsState]:
    """The current app and its flask-jobs state."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions["jobs"]
    assert isinstance(state, JobsState)
    return app, state


def audit(action: str, target: str | None, count: int, detail: str | None = None) -> None:
    """Record an action of this command in the audit log (who: the user at this terminal)."""
    app, state = app_state()
    try:
        actor = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        actor = "unknown"
    record(
        app, state, actor=actor, source="cli", action=action, target=target, count=count,
        detail=detail,
    )  # fmt: skip


def check_queue_names(state: JobsState, names: tuple[str, ...]) -> None:
    """A usage error naming the first of ``names`` that is not a valid queue name."""
    for name in names:
        try:
            state.queue(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="QUEUE") from exc


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """``rows`` as a plain-text table under ``headers`` (None shows as ``-``)."""
    cells = [headers, *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
