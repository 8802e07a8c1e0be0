"""Worker metrics for Prometheus: counters and histograms each worker process keeps.

``JOBS_WORKER_METRICS_PORT`` (or ``flask jobs worker --metrics-port``) adds
`PrometheusMiddleware` to every worker and serves its metrics over HTTP on that port.
Under ``--processes N`` the processes share one directory in ``prometheus_client``'s
multiprocess mode and one of them serves the sum of all of them on the one port, as
Dramatiq's Prometheus middleware and gunicorn apps do. Needs ``prometheus_client``
(``pip install flask-jobs[metrics]``).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import glob
import logging
import os
import re
import socket
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .middleware import ExcInfo, JobsWorker, Middleware

if TYPE_CHECKING:
    from rq.job import Job

__all__ = [
    "BUCKETS",
    "MULTIPROCESS_ENV",
    "PREFIX",
    "PrometheusMiddleware",
    "prepare_metrics",
    "require_prometheus",
]

log = logging.getLogger("flask_jobs.worker")

PREFIX = "flask_jobs_worker_"
#: prometheus_client's variable for the directory its processes share.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds, for run and wait times alike: a job of 1 ms to one of an hour.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
LABELS = ("queue", "function")
#: Where `before_job` leaves its clock and labelled metrics on the job, for its end.
_MARK = "_flask_jobs_metrics"
_LIVE_GAUGE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def require_prometheus() -> Any:
    """The ``prometheus_client`` module, or a one-line `ConfigurationError` saying how to
    install it."""
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "worker metrics (JOBS_WORKER_METRICS_PORT, --metrics-port) need prometheus_client, "
            "which is not installed: pip install 'flask-jobs[metrics]'"
        ) from None
    return prometheus_client


def prepare_metrics(port: int, worker_class: str, *, processes: bool) -> str | None:
    """Check, before any worker starts, that metrics can be served on ``port``; with
    ``processes`` (a supervisor), make the directory its processes share and name it in
    the environment they inherit. The directory made, for the caller to delete at exit."""
    require_prometheus()
    if worker_class != "default":
        raise ConfigurationError(
            f"worker metrics need --worker-class default, not {worker_class!r} (fork runs "
            "each job in a process of its own, rq has no middleware)"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve worker metrics on port {port}: {exc.strerror}"
            ) from None
    if not processes:
        return None
    folder = tempfile.mkdtemp(prefix="flask-jobs-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    return folder


class _Labelled:
    """The metrics of one (queue, function), made once: ``labels()`` costs a lock and a
    dict lookup, too much for every job."""

    __slots__ = (
        "abandoned",
        "duration",
        "failed",
        "finished",
        "in_progress",
        "retried",
        "started",
        "wait",
    )

    def __init__(self, metrics: PrometheusMiddleware, queue: str, function: str) -> None:
        self.started: Any = metrics.started.labels(queue, function)
        self.finished: Any = metrics.finished.labels(queue, function)
        self.failed: Any = metrics.failed.labels(queue, function)
        self.retried: Any = metrics.retried.labels(queue, function)
        self.abandoned: Any = metrics.abandoned.labels(queue, function)
        self.in_progress: Any = metrics.in_progress.labels(queue, function)
        self.duration: Any = metrics.duration.labels(queue, function)
        self.wait: Any = metrics.wait.labels(queue, function)


def _multiprocess() -> Any:
    """prometheus_client's multiprocess module (untyped)."""
    from prometheus_client import multiprocess

    return multiprocess


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


class PrometheusMiddleware(Middleware):
    """Counts and times the jobs of this worker process for Prometheus (labels ``queue``
    and ``function``), and serves them on ``port`` from the worker's start to its stop.

    Metrics: ``flask_jobs_worker_jobs_{started,finished,failed,retried,abandoned}_total``,
    ``flask_jobs_worker_jobs_in_progress``, ``flask_jobs_worker_job_duration_seconds``
    and ``flask_jobs_worker_job_wait_seconds`` (enqueued to started). ``registry``:
    where they are kept (default: a registry of their own, served with
    ``prometheus_client``'s default one, so an app's own metrics are there too).
    """

    def __init__(
        self, port: int | None = None, *, host: str = "0.0.0.0", registry: Any = None
    ) -> None:
        prometheus = require_prometheus()
        self.port = port
        self.host = host
        #: The directory of prometheus_client's multiprocess mode, when the worker is one
        #: of several processes (``--processes``) that sum their metrics.
        self.shared = os.environ.get(MULTIPROCESS_ENV) or None
        if self.shared:
            values: Any = prometheus.values
            if values.ValueClass is values.MutexValue:  # imported before the variable was set
                values.ValueClass = values.MultiProcessValue()
        self.registry = registry if registry is not None else prometheus.CollectorRegistry()
        counter, gauge, histogram = prometheus.Counter, prometheus.Gauge, prometheus.Histogram
        where = {"labelnames": LABELS, "registry": self.registry}
        self.started = counter(PREFIX + "jobs_started", "Jobs started.", **where)
        self.finished = counter(PREFIX + "jobs_finished", "Jobs that returned.", **where)
        self.failed = counter(PREFIX + "jobs_failed", "Jobs failed for good.", **where)
        self.retried = counter(PREFIX + "jobs_retried", "Failed attempts retried.", **where)
        self.abandoned = counter(
            PREFIX + "jobs_abandoned", "Jobs found left by a dead worker.", **where
        )
        self.in_progress = gauge(
            PREFIX + "jobs_in_progress", "Jobs running now.", multiprocess_mode="livesum", **where
        )
        self.duration = histogram(
            PREFIX + "job_duration_seconds", "Run time of an attempt.", buckets=BUCKETS, **where
        )
        self.wait = histogram(
            PREFIX + "job_wait_seconds", "Enqueued to started.", buckets=BUCKETS, **where
        )
        self._labelled: dict[tuple[str, str], _Labelled] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def labelled(self, queue: str, function: str) -> _Labelled:
        """The metrics of ``function`` on ``queue``."""
        found = self._labelled.get((queue, function))
        if found is None:
            found = self._labelled[(queue, function)] = _Labelled(self, queue, function)
        return found

    # -- the hooks ----------------------------------------------------------------------

    def before_job(self, worker: JobsWorker, job: Job) -> None:
        """Count the start and the wait; the clock of the run starts."""
        metrics = self.labelled(job.origin, job.func_name or "")
        setattr(job, _MARK, (time.perf_counter(), metrics))
        metrics.started.inc()
        metrics.in_progress.inc()
        enqueued, started = job.enqueued_at, job.started_at
        if enqueued is not None and started is not None:
            waited = (_utc(started) - _utc(enqueued)).total_seconds()
            metrics.wait.observe(waited if waited > 0 else 0.0)

    def _ended(self, job: Job, outcome: str) -> None:
        mark = vars(job).pop(_MARK, None)
        if mark is None:  # ended without a start here (its process died)
            getattr(self.labelled(job.origin, job.func_name or ""), outcome).inc()
            return
        clock, metrics = mark
        metrics.duration.observe(time.perf_counter() - clock)
        metrics.in_progress.dec()
        getattr(metrics, outcome).inc()

    def after_job(self, worker: JobsWorker, job: Job, result: Any) -> None:
        """Count a finished job and its run time."""
        self._ended(job, "finished")

    def on_failure(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """Count a job failed for good and its run time."""
        self._ended(job, "failed")

    def on_retry(self, worker: JobsWorker, job: Job, exc_info: ExcInfo | None) -> None:
        """Count a failed attempt that is retried and its run time."""
        self._ended(job, "retried")

    def on_abandoned(self, worker: JobsWorker, job: Job) -> None:
        """Count a job a dead worker left behind."""
        self.labelled(job.origin, job.func_name or "").abandoned.inc()

    def on_worker_start(self, worker: JobsWorker) -> None:
        """Serve the metrics on ``port`` (with others: unless another process does)."""
        if worker.mode == "fork":
            log.warning("worker metrics count nothing in the fork mode: each job has a process")
        if self.shared:
            self._forget_dead_processes()
        if self.port is not None:
            self.serve()

    def on_worker_stop(self, worker: JobsWorker) -> None:
        """Stop serving (and, with others, drop this process's gauge)."""
        self.close()
        if self.shared:
            _multiprocess().mark_process_dead(os.getpid(), self.shared)

    # -- serving ------------------------------------------------------------------------

    def serving_registry(self) -> Any:
        """What the HTTP port shows: every process's metrics summed (multiprocess mode),
        or this registry's and prometheus_client's default one."""
        prometheus = require_prometheus()
        served = prometheus.CollectorRegistry(auto_describe=False)
        if self.shared:
            _multiprocess().MultiProcessCollector(served, path=self.shared)
            return served
        if self.registry is prometheus.REGISTRY:
            return self.registry
        served.register(self.registry)
        served.register(prometheus.REGISTRY)
        return served

    def serve(self) -> bool:
        """Start the HTTP server on ``port``; False when, with other processes, one of
        them already serves it."""
        prometheus = require_prometheus()
        try:
            self._server, self._thread = prometheus.start_http_server(
                self.port, addr=self.host, registry=self.serving_registry()
            )
        except OSError as exc:
            if self.shared and exc.errno == errno.EADDRINUSE:
                log.debug("worker metrics: another worker process serves port %s", self.port)
                return False
            raise
        log.info("worker metrics on http://%s:%s/metrics", self.host, self.port)
        return True

    def close(self) -> None:
        """Stop the HTTP server, if this process runs it."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _forget_dead_processes(self) -> None:
        """Drop the in-progress gauge of processes that died (a crash leaves it behind)."""
        assert self.shared is not None
        for path in glob.glob(os.path.join(self.shared, "gauge_live*.db")):
            match = _LIVE_GAUGE.search(os.path.basename(path))
            if match is None:
                continue
            pid = int(match.group(1))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                with contextlib.suppress(FileNotFoundError):
                    _multiprocess().mark_process_dead(pid, self.shared)
            except PermissionError:  # alive, someone else's
                pass
