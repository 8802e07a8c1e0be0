"""The worker loop of flask-jobs: RQ's data in Redis, our own code walking jobs through it.

One process claims jobs with one Lua call (``rq suspend`` honoured, paused queues
skipped, the id moved to RQ's intermediate list, the hash returned), starts each with
one more, and ends a success with a third that also claims the next job: two round trips
per job in the serial mode. Jobs declared `flask_jobs.thread_safe` run in up to
``threads`` threads beside the others (which run alone in the main thread). Every job
runs in a fresh app context, with the middleware of `flask_jobs.worker.middleware`.

RQ's tools see a worker of theirs: its registration and heartbeat, its state (idle or
busy), the started, finished and failed registries, results, the stop-job command.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
from rq.job import Job

from ..history.events import PACKED_FIELD, packed
from ..history.recorder import start_recorder_process, stop_recorder_process
from ..jobs.flask_job import FlaskJob
from ..jobs.thread_safety import is_thread_safe
from ..keys import (
    RQ_SUSPENDED_KEY,
    intermediate_key,
    queue_key,
    worker_key,
)
from ..outbox import start_relay_process, stop_relay_process
from .builtin import default_middleware
from .control import ColdShutdown, Control
from .coroutines import AsyncRunner, is_async_job
from .dependents import Dependents
from .execution import execute
from .failure import malformed
from .forked import execute_forked
from .maintenance import Maintenance
from .memory import over_limit
from .middleware import MiddlewareChain
from .rated import admit
from .registration import Registration
from .scripts import Claimed, Scripts, claim_keys, parse_claim
from .threads import Lanes
from .waiting import wait_for_job

if TYPE_CHECKING:
    from flask import Flask
    from rq import Queue

    from ..state import JobsState
    from .failure import Failure

__all__ = ["INLINE_SECONDS", "JobsWorker"]

#: In the threads mode, a thread-safe function whose last run took less than this runs in
#: the main thread (claimed and ended in the same calls as serial jobs), not in a lane.
INLINE_SECONDS = 0.002

log = logging.getLogger("flask_jobs.worker")

#: The errors that mean Redis cannot be reached right now.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class JobsWorker:
    """One worker process: ``work()`` claims and runs jobs until stopped (or, with
    ``burst``, until its queues are empty)."""

    def __init__(
        self,
        app: Flask,
        state: JobsState,
        queues: Sequence[str] | None = None,
        *,
        name: str,
        threads: int = 1,
        fork: bool = False,
        max_memory: int | None = None,
        supervisor: str | None = None,
        middleware: Sequence[Any] = (),
    ) -> None:
        self.app = app
        self.state = state
        self.connection = state.connection
        self.serializer = state.serializer
        self.name = name
        self.names = list(queues or state.config.queues)
        self.threads = 1 if fork else max(1, threads)
        self.mode = "fork" if fork else "threads" if self.threads > 1 else "serial"
        self.max_memory_mb = max_memory
        self.result_ttl = state.config.result_ttl
        self.stream = state.history_settings.stream
        self.stream_maxlen = state.history_settings.stream_maxlen
        self.scripts = Scripts(self.connection)
        self.control = Control(name)
        self.registration = Registration(
            self.connection, name, self.names, self.mode, self.threads, supervisor
        )
        self.control.on_warm = self.registration.shutdown_requested
        self.middleware = MiddlewareChain([*default_middleware(state), *middleware])
        #: Whether this process runs a history recorder (and with JOBS_OUTBOX a relay)
        #: process beside it (tests that drive their own turn it off).
        self.run_recorder = True
        #: Whether the worker stopped because it went over ``max_memory_mb``.
        self.recycled = False
        #: The jobs running now, by id (their `Run`), guarded by `state_lock`.
        self.running: dict[str, Any] = {}
        self.state_lock = threading.Lock()
        self._events: list[dict[str, str]] = []
        self._events_lock = threading.Lock()
        self.dependents = Dependents(self.connection, self.scripts.dependents)
        self._queues: dict[str, Queue] = {}
        self._lanes: Lanes | None = None
        #: Seconds the last run of each function took (the threads mode reads them).
        self.durations: dict[str, float] = {}
        self._async: AsyncRunner | None = None
        self._ahead: Claimed = None
        self.written_state = "started"
        self.done = 0
        self.maintenance = Maintenance([self.queue(n) for n in self.names], self)

    # -- what the execution and the middleware use -------------------------------------

    def queue_names(self) -> list[str]:
        """The names of the queues this worker takes jobs from, highest priority first."""
        return list(self.names)

    def queue(self, name: str) -> Queue:
        """RQ's queue ``name`` (for the failure path and dependents)."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = self.state.queue(name)
        return queue

    def record(self, *events: dict[str, str]) -> None:
        """Queue history events; they go out with this worker's next call to Redis."""
        if events:
            with self._events_lock:
                self._events.extend(events)

    def take_events(self) -> list[dict[str, str]]:
        """The events waiting to go out (and forget them)."""
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def flush_events(self) -> None:
        """Send the waiting history events now (one round trip)."""
        events = self.take_events()
        if events:
            with self.connection.pipeline(transaction=False) as pipe:
                for event in events:
                    entry = {PACKED_FIELD: packed(event)}
                    pipe.xadd(self.stream, entry, maxlen=self.stream_maxlen, approximate=True)  # type: ignore[arg-type]
                pipe.execute()

    def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a script; through a Redis outage, wait and send it again (each of our
        scripts may run twice: its writes are the same the second time)."""
        while True:
            try:
                return script(keys=keys, args=args)
            except REDIS_DOWN as exc:
                if self.control.cold:
                    raise
                log.warning("worker %s: Redis unavailable (%s); waiting", self.name, exc)
                time.sleep(1.0)

    def fail(self, written: Failure) -> Any:
        """Run one call of the fail script, carrying the history events waiting to go out."""
        keys, args = written.call(self.stream_maxlen, [packed(e) for e in self.take_events()])
        return self.call(self.scripts.fail, keys, args)

    def enqueue_dependents(self, job: Job) -> None:
        """Enqueue ``job``'s dependents whose dependencies are all met."""
        self.dependents.release(job, self.queue(job.origin))

    def clean_registries(self) -> None:
        """RQ's registry cleanup now (abandoned jobs found are failed or retried, and told
        to the middleware), whenever it last ran; their history events go out at once."""
        self.maintenance.clean()
        self._idle(final=True)

    # -- the loop ---------------------------------------------------------------------

    def work(self, burst: bool = False, max_jobs: int | None = None, **_: Any) -> bool:
        """Claim and run jobs until stopped (``burst``: until nothing is left to run);
        whether any job ran."""
        recorder = relay = None
        if self.run_recorder and self.state.history_enabled:
            recorder = start_recorder_process(self.app, self.state, self.name)
        if self.run_recorder and self.state.config.outbox:
            relay = start_relay_process(self.app, self.state, self.name)
        self.registration.birth()
        self.control.install()
        self.control.subscribe(self.connection)
        if self.threads > 1:
            self._lanes = Lanes(self, self.threads)
        self.middleware.emit("on_worker_start", self)
        try:
            self._loop(self.maintenance, burst, max_jobs)
        except ColdShutdown:
            log.warning("worker %s: stopped cold", self.name)
        finally:
            self._teardown()
            if recorder is not None:
                stop_recorder_process(recorder)
            if relay is not None:
                stop_relay_process(relay)
        return self.done > 0

    def _loop(self, maintenance: Maintenance, burst: bool, max_jobs: int | None) -> None:
        control = self.control
        while True:
            if maintenance.due():
                if burst and self.connection.exists(RQ_SUSPENDED_KEY):
                    log.info("worker %s: suspended (rq suspend), burst ends", self.name)
                    return  # as RQ's: checked before its maintenance
                maintenance.run_due(self.name)
                if self.registration.beat_due():  # busy without a pause: jobs write none
                    self._idle()
            found, self._ahead = self._ahead, None
            if found is None:
                if control.stop_requested:
                    return
                found = self._next(burst, maintenance)
                if found is None:
                    return
            job = self._load(found)
            if job is None or not admit(self.connection, found):
                continue  # unreadable (failed), or over its rate limit (scheduled)
            last = max_jobs is not None and self.done + 1 >= max_jobs
            if not self._free_for(job):
                self._ahead = found  # a stop came while it waited: back on its queue
                return
            self._ahead = self._dispatch(job, last)
            self.done += 1
            if self._ahead is not None and isinstance(self._ahead, str):
                self._ahead = None  # "suspended": the next claim says it again
            if last or self._over_memory():
                control.stop_requested = True
                self._wait_lanes()
                return

    def _free_for(self, job: Job) -> bool:
        """Wait until ``job`` may start: room on the event loop for an ``async def`` job, a
        free lane for a thread-safe job, every lane idle for any other (it runs alone);
        False when a stop comes first."""
        if self.mode != "fork" and is_async_job(job):
            job._jobs_async = True  # type: ignore[attr-defined]
            if self._async is None:
                self._async = AsyncRunner(self, self.state.config.worker_async_limit)
            return self._async.reserve(lambda: self.control.stop_requested)
        if self._lanes is None:
            return True
        safe = is_thread_safe(job)
        if safe and self.durations.get(job.func_name or "", INLINE_SECONDS) < INLINE_SECONDS:
            return True  # a quick one runs here, beside the lanes: a hand-over costs more
        job._jobs_lane = safe  # type: ignore[attr-defined]
        return self._lanes.reserve(safe, lambda: self.control.stop_requested)

    def _dispatch(self, job: Job, last: bool) -> Claimed:
        """Run ``job`` here (claiming the next one in its end call), or hand it to a lane."""
        if getattr(job, "_jobs_async", False):
            assert self._async is not None
            self._async.submit(job)
            return None
        if self._lanes is not None and getattr(job, "_jobs_lane", False):
            self._lanes.submit(job)
            return None
        if self.mode == "fork":
            execute_forked(self, job)
            return None
        claim = [] if last or self.control.stop_requested else self.names
        found = execute(self, job, claim)
        self.took(job)
        return found

    def took(self, job: Job) -> None:
        """Remember how long ``job``'s function took (threads mode: quick ones run inline)."""
        seconds = getattr(job, "_jobs_seconds", None)
        if self._lanes is None or not isinstance(seconds, float):
            return
        try:
            self.durations[job.func_name or ""] = seconds
        except Exception:  # an unreadable payload: its job failed, nothing to remember
            return

    def _wait_lanes(self) -> None:
        """Wait until no job runs in a lane or on the event loop."""
        if self._lanes is not None:
            self._lanes.wait_idle()
        if self._async is not None:
            self._async.wait_idle()

    def _over_memory(self) -> bool:
        if self.max_memory_mb is None or not over_limit(self.name, self.max_memory_mb):
            return False
        self.recycled = True
        return True

    def _set_idle(self) -> None:
        if self.written_state != "idle" and not self.running:
            self.written_state = "idle"
            self.connection.hset(worker_key(self.name), "state", "idle")

    def _next(self, burst: bool, maintenance: Maintenance) -> Claimed:
        """The next job: claimed at once, or (not in a burst) waited for, doing the chores
        that fall due meanwhile (delayed jobs come due while idle); None to stop."""
        while not self.control.stop_requested:
            try:
                found = self.claim()
                if found == "suspended":
                    if burst:
                        log.info("worker %s: suspended (rq suspend), burst ends", self.name)
                        self._wait_lanes()
                        return None
                    self._idle()
                    time.sleep(1.0)
                    continue
                if found is not None:
                    return found
                if burst:
                    if (self._lanes and self._lanes.busy) or (self._async and self._async.running):
                        # their jobs may enqueue dependents
                        self._wait_lanes()
                        continue
                    self._set_idle()
                    return None
                self._idle()
                found = wait_for_job(self.connection, self.names, self.control)
                if found is not None:
                    return found
                maintenance.run_due(self.name)
            except REDIS_DOWN as exc:
                log.warning("worker %s: Redis unavailable (%s); waiting", self.name, exc)
                time.sleep(1.0)
        return None

    def claim(self) -> Claimed:
        """One claim (see claim.lua): a job, ``"suspended"``, or None."""
        keys, args = claim_keys(self.names)
        return parse_claim(self.scripts.claim(keys=keys, args=args))

    def _idle(self, *, final: bool = False) -> None:
        """Between waits: the heartbeat (carrying waiting history events) and our fields.
        The ``final`` one leaves a worker that never claimed a job "started", as RQ's."""
        with self.state_lock:
            running = list(self.running)
        if not (final and self.written_state == "started"):
            self.written_state = "busy" if running else "idle"
        self.registration.heartbeat(self.written_state)
        self.flush_events()

    def _load(self, found: Claimed) -> Job | None:
        """The job of a claim; a hash that cannot be read fails that job, not the worker."""
        assert isinstance(found, tuple)
        name, job_id, fields = found
        try:  # the payload is read when the job runs, and fails it there
            return FlaskJob.claimed(job_id, fields, self.connection, self.serializer)
        except Exception as exc:
            ttl = self.state.config.failure_ttl
            written, message = malformed(job_id, name, ttl, exc, self.stream)
        events = self.state.events
        self.record(events.malformed(job_id=job_id, queue=name, worker=self.name, message=message))
        self.fail(written)
        return None

    def _teardown(self) -> None:
        """Put back a job claimed ahead, let the lanes finish, unregister."""
        ahead, self._ahead = self._ahead, None
        try:
            if isinstance(ahead, tuple):
                name, job_id, _ = ahead
                with self.connection.pipeline() as pipe:
                    pipe.lrem(intermediate_key(queue_key(name)), 1, job_id)
                    pipe.lpush(queue_key(name), job_id)
                    pipe.execute()
            if self._lanes is not None:
                self._lanes.close()
            if self._async is not None:
                if self.control.cold:
                    self._async.cancel_all()
                self._async.close()
            self.middleware.emit("on_worker_stop", self)
            self._idle(final=True)
            self.registration.death()
        except REDIS_DOWN as exc:
            log.warning("worker %s: could not unregister (%s)", self.name, exc)
        finally:
            self.scripts.channel.close()
            self.control.unsubscribe()
            self.control.uninstall()
