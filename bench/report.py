"""The suite's one table: figures, and flask-jobs' ratio to each peer."""

from __future__ import annotations

from typing import Any

__all__ = ["legend", "table"]


def _n(value: Any, spec: str) -> str:
    """``value`` formatted, or a dash for a workload the set-up does not run."""
    if value is None or value != value:  # NaN
        return "—"
    return format(value, spec)


def ratio(ours: float | None, theirs: float | None, lower_is_better: bool = False) -> str:
    if not ours or not theirs or ours != ours or theirs != theirs:
        return ""
    value = theirs / ours if lower_is_better else ours / theirs
    return f" ({value:.2f}x)" if value < 1 else f" ({value:.1f}x)"


def table(results: dict[str, Any]) -> str:
    rows = results["setups"]
    by_name = {r["setup"]: r for r in rows}
    refs = {
        "one": by_name.get("flask-jobs 1 thread"),
        "default": by_name.get("flask-jobs default"),
    }
    out = [
        "| worker set-up | procs | no-op jobs/s | 10 ms jobs/s | latency p50 / p95 / p99 ms "
        "| peak RSS MB | PSS MB | cmds / job | round trips / job | Redis CPU µs / job |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = refs.get(r["compare"])
        if ref is None or r["compare"] == "self":
            ref = None
        lat = " / ".join(_n(r[f"latency_{p}_ms"], ".2f") for p in ("p50", "p95", "p99"))
        if ref:
            lat += ratio(ref["latency_p50_ms"], r["latency_p50_ms"], lower_is_better=True)
        out.append(
            f"| {r['setup']} | {r['processes']} "
            f"| {_n(r['noop_jobs_per_s'], ',.0f')}"
            f"{ratio(ref and ref['noop_jobs_per_s'], r['noop_jobs_per_s'])} "
            f"| {_n(r['sleep10_jobs_per_s'], ',.0f')}"
            f"{ratio(ref and ref['sleep10_jobs_per_s'], r['sleep10_jobs_per_s'])} "
            f"| {lat} | {_n(r['peak_rss_mb'], '.0f')} | {_n(r.get('pss_mb'), '.0f')} "
            f"| {_n(r['commands_per_job'], '.1f')} | {_n(r['round_trips_per_job'], '.1f')} "
            f"| {_n(r.get('redis_cpu_us_per_job'), '.0f')} |"
        )
    out += goals(by_name)
    enq = {e["family"]: e for e in results["enqueue"]}
    ours = enq.get("flask-jobs")
    out += [
        "",
        "| producer (in a Flask request) | single enqueue/s | bulk enqueue/s "
        "| cmds / enqueue | round trips / enqueue |",
        "|---|---|---|---|---|",
    ]
    for family, e in enq.items():
        # Peers against flask-jobs; our transaction modes are compared in µs per job below.
        ref = ours if not family.startswith("flask-jobs") else None
        bulk = "—" if e["enqueue_bulk_per_s"] is None else f"{e['enqueue_bulk_per_s']:,.0f}"
        if ref and e["enqueue_bulk_per_s"]:
            bulk += ratio(ref["enqueue_bulk_per_s"], e["enqueue_bulk_per_s"])
        out.append(
            f"| {family} | {e['enqueue_per_s']:,.0f}"
            f"{ratio(ref and ref['enqueue_per_s'], e['enqueue_per_s'])} | {bulk} "
            f"| {e['enqueue_commands']:.1f} | {e['enqueue_round_trips']:.1f} |"
        )
    transaction = results.get("transaction")
    if transaction:
        out.append("")
        for family, cost in transaction["cost_us_per_job"].items():
            out.append(
                f"- {family}: {cost:+,.0f} µs per job against the same view enqueueing at once "
                "(a row written, a job enqueued, a commit)"
            )
        relay = transaction["outbox_relay"]
        out.append(
            f"- outbox relay, commit to queued (idle relay, {relay['count']} commits): "
            f"p50 {relay['p50_ms']:.0f} ms, p99 {relay['p99_ms']:.0f} ms"
        )
    return "\n".join(out)


#: What the worker is measured against: (what, our set-up, the peer, the figure, at least).
GOALS = (
    ("no-op drain", "flask-jobs default", "Dramatiq 1 proc x 8 threads", "noop_jobs_per_s", 1.0),
    ("10 ms drain", "flask-jobs default", "Dramatiq 1 proc x 8 threads", "sleep10_jobs_per_s", 1.0),
    ("10 ms async def drain", "flask-jobs async", "Dramatiq 1 proc x 8 threads",
     "sleep10_jobs_per_s", 1.0),
    ("start latency p50 (peer / ours)", "flask-jobs default", "Celery solo", "latency_p50_ms",
     1.0),
    ("PSS (Celery solo x 1.5 / ours)", "flask-jobs default", "Celery solo", "pss_mb", 1.0),
)  # fmt: skip


def goals(by_name: dict[str, Any]) -> list[str]:
    """One line per goal whose set-ups ran: the ratio, and whether it is met."""
    lines = [""]
    for what, ours_name, peer_name, key, least in GOALS:
        ours, peer = by_name.get(ours_name), by_name.get(peer_name)
        if not ours or not peer or not ours.get(key) or not peer.get(key):
            continue
        if key == "latency_p50_ms":
            value = peer[key] / ours[key]
        elif key == "pss_mb":
            value = 1.5 * peer[key] / ours[key]
        else:
            value = ours[key] / peer[key]
        if value != value:
            continue
        verdict = "met" if value >= least else "not met"
        lines.append(
            f"- {what}: {ours_name} against {peer_name}: {value:.2f}x "
            f"(goal >= {least:.1f}x: {verdict})"
        )
    best = by_name.get("flask-jobs default")
    if best and best.get("latency_p99_ms") == best.get("latency_p99_ms"):
        p99 = best["latency_p99_ms"]
        lines.append(
            f"- start latency p99, flask-jobs default: {p99:.2f} ms "
            f"(goal <= 3 ms: {'met' if p99 <= 3 else 'not met'})"
        )
    for key, limit, what in (("round_trips_per_job", 2, "round trips"),
                             ("commands_per_job", 12, "Redis commands")):  # fmt: skip
        if best and best.get(key) == best.get(key):
            verdict = "met" if best[key] <= limit else "not met"
            lines.append(
                f"- {what} per job, flask-jobs default: {best[key]:.2f} "
                f"(goal <= {limit}: {verdict})"
            )
    return lines if len(lines) > 1 else []


def legend(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["sizes"]
    return (
        f"{s['noop']:,} no-op jobs and {s['sleep']:,} 10 ms jobs pre-queued, drained by a fresh "
        f"worker; latency over {s['latency']:,} sequential jobs; {s['enqueue']:,} single and "
        f"{s['bulk']:,} bulk enqueues. (Nx) = flask-jobs / peer: peers with 1 process against "
        f"`flask-jobs 1 thread`, the others against `flask-jobs default`; for "
        f"latency, peer / flask-jobs. {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"Redis {m['redis']} (private, loopback), {results['date']}."
    )
