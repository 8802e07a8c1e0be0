"""Chains, groups and chords of jobs, and the calls each of their jobs makes around its run."""

from __future__ import annotations

from .canvas import Chain, Chord, Group, enqueue_workflow
from .handle import Progress, WorkflowHandle
from .passing import WORKFLOW_HOOKS, cancel_rest, prepare_call

__all__ = [
    "WORKFLOW_HOOKS",
    "Chain",
    "Chord",
    "Group",
    "Progress",
    "WorkflowHandle",
    "cancel_rest",
    "enqueue_workflow",
    "prepare_call",
]
