"""A traceback as an operator reads it: the job's own frames, ours and RQ's folded away."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Traceback", "split_traceback"]

#: A frame whose file is in one of these packages is the worker's, not the job's.
_OURS = re.compile(r"[/\\](?:flask_jobs|rq)[/\\]")
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line \d+')


@dataclass(frozen=True)
class Traceback:
    """The traceback without the worker's frames, and how many frames that left out."""

    user: str
    hidden: int


def split_traceback(text: str) -> Traceback:
    """``text`` with the frames of flask-jobs and RQ taken out (every other line kept)."""
    kept: list[str] = []
    hidden = 0
    skipping = False
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if frame is not None:
            skipping = bool(_OURS.search(frame.group("path")))
            hidden += skipping
        elif not line.startswith("    "):
            skipping = False  # the exception line, a chained traceback's header...
        if not skipping:
            kept.append(line)
    return Traceback(user="\n".join(kept), hidden=hidden)
