"""Where our workers leave Redis differently from RQ's on purpose: one entry per
difference, each with its reason. `compare.Allowed` says how an entry matches."""

from __future__ import annotations

from differential.compare import MISSING, Allowed
from differential.sides import OURS

__all__ = ["ALLOWED"]

#: Our kinds whose jobs were enqueued through flask-jobs' ``.enqueue()``.
OUR_ENQUEUE = tuple(OURS)

#: The job-hash fields RQ's enqueue writes empty that our one-call enqueue leaves out.
EMPTY_AT_ENQUEUE = (
    "ended_at",
    "started_at",
    "last_heartbeat",
    "worker_name",
    "group_id",
    "success_callback_name",
    "failure_callback_name",
    "stopped_callback_name",
)

#: Our own worker loop's kinds (flask_jobs/worker/loop.py).
LOOP = ("default", "default-threads", "fork", "rq-enqueued:default")

ALLOWED: list[Allowed] = [
    Allowed(
        "rq:job:*:dependents",
        "(key)",
        "Two parents running at once in two threads: when the first parent's end releases "
        "the dependents, the second parent has finished too, so the child that waits for "
        "both is released (and taken out of the first parent's set) by the first end. "
        "RQ's SimpleWorker runs the parents one after the other, so the first parent's set "
        "keeps that child. Either way the child runs once (see test_worker_dependents.py). "
        "When the first parent's release is done before the second parent ends, our sets "
        "are RQ's: whether a run shows the difference depends on the threads' timing.",
        workers=("default-threads",),
        scenarios=("several_dependents",),
        timing=True,
    ),
    Allowed(
        "rq:worker:*",
        "(ttl)",
        "A worker killed in a job: RQ's SimpleWorker sets its hash's TTL to the job's "
        "heartbeat TTL at every start (here about 2 minutes); ours raises it only when the "
        "job needs more than the hash has left from the last heartbeat (8 minutes), one "
        "write fewer per job. Either way the dead worker's hash expires on its own.",
        workers=LOOP,
        scenarios=("killed_then_abandoned",),
    ),
    Allowed(
        "rq:worker:*",
        "flask_jobs_*",
        "Our fields in RQ's worker hash (flask_jobs.keys.WORKER_*_FIELD: mode, slots, the "
        "running job ids, resident memory, supervisor), written at registration and each "
        "heartbeat for the dashboard's workers page; RQ's tools read only their own fields.",
        workers=LOOP,
    ),
    *(
        Allowed(
            "rq:job:*",
            field,
            "Not written at enqueue: RQ's enqueue writes this field empty; ours (one Lua "
            "call, flask_jobs/jobs/store.py) leaves it out, and RQ reads a missing field as "
            "it reads an empty one (None). A worker writes it when the job gets a value.",
            workers=OUR_ENQUEUE,
            values=("", MISSING),
        )
        for field in EMPTY_AT_ENQUEUE
    ),
    Allowed(
        "flask_jobs:history",
        "(key)",
        "Our job history: every enqueue and attempt is an event on this stream (RQ keeps "
        "no history); RQ's tools never read flask_jobs:* keys.",
    ),
    Allowed(
        "rq:job:*",
        "meta",
        "Written at enqueue, not by the worker: .enqueue() records where the job came "
        "from (meta.origin) and its retry policy (meta.retry_policy) in RQ's meta field.",
        workers=OUR_ENQUEUE,
    ),
    Allowed(
        "rq:job:*",
        "[rf]*_ttl",
        "Written at enqueue, not by the worker: .enqueue() stores JOBS_RESULT_TTL and "
        "JOBS_FAILURE_TTL on every job (plain RQ leaves them unset and uses the same "
        "defaults, 500 s and one year).",
        workers=OUR_ENQUEUE,
    ),
    Allowed(
        "rq:clean_groups",
        "(ttl)",
        "Our workers run RQ's maintenance every 60 s, not RQ's 10 minutes "
        "(flask_jobs.worker.build.MAINTENANCE_SECONDS), so that a dead worker's job is "
        "found abandoned sooner; the group-cleanup lock lives just under that interval.",
    ),
    Allowed(
        "rq:results:*",
        "(ttl)",
        "Follows from the failure_ttl .enqueue() stores (see above): a failed attempt's "
        "result entries expire with the job after JOBS_FAILURE_TTL (a year by default), "
        "where plain RQ's, with no failure_ttl on the job, never expire.",
        workers=OUR_ENQUEUE,
    ),
    Allowed(
        "rq:queue:*:intermediate",
        "(key)",
        "A job id whose hash is gone: RQ's dequeue leaves it in the intermediate list until "
        "its maintenance (IntermediateQueue.cleanup) drops it; our claim script drops "
        "it at once, which is what that cleanup would do.",
        workers=LOOP,
        scenarios=("deleted_job_in_queue",),
    ),
    # stop-job: RQ's reference is its forking Worker (a SimpleWorker cannot stop a job);
    # our worker runs the job in its own process (or a child it waits for) and ends it there.
    Allowed(
        "rq:job:*",
        "[ewl]*_*",
        "stop-job: our worker stops the job by raising JobStopped in it (fork: kills its "
        "child, then writes the failure from the job as the child left it), so its hash "
        "keeps worker_name, last_heartbeat and ended_at. "
        "RQ's forking Worker kills the work horse and writes the failure from its own copy "
        "of the job, which never saw the horse's fields, so it leaves them empty.",
        workers=LOOP,
        scenarios=("stop_job",),
    ),
    Allowed(
        "rq:results:*",
        "[[]0[]].execution_ended_at",
        "stop-job: as above, the stopped run ends in the worker that ran it, which records "
        "when the execution ended; RQ's forking Worker, having killed the horse, records "
        "no end.",
        workers=LOOP,
        scenarios=("stop_job",),
    ),
    Allowed(
        "rq:results:*",
        "[[]0[]].exc_string",
        "stop-job: the result's exc_string is the exception raised in the job "
        "(flask_jobs.errors.JobStopped) with its traceback, where RQ's forking Worker "
        "writes its fixed 'Job stopped by user, work-horse terminated.'; the status "
        "('stopped') and registry (failed) are RQ's.",
        workers=LOOP,
        scenarios=("stop_job",),
    ),
    Allowed(
        "rq:worker:*",
        "total_working_time",
        "stop-job: the stopped run's time counts in the worker's total_working_time, as a "
        "failed run's does under RQ; RQ's forking Worker, having killed the horse, adds none.",
        workers=LOOP,
        scenarios=("stop_job",),
    ),
    # A job hash RQ's dequeue cannot build a job from (a date that is none): RQ's worker
    # pops the id, raises and quits, leaving the job "queued" in no queue; ours fails that
    # job, so that RQ's tools find it in the failed registry, and carries on.
    Allowed(
        "rq:job:*",
        "status",
        "Unreadable job hash: ours marks the job 'failed' where RQ's worker quits and leaves "
        "it 'queued' in no queue (see the comment above).",
        scenarios=("unreadable_fields",),
    ),
    Allowed(
        "rq:job:*",
        "ended_at",
        "Unreadable job hash: ours records when it failed the job; RQ's worker quits first.",
        scenarios=("unreadable_fields",),
    ),
    Allowed(
        "rq:failed:*",
        "(key)",
        "Unreadable job hash: ours puts the job in the failed registry (for `rq info`, the "
        "dashboard, `rq requeue` after a fix), where RQ's worker quits and leaves it nowhere.",
        scenarios=("unreadable_fields",),
    ),
]
