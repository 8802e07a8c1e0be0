"""The RQ job class our workers use: RQ's ``Job`` plus the app context, retry policies,
attempts and eager runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar, Protocol

from flask import has_app_context
from rq.exceptions import InvalidJobOperation
from rq.job import Job as RQJob
from rq.job import JobStatus

from ..errors import UnknownJobError
from ..keys import META_WORKFLOW
from .app import job_app
from .retry import Retry, RetryPolicy

__all__ = [
    "META_ORIGIN",
    "META_PROGRESS",
    "META_REQUEUES",
    "META_RETRY",
    "META_SOFT_TIMEOUT",
    "FlaskJob",
    "HeldStatus",
    "JobStatus",
    "StepHooks",
]

#: Keys flask-jobs keeps in ``job.meta``.
META_RETRY = "retry_policy"
META_ORIGIN = "origin"
META_PROGRESS = "progress"
META_REQUEUES = "requeues"
#: Seconds after which the job is asked to stop (``soft_timeout=``).
META_SOFT_TIMEOUT = "soft_timeout"


class HeldStatus(str, Enum):
    """What `FlaskJob.get_status` says of a job enqueued inside a database transaction."""

    #: Held until the transaction commits (in memory, or as a row of the outbox).
    PENDING_COMMIT = "pending_commit"
    #: Committed to the outbox table; the relay has not put it on its queue yet.
    IN_OUTBOX = "in_outbox"
    #: Never enqueued: its transaction (or savepoint) rolled back, or Redis was down at commit.
    DROPPED = "dropped"


class StepHooks(Protocol):
    """What a job of a chain, group or chord does around its run (`flask_jobs.workflows`,
    handed in by the extension: the job class sits below the workflows)."""

    def prepare_call(
        self,
        connection: Any,
        job_id: str,
        meta: Mapping[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        serializer: Any = None,
    ) -> tuple[tuple[Any, ...], dict[str, Any]]: ...

    def failed_for_good(
        self,
        connection: Any,
        job_id: str,
        meta: Mapping[str, Any],
        exc: BaseException,
        *,
        serializer: Any = None,
    ) -> list[str]: ...


#: The date fields of RQ's job hash.
_DATES = (b"created_at", b"enqueued_at", b"started_at", b"ended_at", b"last_heartbeat")
#: Blank jobs `FlaskJob.claimed` copies, by class, connection and serializer.
_BLANKS: dict[tuple[Any, int, int], dict[str, Any]] = {}


def _date(text: str) -> datetime:
    """A date as RQ writes it (``2026-12-05T16:34:01.123456Z``), as RQ reads it: in UTC."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=timezone.utc)


class FlaskJob(RQJob):
    """An ``rq.job.Job`` that knows its retry policy and attempt number.

    The data layout is RQ's own: a plain RQ worker runs these jobs too, with
    the fixed intervals of `Retry.to_rq` instead of jittered ones, and (given
    ``--job-class flask_jobs.FlaskJob``) inside the app context of the app that
    ``FLASK_APP`` names.
    """

    #: The exception type of the failed attempt, set by our worker before it
    #: decides whether to retry (RQ's ``should_retry`` cannot see it).
    _jobs_exc_type: type[BaseException] | None = None
    _jobs_eager: bool = False
    #: Set while the job waits for its database transaction (see `HeldStatus`).
    _jobs_held: HeldStatus | None = None
    #: Set by `flask_jobs.Jobs` (its module): the calls a step of a workflow makes.
    step_hooks: ClassVar[StepHooks | None] = None

    @classmethod
    def claimed(
        cls, job_id: str, fields: dict[bytes, bytes], connection: Any, serializer: Any
    ) -> FlaskJob:
        """The job a worker claimed: its hash ``fields`` restored onto a copy of a blank job
        made once per class, connection and serializer (RQ's constructor checks the id and
        resolves the serializer each time, which costs more than the restore)."""
        key = (cls, id(connection), id(serializer))
        blank = _BLANKS.get(key)
        if blank is None or blank["connection"] is not connection:
            if len(_BLANKS) > 64:  # many apps in one process (tests): start again
                _BLANKS.clear()
            blank = _BLANKS[key] = vars(cls(connection=connection, serializer=serializer))
        job = cls.__new__(cls)
        job.__dict__.update(
            {k: v.copy() if isinstance(v, (list, dict)) else v for k, v in blank.items()}
        )
        job._id = job_id
        job.restore(fields)
        return job

    def restore(self, raw_data: Any) -> Any:
        """RQ's restore, with its dates read by ``fromisoformat`` (``strptime`` costs
        about ten times as much, and a job has up to five dates)."""
        dates = {}
        if isinstance(raw_data, dict) and raw_data and isinstance(next(iter(raw_data)), bytes):
            raw_data = dict(raw_data)
            for name in _DATES:
                value = raw_data.pop(name, None)
                if value:
                    dates[name.decode()] = _date(value.decode())
        result = super().restore(raw_data)
        self.__dict__.update(dates)
        return result

    def perform(self) -> Any:
        """Run the job's function in an app context: the worker's, else a fresh one of the
        app this process loads (see `flask_jobs.jobs.app`)."""
        if has_app_context():
            return self._perform_step()
        with job_app().app_context():
            return self._perform_step()

    def _perform_step(self) -> Any:
        """RQ's perform; a step of a workflow first takes the results it is given, and
        when it fails for good cancels the steps that can no longer run."""
        if not self.is_step:
            return super().perform()  # an eager workflow passes its results itself
        try:
            self.take_step_inputs()
            return super().perform()
        except BaseException as exc:
            self.step_failed(exc)
            raise

    @property
    def is_step(self) -> bool:
        """Whether the job is a step of a chain, group or chord that its worker prepares."""
        meta = self.meta if isinstance(self.meta, dict) else {}
        return self.step_hooks is not None and not self._jobs_eager and META_WORKFLOW in meta

    def take_step_inputs(self) -> None:
        """A step's arguments: the previous steps' results put first, as the workflow says."""
        assert self.step_hooks is not None
        self._args, self._kwargs = self.step_hooks.prepare_call(
            self.connection, self.id, self.meta, tuple(self.args), self.kwargs,
            serializer=self.serializer,
        )  # fmt: skip

    def step_failed(self, exc: BaseException) -> None:
        """A step raised: if no retry is left, cancel the steps that can no longer run."""
        if self.step_hooks is not None and not self._will_retry(exc):
            self.step_hooks.failed_for_good(
                self.connection, self.id, self.meta, exc, serializer=self.serializer
            )

    def _will_retry(self, exc: BaseException) -> bool:
        """Whether this failure leaves the job a retry (RQ's count, and our policy's types)."""
        if not self.retries_left:
            return False
        policy = self.retry_policy
        return policy is None or policy.retries(type(exc))

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """The job's retry policy, when it was enqueued with a `Retry`."""
        data = self.meta.get(META_RETRY) if isinstance(self.meta, dict) else None
        return Retry.from_meta(data) if isinstance(data, dict) else None

    @property
    def attempt(self) -> int:
        """The 1-based number of the current (or last) attempt, manual requeues included."""
        meta = self.meta if isinstance(self.meta, dict) else {}
        requeues = meta.get(META_REQUEUES, 0)
        base = 1
        data = meta.get(META_RETRY)
        if (
            isinstance(data, dict)
            and isinstance(data.get("max"), int)
            and self.retries_left is not None
        ):
            base = data["max"] - self.retries_left + 1
        return base + (requeues if isinstance(requeues, int) else 0)

    def mark_requeued(self) -> None:
        """Count a manual requeue, so the next run is recorded as a new attempt."""
        previous = self.attempt
        self.meta[META_REQUEUES] = self.meta.get(META_REQUEUES, 0) + 1
        self.meta[META_ORIGIN] = f"requeue:{self.id}#{previous}"

    @property
    def func(self) -> Any:
        """The job's function; `UnknownJobError` saying "cannot import" when it cannot be found."""
        try:
            return super().func
        except (ImportError, AttributeError, ValueError) as exc:
            # RQ says "Invalid attribute name: x.y": name the problem and where to look.
            raise UnknownJobError(
                f"cannot import job function {self.func_name!r} on this worker ({exc}); "
                "is its module on the worker's path, and does it still define it?"
            ) from exc

    @property
    def origin_label(self) -> str | None:
        """Where the job came from: ``view``, ``cli``, ``schedule:<name>``..."""
        value = self.meta.get(META_ORIGIN) if isinstance(self.meta, dict) else None
        return value if isinstance(value, str) else None

    @property
    def should_retry(self) -> bool:
        """Whether RQ should retry after this failure (policy and exception type allowing)."""
        if not super().should_retry:
            return False
        policy = self.retry_policy
        return policy is None or policy.retries(self._jobs_exc_type)

    def get_retry_interval(self) -> float:  # type: ignore[override]
        """The delay in seconds before the next retry, from our policy when the job has one."""
        policy = self.retry_policy
        if policy is None or self.retries_left is None:
            return float(super().get_retry_interval())
        return policy.delay_for(self.attempt)

    # -- eager mode: a job that ran inline and was never stored ----------------

    def get_status(self, refresh: bool = True) -> JobStatus | HeldStatus:  # type: ignore[override]
        """The job's status: RQ's, or a `HeldStatus` while it waits for a database commit
        (never refreshed from Redis for a job run eagerly)."""
        held = self._jobs_held
        if held is HeldStatus.IN_OUTBOX:
            try:
                status: JobStatus = super().get_status(refresh=True)
            except InvalidJobOperation:  # no hash yet: the relay has not pushed it
                return held
            self._jobs_held = None
            return status
        if held is not None:
            return held
        if self._jobs_eager:
            return self._status
        return super().get_status(refresh=refresh)

    def return_value(self, refresh: bool = False) -> Any | None:
        """The return value of the latest successful run."""
        if self._jobs_eager:
            return self._result if self._status == JobStatus.FINISHED else None
        return super().return_value(refresh=refresh)
