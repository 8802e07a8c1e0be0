"""The benchmark jobs for plain RQ workers (RQ's defaults: pickle serializer, queue "default")."""

from __future__ import annotations

import marks


def noop(i: int, n: int = 0) -> None:
    """Do nothing."""
    marks.noop(i, n)


def sleep10(i: int, n: int = 0) -> None:
    """Sleep 10 ms."""
    marks.sleep10(i, n)


def latency(sent: float) -> None:
    """Report the enqueue-to-start latency."""
    marks.latency(sent)
