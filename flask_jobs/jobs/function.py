"""The ``@jobs.job`` wrapper: run in-process or enqueue, typed on the function's parameters."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from .retry import Retry

if TYPE_CHECKING:
    from .flask_job import FlaskJob

__all__ = ["JobCall", "JobFunction", "JobOptions", "JobsOwner", "function_path"]

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
    ) -> JobCall[P, R]:
        """The same job with options changed: ``send.options(queue="high").enqueue(...)``."""
        given = {k: v for k, v in locals().items() if k != "self" and v is not _UNSET}
        return JobCall(self._function, self._options.merged(**given))

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
