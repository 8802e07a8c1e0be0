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

from rq.callbacks import Callback
from rq.job import Dependency, JobStatus
from rq.utils import as_text

from ..enqueue import enqueue
from ..errors import ConfigurationError
from ..jobs.eager import eager_job
from ..jobs.flask_job import FlaskJob
from ..jobs.function import Signature
from ..jobs.limits import unique_key_for
from ..jobs.prepare import limit_fields, prepare
from ..keys import (
    META_WORKFLOW,
    META_WORKFLOW_CANCELED,
    META_WORKFLOW_INPUT,
    RQ_GROUPS_KEY,
    group_key,
    workflow_key,
)
from .handle import WORKFLOW_TTL, WorkflowHandle
from .passing import cancel_jobs, step_abandoned

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = ["Chain", "Chord", "Group", "StateOwner", "enqueue_workflow", "run_eagerly"]

R = TypeVar("R")
#: RQ's failure callback of every step: cancels the rest when a step is found abandoned.
ON_FAILURE = Callback(f"{step_abandoned.__module__}.{step_abandoned.__name__}")


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
    if state.config.eager:
        jobs = run_eagerly(state, workflow_id, kind, steps, callback, [*ids, callback_id],
                           allow_failure=allow_failure)  # fmt: skip
        return WorkflowHandle.of_eager_jobs(workflow_id, record, jobs)
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


def _step_meta(
    sig: Signature[Any], workflow_id: str, kind: str, index: int, role: str
) -> dict[str, Any]:
    meta = dict(sig.options.meta or {})
    meta[META_WORKFLOW] = {"id": workflow_id, "kind": kind, "index": index, "role": role}
    return meta


def run_eagerly(
    state: JobsState,
    workflow_id: str,
    kind: str,
    steps: list[Signature[Any]],
    callback: Signature[Any] | None,
    ids: list[str],
    *,
    allow_failure: bool,
) -> list[FlaskJob]:
    """Run a workflow's jobs inline, in order (``JOBS_EAGER``), passing results as the
    workers would; a failure cancels what it would cancel there."""
    done: list[FlaskJob] = []
    reason = ""
    role = "step" if kind == "chain" else "member"
    for index, sig in enumerate(steps):
        if reason and kind == "chain":
            done.append(_canceled_eagerly(state, sig, ids[index], reason))
            continue
        args = sig.args
        if kind == "chain" and index > 0 and not sig.immutable:
            args = (done[-1].return_value(), *sig.args)
        meta = _step_meta(sig, workflow_id, kind, index, role)
        job = _run_step_eagerly(state, sig, args, meta, ids[index])
        if job.get_status(refresh=False) != JobStatus.FINISHED and not reason:
            reason = f"{kind} step {index + 1} ({job.id}) failed"
        done.append(job)
    if callback is not None:
        meta = _step_meta(callback, workflow_id, kind, len(steps), "callback")
        if reason and not allow_failure:
            done.append(_canceled_eagerly(state, callback, ids[-1], reason))
        else:
            results = [job.return_value() for job in done]
            args = callback.args if callback.immutable else (results, *callback.args)
            done.append(_run_step_eagerly(state, callback, args, meta, ids[-1]))
    return done


def _run_step_eagerly(
    state: JobsState, sig: Signature[Any], args: tuple[Any, ...], meta: dict[str, Any], job_id: str
) -> FlaskJob:
    options = sig.options.merged(job_id=job_id, meta=meta, on_commit=False)
    return enqueue(state, sig.path, args, sig.kwargs, options)


def _canceled_eagerly(state: JobsState, sig: Signature[Any], job_id: str, reason: str) -> FlaskJob:
    """The job of a step an eager workflow never ran, canceled with ``reason``."""
    job = eager_job(
        sig.path.replace(":", "."),
        sig.args,
        sig.kwargs,
        job_id=job_id,
        queue=sig.options.queue or state.config.queues[0],
        meta={**(sig.options.meta or {}), META_WORKFLOW_CANCELED: reason},
        description=sig.options.description,
        serializer=state.serializer,
    )
    job._jobs_eager = True
    job._status = JobStatus.CANCELED
    return job


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
    meta = _step_meta(sig, workflow_id, kind, index, role)
    if parents and not sig.immutable:
        meta[META_WORKFLOW_INPUT] = {"from": parents, "collect": collect}
    if dependency is None and parents:
        dependency = Dependency(jobs=parents)
    options = sig.options.merged(
        job_id=job_id, depends_on=dependency, meta=meta, on_commit=False, on_failure=ON_FAILURE
    )
    enqueue(state, sig.path, sig.args, sig.kwargs, options)
