"""What every ``JOBS_*`` setting means: the text of the configuration reference.

The reference page of the docs is generated from this, from `config.DEFAULTS` and
from the validators themselves (each one is asked what it allows), so a key cannot
be added, or its default or rule changed, without the page following.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DEFAULTS, RULES
from .errors import ConfigurationError

__all__ = ["DESCRIPTIONS", "Setting", "reference"]

#: The meaning of each setting, in the words of the reference page (MyST Markdown).
DESCRIPTIONS: dict[str, str] = {
    "JOBS_REDIS_URL": (
        "The Redis to use: `redis://`, `rediss://`, `unix://` or `redis+sentinel://`. "
        "Unset in a debug or testing app, the extension starts its own throwaway "
        "redis-server (see `JOBS_EMBEDDED_REDIS`); unset elsewhere, `init_app` says so."
    ),
    "JOBS_QUEUES": (
        "The queues workers listen on, highest priority first; the first is where a "
        "job goes without `queue=`."
    ),
    "JOBS_DEFAULT_TIMEOUT": "Seconds a job may run before it is stopped (`-1`: no limit).",
    "JOBS_RESULT_TTL": (
        "Seconds a finished job and its result stay in Redis (`-1`: forever, `0`: not kept). "
        "The history table keeps its record for `JOBS_HISTORY_RETENTION`."
    ),
    "JOBS_FAILURE_TTL": "Seconds a failed job stays in Redis (a year, as RQ's default).",
    "JOBS_SERIALIZER": (
        "How arguments and results are stored: `json` (a job is data, not code), or "
        "`pickle` to allow any picklable argument, for apps that trust everyone who "
        "can write to their Redis."
    ),
    "JOBS_EAGER": "Run jobs inline at `.enqueue()`, in the caller's process (for tests).",
    "JOBS_EAGER_PROPAGATE": "In eager mode, re-raise a job's exception at `.enqueue()`.",
    "JOBS_EMBEDDED_REDIS": (
        "Allow the embedded redis-server when `JOBS_REDIS_URL` is unset in a debug or testing app."
    ),
    "JOBS_WORKER_CLASS": (
        "The worker `flask jobs worker` runs without `--worker-class`: `default` (our loop: "
        "serial, threads for `@thread_safe` jobs, an event loop for `async def` jobs), "
        "`fork` (a fresh process per job) or `rq` (RQ's own worker, slower)."
    ),
    "JOBS_WORKER_CONCURRENCY": (
        "Worker processes `flask jobs worker` starts without `--processes` (`--concurrency`)."
    ),
    "JOBS_WORKER_THREADS": (
        "Threads of a worker process for jobs declared `@thread_safe` (without `--threads`)."
    ),
    "JOBS_WORKER_ASYNC_LIMIT": "The most `async def` jobs one worker process runs at once.",
    "JOBS_WORKER_METRICS_PORT": (
        "Serve the workers' Prometheus metrics (jobs started, finished, failed, retried, "
        "in progress, run and wait times) on this port, one port for all the processes of "
        "`flask jobs worker` (`--metrics-port`); needs `flask-jobs[metrics]` (`None`: off)."
    ),
    "JOBS_MIDDLEWARE": (
        "Worker middleware: `Middleware` objects, classes or their import paths, called "
        "around every job in every worker mode (after the built-in ones)."
    ),
    "JOBS_LOG_LEVEL": "Level of the worker's log lines.",
    "JOBS_LOG_FORMAT": "Worker log lines as `key=value` text, or `json` (one object per line).",
    "JOBS_ON_FAILURE": (
        "Functions (or their import paths) called with a `FailureContext` for every "
        "failed attempt: error reporting (Sentry, a chat message...)."
    ),
    "JOBS_DASHBOARD_ENABLED": "Mount the dashboard blueprint at `init_app`.",
    "JOBS_DASHBOARD_URL_PREFIX": "Where the dashboard is mounted.",
    "JOBS_DASHBOARD_AUTH": (
        "A function (or import path) of the action (`view`, `requeue`, ...) that returns "
        "`True` when the current user may do it. Without it the dashboard answers only "
        "in a debug or testing app (403 otherwise)."
    ),
    "JOBS_HISTORY_ENABLED": "Record every attempt of every job in the history table.",
    "JOBS_HISTORY_DATABASE_URI": (
        "A database of its own for the history; unset: the `db` given to `Jobs`, "
        "else SQLite in the instance folder."
    ),
    "JOBS_HISTORY_MAX_ARG_BYTES": (
        "Cap on the stored JSON of a job's args and of its kwargs (each); longer ones "
        "are cut and marked."
    ),
    "JOBS_HISTORY_MAX_RESULT_BYTES": "Cap on the stored `repr` of a job's result.",
    "JOBS_REDACT_KEYS": (
        "Argument keys stored as `***` in the history and the dashboard (matched "
        "case-insensitively, as substrings)."
    ),
    "JOBS_HISTORY_STREAM_MAXLEN": (
        "Most history events waiting in Redis for the recorder; past it the oldest are "
        "dropped, with a log line."
    ),
    "JOBS_HISTORY_RETENTION": (
        "History rows older than this are deleted, hourly (`None`: keep them forever)."
    ),
    "JOBS_SCHEDULE": "Periodic jobs: schedule name -> entry (`job` and `cron`, `every` or `at`).",
    "JOBS_TIMEZONE": "Timezone of schedule entries that do not name one.",
    "JOBS_ENQUEUE_ON_COMMIT": (
        "With `Jobs(db=db)`: a job enqueued while `db.session` has uncommitted writes is "
        "pushed after the commit and dropped on rollback. No effect without a `db`."
    ),
    "JOBS_OUTBOX": (
        "Write such a job to the `flask_jobs_outbox` table in the same transaction "
        "instead; a relay beside the workers moves it to Redis (needs `Jobs(db=db)`)."
    ),
    "JOBS_OUTBOX_BATCH": "Rows the outbox relay moves per batch (one transaction, one round trip).",
    "JOBS_OUTBOX_POLL_MS": "How often an idle outbox relay looks for new rows, in milliseconds.",
    "JOBS_ALERT_QUEUE_WAIT": (
        "Open an alert when a queue's oldest waiting job has waited longer than this (`None`: off)."
    ),
    "JOBS_ALERT_FAILURE_RATE": (
        "Open an alert when a function's failed attempts over the last 15 minutes are more "
        "than this share of its runs, e.g. `0.2` (`None`: off)."
    ),
    "JOBS_ALERT_MIN_RUNS": (
        "The fewest runs in those 15 minutes before the failure-rate alert judges a function."
    ),
    "JOBS_ALERT_SCHEDULE_GRACE": (
        "Open an alert when a schedule's next run is this late: the scheduler is down or "
        "stuck (`None`: off)."
    ),
    "JOBS_ON_ALERT": (
        "Functions (or their import paths) called with an `Alert` once when an incident "
        "opens and once when it resolves, as `JOBS_ON_FAILURE` hooks are called."
    ),
}


@dataclass(frozen=True)
class Setting:
    """One row of the configuration reference."""

    key: str
    default: object
    allowed: str
    description: str


class _Unlikely:
    """A value no validator accepts, so each says what it does accept."""

    def __repr__(self) -> str:
        return "<unlikely>"


def allowed(key: str) -> str:
    """What the validator of ``key`` accepts, in its own words."""
    try:
        RULES[key](key, _Unlikely())
    except ConfigurationError as exc:
        return str(exc).split(" is not valid: ", 1)[1].rstrip(".")
    raise AssertionError(f"the rule of {key} accepts anything")


def reference() -> list[Setting]:
    """Every setting, in the order of `config.DEFAULTS`."""
    return [
        Setting(key, default, allowed(key), DESCRIPTIONS[key]) for key, default in DEFAULTS.items()
    ]
