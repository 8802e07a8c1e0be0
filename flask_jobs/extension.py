"""The `Jobs` extension object: declares jobs, and wires each app's state, CLI and dashboard."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import redis
import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import get_current_job as rq_current_job

from .cli import jobs_cli
from .config import DEFAULTS, JobsConfig, load_config
from .enqueue import enqueue, enqueue_runs
from .errors import ConfigurationError, UnknownJobError
from .history.query import HistoryQuery
from .history.rollup import hourly_table
from .history.store import history_table
from .importing import import_path
from .jobs.flask_job import FlaskJob
from .jobs.function import JobFunction, JobOptions, Signature
from .jobs.limits import check_unique_for
from .jobs.progress import set_progress
from .jobs.retry import Retry
from .keys import QUEUE_NAME
from .ops.live import REGISTRIES
from .outbox import listen, outbox_table
from .scheduler.control import ScheduleControl
from .scheduler.declarations import app_schedules, parse_schedule
from .state import JobsState
from .workflows import WORKFLOW_HOOKS, Chain, Chord, Group, WorkflowHandle

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["Jobs"]

P = ParamSpec("P")
R = TypeVar("R")

# The job class sits below the workflows in the layering: hand it their calls here, where
# every process that runs our jobs (our worker, or a plain `rq worker` given
# --job-class flask_jobs.FlaskJob) has imported them.
FlaskJob.step_hooks = WORKFLOW_HOOKS


class Jobs:
    """Background jobs for a Flask app, on RQ and Redis.

    ``jobs = Jobs(app)`` or ``jobs = Jobs(); jobs.init_app(app)``. Declare jobs
    with ``@jobs.job`` and run workers with ``flask jobs worker``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        middleware: Sequence[Any] = (),
    ) -> None:
        self.db = db
        #: Worker middleware of this extension's apps (before ``JOBS_MIDDLEWARE``'s): objects
        #: with the hooks of `flask_jobs.Middleware`.
        self.middleware: tuple[Any, ...] = tuple(middleware)
        self._periodic: dict[str, dict[str, Any]] = {}
        # On db.metadata, so Flask-Migrate/Alembic sees the table; else on a metadata of ours.
        metadata = db.metadata if db is not None else sa.MetaData()
        self.history_table = history_table(metadata)
        self.history_hourly_table = hourly_table(metadata)
        #: The outbox of ``JOBS_OUTBOX`` (only with a ``db``: rows share its transactions).
        self.outbox_table = outbox_table(db.metadata) if db is not None else None
        if db is not None:
            listen(db)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set the ``JOBS_*`` defaults, validate them, and register the CLI and dashboard."""
        if "jobs" in app.extensions:
            raise RuntimeError(
                "A 'Jobs' instance has already been registered on this Flask app. Import and "
                "use that instance instead."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, copy.deepcopy(value))
        config = load_config(app.config)
        if config.redis_url is None and not (config.embedded_redis and (app.debug or app.testing)):
            raise ConfigurationError(
                "JOBS_REDIS_URL is not set: set it to your Redis server, e.g. "
                "app.config['JOBS_REDIS_URL'] = 'redis://localhost:6379/0' (or the environment "
                "variable FLASK_JOBS_REDIS_URL with app.config.from_prefixed_env()). The "
                "embedded redis-server is only used in debug or testing mode."
            )
        if config.outbox and self.db is None:
            raise ConfigurationError(
                "JOBS_OUTBOX = True needs a database: pass your Flask-SQLAlchemy object, "
                "Jobs(app, db=db), or set JOBS_OUTBOX = False"
            )
        state = JobsState(
            self,
            app,
            config,
            db=self.db,
            history_table=self.history_table,
            hourly_table=self.history_hourly_table,
            outbox_table=self.outbox_table,
        )
        for name, schedule in app_schedules(state).items():  # parsed (and anchored) now
            if name not in config.schedule:
                continue
            try:
                self.function(schedule.job)
            except UnknownJobError as exc:
                raise ConfigurationError(f"JOBS_SCHEDULE[{name!r}]: {exc}") from None
        app.extensions["jobs"] = state
        app.cli.add_command(jobs_cli)
        # Installed from the top-level dashboard/ folder (see pyproject.toml), which type
        # checkers cannot map from a source checkout: import it by name.
        importlib.import_module("flask_jobs.dashboard").register_dashboard(app)

    # -- per-app state ---------------------------------------------------------

    def state(self, app: Flask | None = None) -> JobsState:
        """The state of ``app`` (default: the current app) for this instance."""
        if app is None:
            if not has_app_context():
                raise RuntimeError(
                    "Working outside of application context: flask-jobs needs the app to know "
                    "which Redis to use. Use 'with app.app_context():'."
                )
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        state = app.extensions.get("jobs")
        if state is None or state.jobs is not self:
            raise RuntimeError(
                "The current Flask app is not registered with this 'Jobs' instance. Did you "
                "forget to call 'init_app', or did you create another 'Jobs' instance?"
            )
        assert isinstance(state, JobsState)
        return state

    @property
    def schedules(self) -> ScheduleControl:
        """The current app's schedules: ``.list()``, ``.pause(name)``, ``.resume``, ``.run``."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return ScheduleControl(app, self.state(app))

    def periodic(
        self,
        *,
        cron: str | dict[str, Any] | None = None,
        every: str | float | None = None,
        at: str | datetime | None = None,
        timezone: str | None = None,
        name: str | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        queue: str | None = None,
        jitter: float | None = None,
        misfire_grace: float | None = None,
        coalesce: bool | None = None,
        enabled: bool | None = None,
        unique: bool | None = None,
    ) -> Callable[[Callable[P, R]], JobFunction[P, R]]:
        """Run a job on a timetable: ``@jobs.periodic(cron="3 17 * * sun")`` above ``@jobs.job``."""
        given = {
            "cron": cron,
            "every": every,
            "at": at,
            "timezone": timezone,
            "args": args,
            "kwargs": kwargs,
            "queue": queue,
            "jitter": jitter,
            "misfire_grace": misfire_grace,
            "coalesce": coalesce,
            "enabled": enabled,
            "unique": unique,
        }

        def decorate(fn: Callable[P, R]) -> JobFunction[P, R]:
            function = fn if isinstance(fn, JobFunction) else JobFunction(self, fn, JobOptions())
            entry = {key: value for key, value in given.items() if value is not None}
            entry["job"] = function.path
            key = name or function.path
            parse_schedule(key, entry, "UTC")  # a mistake shows at import, not at the first fire
            self._periodic[key] = entry
            return function

        return decorate

    @property
    def history(self) -> HistoryQuery:
        """The current app's job history: ``jobs.history.search(...)``, ``.get(job_id)``..."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return HistoryQuery(self.state(app).history, app)

    @property
    def connection(self) -> redis.Redis:
        """The current app's Redis client, for code that needs plain RQ or Redis."""
        return self.state().connection

    @property
    def config(self) -> JobsConfig:
        """The current app's validated settings."""
        return self.state().config

    def get_queue(self, name: str | None = None) -> Queue:
        """The RQ queue ``name`` (default: the first of ``JOBS_QUEUES``)."""
        state = self.state()
        return state.queue(name or state.config.queues[0])

    @property
    def queues(self) -> list[Queue]:
        """The queues of ``JOBS_QUEUES``, highest priority first."""
        state = self.state()
        return [state.queue(name) for name in state.config.queues]

    def registry(self, state_name: str, queue: str | None = None) -> Any:
        """RQ's registry of jobs in ``state_name`` (started, scheduled, deferred, failed,
        finished, canceled) for ``queue``."""
        if state_name not in REGISTRIES:
            raise ValueError(f"unknown registry {state_name!r}; use one of {', '.join(REGISTRIES)}")
        return REGISTRIES[state_name](queue=self.get_queue(queue))

    def fetch_job(self, job_id: str) -> FlaskJob:
        """The job with id ``job_id``; `UnknownJobError` when there is none."""
        state = self.state()
        try:
            job = FlaskJob.fetch(job_id, connection=state.connection, serializer=state.serializer)
        except NoSuchJobError:
            raise UnknownJobError(f"no job with id {job_id!r} (it may have expired)") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise state.connection_error(exc) from exc
        assert isinstance(job, FlaskJob)
        return job

    # -- declaring jobs --------------------------------------------------------

    @overload
    def job(self, fn: Callable[P, R], /) -> JobFunction[P, R]: ...

    @overload
    def job(
        self,
        /,
        *,
        queue: str | None = None,
        timeout: int | None = None,
        retry: Retry | None = None,
        result_ttl: int | None = None,
        failure_ttl: int | None = None,
        description: str | None = None,
        unique: bool = False,
        unique_for: timedelta | float | None = None,
        unique_while: str = "queued",
        concurrency: int | None = None,
        concurrency_key: str | None = None,
        rate: str | None = None,
        soft_timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...

    def job(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        queue: str | None = None,
        timeout: int | None = None,
        retry: Retry | None = None,
        result_ttl: int | None = None,
        failure_ttl: int | None = None,
        description: str | None = None,
        unique: bool = False,
        unique_for: timedelta | float | None = None,
        unique_while: str = "queued",
        concurrency: int | None = None,
        concurrency_key: str | None = None,
        rate: str | None = None,
        soft_timeout: float | None = None,
    ) -> JobFunction[P, R] | Callable[[Callable[P, R]], JobFunction[P, R]]:
        """Turn a function into a job: ``@jobs.job`` or ``@jobs.job(queue="high")``."""
        if queue is not None and (not isinstance(queue, str) or not QUEUE_NAME.match(queue)):
            raise ValueError(f"@jobs.job(queue={queue!r}): not a valid queue name")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError("@jobs.job(retry=...) takes a flask_jobs.Retry, e.g. Retry(max=3)")
        options = JobOptions(
            queue=queue,
            timeout=timeout,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            description=description,
            unique=unique,
            unique_for=check_unique_for(unique_for),
            unique_while=unique_while,
            concurrency=concurrency,
            concurrency_key=concurrency_key,
            rate=rate,
            soft_timeout=soft_timeout,
        )

        def decorate(func: Callable[P, R]) -> JobFunction[P, R]:
            return JobFunction(self, func, options)

        return decorate(fn) if fn is not None else decorate

    def function(self, path: str | JobFunction[..., Any]) -> JobFunction[..., Any]:
        """The job at import path ``"package.module:function"`` (a plain function is wrapped)."""
        if isinstance(path, JobFunction):
            return path
        target = import_path(path)
        if isinstance(target, JobFunction):
            return target
        if not callable(target):
            raise UnknownJobError(f"{path!r} is not a function (it is a {type(target).__name__})")
        return JobFunction(self, target, JobOptions())

    def enqueue(self, path: str | JobFunction[..., Any], /, *args: Any, **kwargs: Any) -> FlaskJob:
        """Enqueue the job at import path ``path``, e.g. ``jobs.enqueue("app.tasks:send", 42)``."""
        return self.function(path).enqueue(*args, **kwargs)

    # -- workflows -------------------------------------------------------------

    def chain(self, *steps: Signature[Any]) -> Chain[Any]:
        """Steps one after another, each given the previous result: ``chain(a.s(1), b.s())``."""
        return Chain(self, steps)

    def group(self, *members: Signature[Any] | Any) -> Group:
        """Members run in parallel: ``jobs.group(resize.s(i) for i in ids)``, or one by one."""
        if len(members) == 1 and not isinstance(members[0], Signature):
            members = tuple(members[0])  # one iterable of signatures
        return Group(self, members)

    def chord(
        self, group: Group, callback: Signature[R], *, allow_failure: bool = False
    ) -> Chord[R]:
        """``group``, then ``callback`` once with the list of its results (``allow_failure``:
        also when members failed, their results None)."""
        return Chord(self, group, callback, allow_failure=allow_failure)

    def workflow(self, workflow_id: str) -> WorkflowHandle:
        """The handle of the chain, group or chord ``workflow_id`` of the current app."""
        state = self.state()
        return WorkflowHandle(state.connection, workflow_id, serializer=state.serializer)

    # -- inside a job ----------------------------------------------------------

    @staticmethod
    def get_current_job() -> FlaskJob | None:
        """The job this code runs in, or None outside a job."""
        job = rq_current_job()
        return job if isinstance(job, FlaskJob) else None

    @staticmethod
    def set_progress(fraction: float, message: str | None = None) -> None:
        """Record the current job's progress (0.0 to 1.0) and a short message for the dashboard."""
        set_progress(fraction, message)

    # -- enqueueing ------------------------------------------------------------

    def _enqueue(
        self,
        path: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: JobOptions,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
    ) -> FlaskJob:
        return enqueue(self.state(), path, args, kwargs, options, delay=delay, at=at)

    def _enqueue_many(
        self,
        path: str,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        options: JobOptions,
    ) -> list[FlaskJob]:
        return enqueue_runs(self.state(), path, calls, options)
