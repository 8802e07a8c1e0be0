"""Prometheus metrics at ``/jobs/metrics`` (with the optional ``prometheus_client``)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import Response, abort, current_app
from flask.typing import ResponseReturnValue

from flask_jobs.history.alerts import KINDS
from flask_jobs.history.incidents import last_evaluated, open_alerts
from flask_jobs.history.query import HistoryQuery
from flask_jobs.ops.live import status_data

from .web import state

__all__ = ["metrics"]

#: Upper bounds (seconds) of the run-time histogram's buckets.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
WINDOW = timedelta(hours=1)


class _Collector:
    """Reads live counts from Redis and the last hour from the history at each scrape."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            GaugeHistogramMetricFamily,
            GaugeMetricFamily,
        )

        jobs_state = state()
        data = status_data(jobs_state)
        jobs = GaugeMetricFamily(
            "flask_jobs_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"]
        )
        for queue in data["queues"]:
            for name, value in queue.items():
                if name != "name":
                    jobs.add_metric([queue["name"], name], value)
        yield jobs
        workers = GaugeMetricFamily("flask_jobs_workers", "Workers by state.", labels=["state"])
        by_state: dict[str, int] = defaultdict(int)
        for worker in data["workers"]:
            by_state[worker["state"]] += 1
        for name, count in sorted(by_state.items()):
            workers.add_metric([name], count)
        yield workers
        yield from _alert_metrics(jobs_state.connection)
        if not jobs_state.history_enabled:
            return
        query = HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]
        try:
            rows = query.recent_runs(WINDOW)
        except Exception as exc:  # the history database being down must not fail the scrape
            current_app.logger.warning("metrics: history unavailable: %s", exc)
            return
        outcomes = GaugeMetricFamily(
            "flask_jobs_attempts_last_hour",
            "Attempts that ended in the last hour, by function and outcome.",
            labels=["function", "outcome"],
        )
        counts: dict[tuple[str, str], int] = defaultdict(int)
        runs: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            counts[(row["func"] or "?", row["status"])] += 1
            if row["run_seconds"] is not None:
                runs[row["func"] or "?"].append(row["run_seconds"])
        for (func, outcome), count in sorted(counts.items()):
            outcomes.add_metric([func, outcome], count)
        yield outcomes
        histogram = GaugeHistogramMetricFamily(
            "flask_jobs_run_seconds_last_hour",
            "Run time of the attempts that ended in the last hour.",
            labels=["function"],
        )
        for func, values in sorted(runs.items()):
            ordered = sorted(values)
            buckets = [(str(b), float(bisect.bisect_right(ordered, b))) for b in BUCKETS]
            buckets.append(("+Inf", float(len(ordered))))
            histogram.add_metric([func], buckets, sum(ordered))
        yield histogram


def _alert_metrics(conn: Any) -> Iterator[Any]:
    """One gauge per open alert (1), the open count per kind, and the last evaluation's time."""
    from prometheus_client.core import GaugeMetricFamily

    open_now = open_alerts(conn)
    per_alert = GaugeMetricFamily(
        "flask_jobs_alert_open",
        "1 for each open alert, by kind and what it is about.",
        labels=["kind", "subject"],
    )
    per_kind = GaugeMetricFamily("flask_jobs_alerts_open", "Open alerts by kind.", labels=["kind"])
    kinds = dict.fromkeys(KINDS, 0)
    for alert in open_now:
        per_alert.add_metric([alert.kind, alert.subject], 1)
        kinds[alert.kind] = kinds.get(alert.kind, 0) + 1
    for kind, count in kinds.items():
        per_kind.add_metric([kind], count)
    yield per_alert
    yield per_kind
    evaluated = last_evaluated(conn)
    if evaluated is not None:
        yield GaugeMetricFamily(
            "flask_jobs_alerts_evaluated_timestamp_seconds",
            "When the alerts were last evaluated (Unix time).",
            value=evaluated.timestamp(),
        )


def metrics() -> ResponseReturnValue:
    """The metrics in Prometheus' text format."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:
        abort(
            404,
            "Prometheus metrics need prometheus_client: pip install 'flask-jobs[metrics]'.",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
