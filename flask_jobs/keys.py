"""Every Redis key flask-jobs reads or writes, and the names that go into keys.

Two families share one Redis database (one database per app, see
`flask_jobs.redis.claim`):

- RQ's keys (``rq:*``: jobs, queues, their intermediate lists, registries,
  workers, the suspension flag). RQ's data is the contract with ``rq info``,
  rq-dashboard and a plain ``rq worker``, so these names come from RQ itself.
- ours (``flask_jobs:*``): the history stream, the scheduler's lock and state,
  paused queues, the app that owns the database, the recorder's locks.

Nothing else in the package spells a key: it imports the name from here.
"""

from __future__ import annotations

import re

from rq.command import PUBSUB_CHANNEL_TEMPLATE
from rq.defaults import RQ_KEY_PREFIX
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE, ExecutionRegistry
from rq.group import Group
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import Queue
from rq.rate_limit import RateLimitRegistry
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.suspension import WORKERS_SUSPENDED
from rq.worker import Worker

__all__ = [
    "ALERTS_EVALUATED_KEY",
    "ALERTS_LOCK_KEY",
    "ALERTS_OPEN_KEY",
    "ALERTS_RECENT_KEY",
    "DEPENDENTS_OWED_KEY",
    "HISTORY_STREAM",
    "JOB_ID",
    "JOB_RATE_FIELD",
    "JOB_RATE_KEY_FIELD",
    "JOB_UNIQUE_FIELD",
    "JOB_UNIQUE_TTL_FIELD",
    "JOB_UNIQUE_WHILE_FIELD",
    "META_WORKFLOW",
    "META_WORKFLOW_CANCELED",
    "META_WORKFLOW_INPUT",
    "OUTBOX_RELAY_LOCK_KEY",
    "OWNER_KEY",
    "PAUSED_QUEUES_KEY",
    "QUEUE_NAME",
    "QUEUE_SAMPLE_LOCK_KEY",
    "RATE_LIMIT_CONCURRENCY_FIELD",
    "RATE_LIMIT_KEY_FIELD",
    "RECORDER_GROUP",
    "RETENTION_LOCK_KEY",
    "ROLLUP_LOCK_KEY",
    "RQ_GROUPS_KEY",
    "RQ_JOB_PREFIX",
    "RQ_QUEUES_KEY",
    "RQ_QUEUE_PREFIX",
    "RQ_RATE_LIMIT_KEYS",
    "RQ_SUSPENDED_KEY",
    "RQ_WORKER_PREFIX",
    "SCHEDULER_LEADER_KEY",
    "SCHEDULER_PROCESSES_KEY",
    "SCHEDULE_NAME",
    "WORKER_MODE_FIELD",
    "WORKER_RSS_FIELD",
    "WORKER_SLOTS_FIELD",
    "WORKER_SUPERVISOR_FIELD",
    "deferred_key",
    "dependencies_key",
    "dependents_key",
    "execution_key",
    "executions_key",
    "failed_key",
    "finished_key",
    "group_key",
    "intermediate_key",
    "job_key",
    "outbox_sent_key",
    "queue_key",
    "rate_key",
    "rate_limit_keys",
    "ready_key",
    "results_key",
    "schedule_fired_key",
    "schedule_key",
    "scheduled_key",
    "started_key",
    "unique_key",
    "worker_channel",
    "worker_executions_key",
    "worker_key",
    "workflow_key",
]

# -- names that go into keys ----------------------------------------------------

#: A queue name we create or accept: RQ allows more, but these stay readable in URLs.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
#: A job id as RQ accepts it (its ``JOB_ID_PATTERN``), at most as long as the history's
#: ``job_id`` column. Anything else in a URL or a form is no job.
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
#: A schedule's name (``JOBS_SCHEDULE`` key or ``@jobs.periodic(name=...)``).
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")

# -- RQ's keys ------------------------------------------------------------------

#: ``rq:job:<id>``: the hash of one job.
RQ_JOB_PREFIX: str = Job.redis_job_namespace_prefix
#: ``rq:queue:<name>``: the list of job ids waiting in one queue.
RQ_QUEUE_PREFIX: str = Queue.redis_queue_namespace_prefix
#: ``rq:queues``: the set of every queue's key, as RQ's enqueue records it.
RQ_QUEUES_KEY: str = Queue.redis_queues_keys
#: Set by ``rq suspend``: workers take no new job while it exists.
RQ_SUSPENDED_KEY: str = WORKERS_SUSPENDED


def job_key(job_id: str) -> str:
    """RQ's hash of job ``job_id``."""
    return RQ_JOB_PREFIX + job_id


def queue_key(name: str) -> str:
    """RQ's list of the jobs waiting in queue ``name``."""
    return RQ_QUEUE_PREFIX + name


def scheduled_key(name: str) -> str:
    """RQ's registry (a sorted set by run time) of the jobs scheduled on queue ``name``."""
    key: str = ScheduledJobRegistry.key_template.format(name)
    return key


#: ``rq:rl-keys``: the set of every concurrency key RQ's limiter knows (``rq.rate_limit``).
RQ_RATE_LIMIT_KEYS: str = RateLimitRegistry.rl_keys_key
#: ``rq:groups``: the set of the names of RQ's job groups (``rq.group.Group``).
RQ_GROUPS_KEY: str = Group.REDIS_GROUP_KEY
# Fields of RQ's job hash that RQ's limiter reads: the concurrency key and its limit.
RATE_LIMIT_KEY_FIELD = "rate_limit_key"
RATE_LIMIT_CONCURRENCY_FIELD = "rate_limit_concurrency"


def rate_limit_keys(key: str) -> tuple[str, str, str]:
    """RQ's keys of concurrency key ``key``: its config hash (``rq:rl:<key>``), the sorted
    set of the jobs holding a slot (``:allowed``) and of those waiting for one
    (``:rate_limited``)."""
    # Built without __init__, which wants a connection: the key properties read only `key`,
    # and taking the names from RQ's class keeps them RQ's.
    registry = RateLimitRegistry.__new__(RateLimitRegistry)
    registry.key = key
    return registry.config_key, registry.allowed_key, registry.rate_limited_key


def group_key(name: str) -> str:
    """RQ's set of the job ids of group ``name``."""
    return Group.REDIS_GROUP_NAME_PREFIX + name


def intermediate_key(queue_key: str) -> str:
    """RQ's list of the jobs a worker took off ``queue_key`` and has not started yet."""
    key: str = IntermediateQueue.get_intermediate_queue_key(queue_key)
    return key


def started_key(name: str) -> str:
    """RQ's started registry of queue ``name`` (members ``<job id>:<execution id>``)."""
    key: str = StartedJobRegistry.key_template.format(name)
    return key


def finished_key(name: str) -> str:
    """RQ's registry of the jobs of queue ``name`` that finished."""
    key: str = FinishedJobRegistry.key_template.format(name)
    return key


def failed_key(name: str) -> str:
    """RQ's registry of the jobs of queue ``name`` that failed."""
    key: str = FailedJobRegistry.key_template.format(name)
    return key


def deferred_key(name: str) -> str:
    """RQ's registry of the jobs of queue ``name`` that wait for their dependencies."""
    key: str = DeferredJobRegistry.key_template.format(name)
    return key


def ready_key(name: str) -> str:
    """RQ's registry of the jobs of queue ``name`` whose dependencies are met, on their way
    to the queue (RQ's enqueue from there gives a concurrency-limited job its slot)."""
    key: str = ReadyJobRegistry.key_template.format(name)
    return key


def results_key(job_id: str) -> str:
    """RQ's stream of the results of job ``job_id``'s runs."""
    key: str = Result.get_key(job_id)  # type: ignore[no-untyped-call]
    return key


def dependents_key(job_id: str) -> str:
    """RQ's set of the jobs waiting for job ``job_id``."""
    key: str = Job.dependents_key_for(job_id)
    return key


def dependencies_key(job_id: str) -> str:
    """RQ's set of the jobs job ``job_id`` waits for (RQ spells it ``rq:job::<id>:...``)."""
    return f"{RQ_JOB_PREFIX}:{job_id}:dependencies"


def execution_key(job_id: str, execution_id: str) -> str:
    """RQ's hash of one run (execution) of job ``job_id``."""
    return f"{RQ_KEY_PREFIX}:execution:{job_id}:{execution_id}"


def executions_key(job_id: str) -> str:
    """RQ's registry of the runs of job ``job_id`` now going on."""
    key: str = ExecutionRegistry.key_template.format(job_id)
    return key


#: ``rq:worker:<name>``: the hash of one registered worker.
RQ_WORKER_PREFIX: str = Worker.redis_worker_namespace_prefix


def worker_key(name: str) -> str:
    """RQ's hash of worker ``name``."""
    return RQ_WORKER_PREFIX + name


def worker_executions_key(name: str) -> str:
    """RQ's set of the runs worker ``name`` is busy with."""
    return WORKER_EXECUTIONS_KEY_TEMPLATE.format(name)


def worker_channel(name: str) -> str:
    """RQ's pubsub channel of worker ``name``: its stop-job and shutdown commands."""
    return PUBSUB_CHANNEL_TEMPLATE % name


# -- ours -------------------------------------------------------------------------

#: Which app's workers and schedulers use this database: its Flask import name.
OWNER_KEY = "flask_jobs:app"
#: The stream of history events, read by the recorders into the SQL table.
HISTORY_STREAM = "flask_jobs:history"
#: The consumer group of the recorders on `HISTORY_STREAM`.
RECORDER_GROUP = "flask_jobs:recorders"
#: Held by the one recorder that rolls up the last hours (a few seconds at a time).
ROLLUP_LOCK_KEY = "flask_jobs:history:rollup-lock"
#: Held by the one recorder that deletes rows past ``JOBS_HISTORY_RETENTION`` (hourly).
RETENTION_LOCK_KEY = "flask_jobs:history:purge-lock"
#: Held for a minute by the one recorder that samples every queue's depth and oldest wait.
QUEUE_SAMPLE_LOCK_KEY = "flask_jobs:queue-samples:lock"
#: Held by the one recorder that evaluates the alerts (for one evaluation interval).
ALERTS_LOCK_KEY = "flask_jobs:alerts:lock"
#: A hash of the open alerts: the alert's key (``kind:subject``) -> its incident as JSON.
ALERTS_OPEN_KEY = "flask_jobs:alerts:open"
#: A list (newest first, capped) of recent incidents as JSON: opened and resolved ones.
ALERTS_RECENT_KEY = "flask_jobs:alerts:recent"
#: When the alerts were last evaluated (seconds since the epoch).
ALERTS_EVALUATED_KEY = "flask_jobs:alerts:evaluated"
#: A sorted set of the ids of ended jobs whose dependents are still to be released, scored
#: by their end (Unix time): set by the script that ends a job, cleared by the release, so
#: a worker that dies in between leaves the release to another worker's maintenance.
DEPENDENTS_OWED_KEY = "flask_jobs:dependents:owed"
#: A set of the names of queues that our workers leave alone (paused).
PAUSED_QUEUES_KEY = "flask_jobs:paused_queues"
#: The token of the scheduler process that leads (fires schedules).
SCHEDULER_LEADER_KEY = "flask_jobs:scheduler:leader"
#: A sorted set of scheduler processes (their tokens), scored by their last tick (Unix time).
SCHEDULER_PROCESSES_KEY = "flask_jobs:scheduler:processes"
_SCHEDULE_PREFIX = "flask_jobs:schedule:"

# Fields of ours in RQ's worker hash (``rq:worker:<name>``), beside RQ's own: written by
# our worker at registration and heartbeat, read by the dashboard's workers page.
#: How the worker runs jobs: ``serial``, ``threads``, ``fork``, ``async`` or ``rq``.
WORKER_MODE_FIELD = "flask_jobs_mode"
#: How many jobs the worker process may run at once (threads, or the async limit).
WORKER_SLOTS_FIELD = "flask_jobs_slots"
#: The process's resident memory in bytes, as of its last heartbeat.
WORKER_RSS_FIELD = "flask_jobs_rss"
#: The name of the ``--processes`` supervisor the process belongs to (absent alone).
WORKER_SUPERVISOR_FIELD = "flask_jobs_supervisor"
#: Held (with a TTL) by the one outbox relay of a database without ``SKIP LOCKED`` (SQLite).
OUTBOX_RELAY_LOCK_KEY = "flask_jobs:outbox:relay-lock"
_OUTBOX_SENT_PREFIX = "flask_jobs:outbox:sent:"
_UNIQUE_PREFIX = "flask_jobs:unique:"
_WORKFLOW_PREFIX = "flask_jobs:workflow:"
_RATE_PREFIX = "flask_jobs:rate:"

# Fields of ours in RQ's job hash, written by our enqueue.
#: The unique key the job holds (``flask_jobs:unique:<key>`` maps it to the job's id).
JOB_UNIQUE_FIELD = "flask_jobs_unique"
#: Seconds the unique key holds at most.
JOB_UNIQUE_TTL_FIELD = "flask_jobs_unique_ttl"
#: ``queued`` or ``running``: whether a started job still holds its unique key.
JOB_UNIQUE_WHILE_FIELD = "flask_jobs_unique_while"
#: The rate limit as ``<starts>/<seconds>`` (``100/60``), for the claim to enforce.
JOB_RATE_FIELD = "flask_jobs_rate"
#: The key the rate limit counts starts under (the job's path, or its concurrency key).
JOB_RATE_KEY_FIELD = "flask_jobs_rate_key"


# Keys of ours in RQ's job meta.
#: ``{"id", "kind", "index", "role"}``: the chain, group or chord the job belongs to.
META_WORKFLOW = "workflow"
#: ``{"from": [job ids], "collect": bool}``: whose results become the first argument.
META_WORKFLOW_INPUT = "workflow_input"
#: Why a workflow canceled the job (a step before it failed for good).
META_WORKFLOW_CANCELED = "workflow_canceled"


def unique_key(key: str) -> str:
    """Maps unique key ``key`` to the id of the job that holds it (a string with a TTL)."""
    return _UNIQUE_PREFIX + key


def workflow_key(workflow_id: str) -> str:
    """The hash of one chain, group or chord: its kind, members in order, callback."""
    return _WORKFLOW_PREFIX + workflow_id


def rate_key(key: str) -> str:
    """The sorted set of the recent starts (by time) counted by rate limit key ``key``."""
    return _RATE_PREFIX + key


def schedule_key(name: str) -> str:
    """The hash of schedule ``name``'s state: last and next fire, last job, paused, missed."""
    return _SCHEDULE_PREFIX + name


def schedule_fired_key(name: str, fire_ms: int) -> str:
    """The claim of one fire time of schedule ``name``: whoever sets it enqueues that run."""
    return f"{_SCHEDULE_PREFIX}{name}:fired:{fire_ms}"


def outbox_sent_key(job_id: str) -> str:
    """Set when the relay pushed outbox job ``job_id``: a row relayed twice is pushed once."""
    return _OUTBOX_SENT_PREFIX + job_id
