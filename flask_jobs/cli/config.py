"""``flask jobs config``: the effective ``JOBS_*`` settings, with secrets masked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import click
from flask.cli import with_appcontext

from ..config import DEFAULTS
from ..redis.connection import redact_url
from .common import app_state

__all__ = ["config_command", "masked_config"]

#: Key names whose values are never shown, whatever JOBS_REDACT_KEYS says.
_SECRET_WORDS = ("password", "secret", "token", "api_key")


def _name_of(function: Any) -> str:
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"<function {module}:{name}>"


def _masked(value: Any, secret_words: tuple[str, ...]) -> Any:
    """``value`` fit to print: URLs without passwords, functions by name, secrets as ``***``."""
    if callable(value):
        return _name_of(value)
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {
            str(k): "***"
            if any(w in str(k).lower() for w in secret_words)
            else _masked(v, secret_words)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(v, secret_words) for v in value]
    return value


def masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``JOBS_*`` key of ``config``, masked for printing."""
    words = tuple({*_SECRET_WORDS, *(str(k).lower() for k in config.get("JOBS_REDACT_KEYS") or ())})
    keys = [*DEFAULTS, *sorted(k for k in config if k.startswith("JOBS_") and k not in DEFAULTS)]
    return {key: _masked(config.get(key), words) for key in keys}


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
def config_command(as_json: bool) -> None:
    """Print the effective JOBS_* settings (passwords masked, functions by name)."""
    app, state = app_state()
    # Functions named by import path (from the environment) show as the functions loaded.
    effective = {
        **app.config,
        "JOBS_DASHBOARD_AUTH": state.config.dashboard_auth,
        "JOBS_ON_FAILURE": list(state.config.on_failure),
    }
    shown = masked_config(effective)
    if as_json:
        click.echo(json.dumps(shown, indent=2, default=str))
        return
    width = max(len(key) for key in shown)
    for key, value in shown.items():
        click.echo(f"{key.ljust(width)} = {json.dumps(value, default=str)}")
    where = "embedded redis-server" if state.embedded is not None else "JOBS_REDIS_URL"
    click.echo(f"\n# Redis in use ({where}): {redact_url(state.redis_url)}")
