"""Calling the host app's hooks (``JOBS_ON_ALERT``...): each one, and none may break us."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["call_hooks"]

log = logging.getLogger("flask_jobs.hooks")


def call_hooks(hooks: tuple[Callable[..., Any], ...], context: Any, *, setting: str) -> int:
    """Call every hook with ``context``; one that raises is logged and skipped. How many ran."""
    ran = 0
    for hook in hooks:
        try:
            hook(context)
        except Exception:
            log.exception(
                "%s hook %s raised; carrying on", setting, getattr(hook, "__qualname__", hook)
            )
        else:
            ran += 1
    return ran
