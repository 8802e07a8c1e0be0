"""The ``@jobs.job`` wrapper: run in-process or enqueue, typed on the function's parameters."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from ..errors import ConfigurationError
from .limits import (
    UNIQUE_WHILE,
    check_concurrency,
    check_soft_timeout,
    check_unique_for,
    check_unique_key,
    parse_rate,
)
from .retry import Retry

if TYPE_CHECKING:
    from .flask_job import FlaskJob

__all__ = [
    "JobCall",
    "JobFunction",
    "JobOptions",
    "JobsOwner",
    "Signature",
    "function_path",
]

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """Options of an enqueue: the decorator's, overridden per call by `JobCall.options`."""

    queue: str | None = None
    timeout: int | None = None
    retry: Retry | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    ttl: int | None = None
    description: str | None = None
    job_id: str | None = None
    depends_on: Any = None
    at_front: bool = False
    origin: str | None = None
    meta: dict[str, Any] | None = None
    #: Wait for the database transaction (after commit, or the outbox); None: the config's.
    on_commit: bool | None = None
    #: ``unique=True``: the key is the job's path and arguments; or a key of one's own.
    unique: bool = False
    unique_key: str | None = None
    #: Seconds the unique key holds at most (None: as long as the job is kept).
    unique_for: int | None = None
    #: ``"queued"`` (queued, scheduled, deferred, waiting for a slot) or ``"running"`` too.
    unique_while: str = "queued"
    #: At most this many runs with the concurrency key queued or running at once.
    concurrency: int | None = None
    #: The concurrency key, formatted from the call's keyword arguments; None: the job's path.
    concurrency_key: str | None = None
    #: At most this many starts per period (``"100/m"``), enforced where jobs are claimed.
    rate: str | None = None
    #: Seconds after which the job is asked to stop (`timeout` stays the hard limit).
    soft_timeout: float | None = None
    #: RQ's failure callback (an ``rq.Callback``), called after every failed attempt.
    on_failure: Any = None

    def __post_init__(self) -> None:
        """Check the limit options as soon as they are given (decorator or ``.options()``)."""
        check_concurrency(self.concurrency)
        if self.rate is not None:
            parse_rate(self.rate)
        if self.unique_key is not None:
            check_unique_key(self.unique_key)
        if self.concurrency_key is not None:
            check_unique_key(self.concurrency_key, "concurrency_key")
            if self.concurrency is None:
                raise ConfigurationError(
                    f"concurrency_key={self.concurrency_key!r} needs concurrency=N, the number "
                    "of runs with that key allowed at once"
                )
        if self.unique_while not in UNIQUE_WHILE:
            raise ConfigurationError(
                f"unique_while={self.unique_while!r}: use one of {', '.join(UNIQUE_WHILE)}"
            )
        object.__setattr__(self, "unique_for", check_unique_for(self.unique_for))
        object.__setattr__(
            self, "soft_timeout", check_soft_timeout(self.soft_timeout, self.timeout)
        )

    def merged(self, **changes: Any) -> JobOptions:
        """A copy with ``changes`` applied; unknown names are a `TypeError` naming them."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise TypeError(
                f"unknown job option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}"
            )
        return dataclasses.replace(self, **changes)


class JobsOwner(Protocol):
    """The `flask_jobs.Jobs` that declared a job, as the code below the extension sees it."""

    #: The ``@jobs.periodic`` declarations: name -> ``JOBS_SCHEDULE``-style entry.
    _periodic: dict[str, dict[str, Any]]

    def _enqueue(
        self,
        path: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: JobOptions,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
    ) -> FlaskJob: ...

    def _enqueue_many(
        self,
        path: str,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        options: JobOptions,
    ) -> list[FlaskJob]: ...

    def function(self, path: str | JobFunction[..., Any]) -> JobFunction[..., Any]: ...


def function_path(fn: Callable[..., Any]) -> str:
    """The ``module:qualname`` path a worker imports ``fn`` by."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise TypeError(
            f"@jobs.job needs a function defined at module level, so that workers can import "
            f"it; {fn!r} is not"
        )
    if module == "__main__":
        raise TypeError(
            f"@jobs.job cannot wrap {qualname} from __main__: workers import jobs by module "
            "path, so move it into an importable module"
        )
    return f"{module}:{qualname}"


class JobCall(Generic[P, R]):
    """A job together with the options of one enqueue."""

    def __init__(self, function: JobFunction[P, R], options: JobOptions) -> None:
        self._function = function
        self._options = options

    def options(
        self,
        *,
        queue: str | None = _UNSET,
        timeout: int | None = _UNSET,
        retry: Retry | None = _UNSET,
        result_ttl: int | None = _UNSET,
        failure_ttl: int | None = _UNSET,
        ttl: int | None = _UNSET,
        description: str | None = _UNSET,
        job_id: str | None = _UNSET,
        depends_on: Any = _UNSET,
        at_front: bool = _UNSET,
        origin: str | None = _UNSET,
        meta: dict[str, Any] | None = _UNSET,
        on_commit: bool | None = _UNSET,
        unique: bool = _UNSET,
        unique_key: str | None = _UNSET,
        unique_for: timedelta | float | None = _UNSET,
        unique_while: str = _UNSET,
        concurrency: int | None = _UNSET,
        concurrency_key: str | None = _UNSET,
        rate: str | None = _UNSET,
        soft_timeout: float | None = _UNSET,
    ) -> JobCall[P, R]:
        """The same job with options changed: ``send.options(queue="high").enqueue(...)``."""
        given = {k: v for k, v in locals().items() if k != "self" and v is not _UNSET}
        if "unique_for" in given:  # a timedelta is kept as whole seconds
            given["unique_for"] = check_unique_for(given["unique_for"])
        return JobCall(self._function, self._options.merged(**given))

    def s(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """A step of a workflow whose first argument is the previous step's result."""
        return Signature(self, args, kwargs, immutable=False)

    def si(self, *args: P.args, **kwargs: P.kwargs) -> Signature[R]:
        """A step of a workflow called with exactly these arguments (no result passed in)."""
        return Signature(self, args, kwargs, immutable=True)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> FlaskJob:
        """Put a run of the job on its queue; returns the RQ job."""
        return self._function.jobs._enqueue(self._function.path, args, kwargs, self._options)

    def enqueue_in(self, delay: timedelta, *args: P.args, **kwargs: P.kwargs) -> FlaskJob:
        """Run the job once ``delay`` has passed."""
        if not isinstance(delay, timedelta):
            raise TypeError(f"enqueue_in() takes a datetime.timedelta first, not {delay!r}")
        return self._function.jobs._enqueue(
            self._function.path, args, kwargs, self._options, delay=delay
        )

    def enqueue_at(self, when: datetime, *args: P.args, **kwargs: P.kwargs) -> FlaskJob:
        """Run the job at ``when`` (an aware datetime; a naive one is local time, as in Python)."""
        if not isinstance(when, datetime):
            raise TypeError(f"enqueue_at() takes a datetime.datetime first, not {when!r}")
        return self._function.jobs._enqueue(
            self._function.path, args, kwargs, self._options, at=when
        )


class Signature(Generic[R]):
    """One step of a chain, group or chord: a job, its options and its arguments."""

    def __init__(
        self,
        call: JobCall[Any, R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        immutable: bool,
    ) -> None:
        self.call = call
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        #: With ``.si()``: the previous step's result is not passed in.
        self.immutable = immutable

    @property
    def path(self) -> str:
        """The job's ``module:function`` path."""
        return self.call._function.path

    @property
    def options(self) -> JobOptions:
        """The options the step is enqueued with."""
        return self.call._options

    def __repr__(self) -> str:
        mark = "si" if self.immutable else "s"
        return f"<Signature {self.path}.{mark}{self.args!r}>"


class JobFunction(JobCall[P, R]):
    """What ``@jobs.job`` returns: call it to run in-process, enqueue it to run on a worker."""

    def __init__(self, jobs: JobsOwner, fn: Callable[P, R], options: JobOptions) -> None:
        super().__init__(self, options)
        self.jobs = jobs
        self.fn = fn
        self.path = function_path(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<JobFunction {self.path}>"

    @property
    def default_options(self) -> JobOptions:
        """The options given to the decorator."""
        return self._options
