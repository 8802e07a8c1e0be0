"""The worker's log lines: ours at ``JOBS_LOG_LEVEL`` on stderr, RQ's own chatter kept quiet."""

from __future__ import annotations

import logging
import sys
from typing import Any

from .reporting import formatter

__all__ = ["configure_logging"]


def _point_at_stderr(handler: logging.StreamHandler[Any]) -> None:
    # Not setStream(): it flushes the old stream first, which fails if that one is closed.
    handler.acquire()
    try:
        handler.stream = sys.stderr
    finally:
        handler.release()


def configure_logging(level: str, log_format: str = "text") -> str:
    """Log our lines at ``level`` to stderr; keep RQ's own per-job chatter at WARNING."""
    logger = logging.getLogger("flask_jobs")
    ours: list[logging.Handler] = [h for h in logger.handlers if getattr(h, "_flask_jobs", False)]
    if not ours:
        ours = [logging.StreamHandler(sys.stderr)]
        ours[0]._flask_jobs = True  # type: ignore[attr-defined]
        logger.addHandler(ours[0])
    for handler in ours:
        handler.setFormatter(formatter(log_format))
        if isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stderr:
            _point_at_stderr(handler)  # stderr may have been replaced since (tests do)
    logger.setLevel(level)
    logger.propagate = False
    # RQ adds its stderr handler once per process; one made for a stream since closed
    # (an earlier in-process CLI run) would fail every log call of this worker.
    for name in ("rq.worker", "rq.scheduler", "rq"):
        for handler in logging.getLogger(name).handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                _point_at_stderr(handler)
    return "DEBUG" if level == "DEBUG" else "WARNING"
