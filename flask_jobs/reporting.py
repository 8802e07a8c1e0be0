"""What the host app's hooks receive (their documented import paths): the context of
``JOBS_ON_FAILURE`` hooks, and the incident of ``JOBS_ON_ALERT`` hooks."""

from __future__ import annotations

from .history.incidents import Alert
from .worker.reporting import FailureContext

__all__ = ["Alert", "FailureContext"]
