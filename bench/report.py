"""The suite's one table: figures, and flask-jobs' ratio to each peer."""

from __future__ import annotations

from typing import Any

__all__ = ["legend", "table"]


def ratio(ours: float | None, theirs: float | None, lower_is_better: bool = False) -> str:
    if not ours or not theirs:
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
        lat = f"{r['latency_p50_ms']:.2f} / {r['latency_p95_ms']:.2f} / {r['latency_p99_ms']:.2f}"
        if ref:
            lat += ratio(ref["latency_p50_ms"], r["latency_p50_ms"], lower_is_better=True)
        out.append(
            f"| {r['setup']} | {r['processes']} "
            f"| {r['noop_jobs_per_s']:,.0f}"
            f"{ratio(ref and ref['noop_jobs_per_s'], r['noop_jobs_per_s'])} "
            f"| {r['sleep10_jobs_per_s']:,.0f}"
            f"{ratio(ref and ref['sleep10_jobs_per_s'], r['sleep10_jobs_per_s'])} "
            f"| {lat} | {r['peak_rss_mb']:.0f} | {r.get('pss_mb', float('nan')):.0f} "
            f"| {r['commands_per_job']:.1f} | {r['round_trips_per_job']:.1f} "
            f"| {r.get('redis_cpu_us_per_job', float('nan')):.0f} |"
        )
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
