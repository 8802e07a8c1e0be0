"""Chains, groups and chords: declared from signatures (``fetch.s(url)``), enqueued whole.

Every job of a workflow is enqueued at once, so every id is known up front: the first
steps on their queues, the others deferred behind RQ's dependencies (``depends_on``, a
``Dependency(allow_failure=...)`` for a chord's callback). A group's members also join
RQ's ``Group`` of the workflow's id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from rq.job import Dependency
from rq.utils import as_text

from ..enqueue import enqueue
from ..errors import ConfigurationError
from ..jobs.function import Signature
from ..jobs.limits import unique_key_for
from ..jobs.prepare import limit_fields, prepare
from ..keys import (
    META_WORKFLOW,
    META_WORKFLOW_INPUT,
    RQ_GROUPS_KEY,
    group_key,
    workflow_key,
)
from .handle import WORKFLOW_TTL, WorkflowHandle
from .passing import cancel_jobs

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = ["Chain", "Chord", "Group", "StateOwner", "enqueue_workflow"]

R = TypeVar("R")


class StateOwner(Protocol):
    """The `flask_jobs.Jobs` a workflow is enqueued with: it knows the current app's state."""

    def state(self) -> JobsState: ...


def _signatures(steps: Iterable[Any], what: str) -> list[Signature[Any]]:
    items = list(steps)
    for item in items:
        if not isinstance(item, Signature):
            raise ConfigurationError(
                f"{what} takes signatures such as fetch.s(url) or fetch.si(url), not {item!r}"
            )
    return items


class Chain(Generic[R]):
    """Steps run one after another; each gets the previous one's result first (``.s()``)."""

    kind = "chain"

    def __init__(self, owner: StateOwner, steps: Iterable[Signature[Any]]) -> None:
        self.owner = owner
        self.steps = _signatures(steps, "jobs.chain()")
        if not self.steps:
            raise ConfigurationError("jobs.chain() needs at least one step, e.g. fetch.s(url)")

    def enqueue(self) -> WorkflowHandle:
        """Enqueue every step (the first on its queue, the rest deferred); the chain's handle."""
        return enqueue_workflow(self.owner.state(), "chain", self.steps, None)


class Group:
    """Members run in parallel; their results come back in the order they were given."""

    kind = "group"

    def __init__(self, owner: StateOwner, members: Iterable[Signature[Any]]) -> None:
        self.owner = owner
        self.members = _signatures(members, "jobs.group()")
        if not self.members:
            raise ConfigurationError("jobs.group() needs at least one member, e.g. resize.s(1)")

    def enqueue(self) -> WorkflowHandle:
        """Enqueue every member; the group's handle."""
        return enqueue_workflow(self.owner.state(), "group", self.members, None)


class Chord(Generic[R]):
    """A group, then a callback called once with the list of the members' results."""

    kind = "chord"

    def __init__(
        self,
        owner: StateOwner,
        group: Group,
        callback: Signature[R],
        *,
        allow_failure: bool = False,
    ) -> None:
        if not isinstance(group, Group):
            raise ConfigurationError(
                f"jobs.chord() takes a jobs.group(...) first, not {group!r}: "
                "jobs.chord(jobs.group(a.s(1), a.s(2)), report.s())"
            )
        (self.callback,) = _signatures([callback], "jobs.chord()'s callback")
        self.owner = owner
        self.group = group
        #: Call back also when members failed (their results are None in the list).
        self.allow_failure = bool(allow_failure)

    def enqueue(self) -> WorkflowHandle:
        """Enqueue the members and the callback (deferred until every member ended)."""
        return enqueue_workflow(
            self.owner.state(),
            "chord",
            self.group.members,
            self.callback,
            allow_failure=self.allow_failure,
        )


def enqueue_workflow(
    state: JobsState,
    kind: str,
    steps: list[Signature[Any]],
    callback: Signature[Any] | None,
    *,
    allow_failure: bool = False,
) -> WorkflowHandle:
    """Check every step, record the workflow, then enqueue every step; its handle."""
    if state.config.eager:
        raise ConfigurationError(
            f"a {kind} needs Redis to pass results between its jobs; JOBS_EAGER runs jobs "
            "inline: call the functions directly in eager tests"
        )
    everything = [*steps, *([callback] if callback is not None else [])]
    for sig in everything:  # a bad argument or option anywhere enqueues nothing
        prepare(state.config, sig.path, sig.options, [(sig.args, sig.kwargs)])
        limit_fields(sig.path, sig.options, sig.args, sig.kwargs)
        if sig.options.unique or sig.options.unique_key is not None:
            key = sig.options.unique_key or unique_key_for(sig.path, sig.args, sig.kwargs)
            raise ConfigurationError(
                f"{sig.path} is unique (key {key!r}): a unique job cannot be a step of a "
                "workflow, whose steps wait for each other"
            )
    workflow_id = uuid.uuid4().hex
    ids = [str(uuid.uuid4()) for _ in steps]
    callback_id = str(uuid.uuid4()) if callback is not None else ""
    key = workflow_key(workflow_id)
    record: dict[Any, Any] = {
        "kind": kind,
        "members": json.dumps(ids),
        "callback": callback_id,
        "allow_failure": "1" if allow_failure else "0",
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    with state.connection.pipeline() as pipe:
        pipe.hset(key, mapping=record)
        pipe.expire(key, WORKFLOW_TTL)
        if kind != "chain":  # RQ's group of the members, by the workflow's id
            pipe.sadd(group_key(workflow_id), *ids)
            pipe.sadd(RQ_GROUPS_KEY, workflow_id)
        pipe.execute()
    for index, sig in enumerate(steps):
        role = "step" if kind == "chain" else "member"
        parents = [ids[index - 1]] if kind == "chain" and index > 0 else []
        _enqueue_step(state, sig, workflow_id, kind, index, role, ids[index], parents)
    if callback is not None:
        dependency = Dependency(jobs=ids, allow_failure=allow_failure)
        _enqueue_step(
            state, callback, workflow_id, kind, len(steps), "callback", callback_id, ids,
            collect=True, dependency=dependency,
        )  # fmt: skip
    # A step that failed before the later ones were enqueued found nothing to cancel.
    reason = state.connection.hget(key, "canceled")
    if reason:
        rest = [*ids, *([callback_id] if callback_id else [])]
        cancel_jobs(state.connection, rest, as_text(reason), serializer=state.serializer)
    return WorkflowHandle(state.connection, workflow_id, serializer=state.serializer)


def _enqueue_step(
    state: JobsState,
    sig: Signature[Any],
    workflow_id: str,
    kind: str,
    index: int,
    role: str,
    job_id: str,
    parents: list[str],
    *,
    collect: bool = False,
    dependency: Dependency | None = None,
) -> None:
    """Enqueue one job of a workflow, deferred behind ``parents`` when it has some."""
    meta = dict(sig.options.meta or {})
    meta[META_WORKFLOW] = {"id": workflow_id, "kind": kind, "index": index, "role": role}
    if parents and not sig.immutable:
        meta[META_WORKFLOW_INPUT] = {"from": parents, "collect": collect}
    if dependency is None and parents:
        dependency = Dependency(jobs=parents)
    options = sig.options.merged(job_id=job_id, depends_on=dependency, meta=meta, on_commit=False)
    enqueue(state, sig.path, sig.args, sig.kwargs, options)
