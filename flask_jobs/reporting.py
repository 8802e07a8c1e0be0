"""The context ``JOBS_ON_FAILURE`` hooks receive (its documented import path)."""

from __future__ import annotations

from .worker.reporting import FailureContext

__all__ = ["FailureContext"]
