"""The dashboard's addresses and hooks, each naming the function that serves it, imported at
its first call.

Every process of an app registers the blueprint (a worker's app is the app users serve),
yet most never serve a page: the view modules, and what they import, load with the first
request that needs them.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from flask import Blueprint

from flask_jobs.errors import HistoryUnavailable
from flask_jobs.ops.sets import KINDS

__all__ = ["ROUTES", "add_routes", "lazy"]

GET = ("GET",)
POST = ("POST",)

#: (rule, endpoint, "module:function" in this package, methods), in the order they are added.
ROUTES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/", "index", "views_overview:overview", GET),
    ("/jobs", "jobs", "views_jobs:jobs", GET),
    ("/jobs/bulk", "jobs_bulk", "views_jobs:jobs_bulk", POST),
    ("/jobs/requeue-matching", "jobs_requeue_matching", "views_jobs:jobs_requeue_matching", POST),
    ("/job/<path:job_id>", "job", "views_job:job", GET),
    ("/job/<job_id>/<action>", "job_action", "views_job:job_action", POST),
    ("/failures", "failures", "views_failures:failures", GET),
    (
        "/failures/requeue-group",
        "failures_requeue_group",
        "views_failures:failures_requeue_group",
        POST,
    ),
    (
        "/failures/delete-group",
        "failures_delete_group",
        "views_failures:failures_delete_group",
        POST,
    ),
    ("/failed", "failed_now", "views_live:failed_now", GET),
    ("/running", "running", "views_live:running", GET),
    ("/retrying", "retrying", "views_live:retrying", GET),
    ("/scheduled", "scheduled_now", "views_live:scheduled_now", GET),
    ("/audit", "audit", "views_audit:audit", GET),
    ("/api/audit", "api_audit", "views_audit:api_audit", GET),
    ("/queues", "queues", "views_ops:queues", GET),
    ("/queues/<name>/pause", "queue_pause", "views_ops:queue_pause", POST),
    ("/queues/<name>/resume", "queue_resume", "views_ops:queue_resume", POST),
    ("/queues/<name>/empty", "queue_empty", "views_ops:queue_empty", POST),
    ("/schedules", "schedules", "views_ops:schedules", GET),
    ("/schedules/<name>/run", "schedule_run", "views_ops:schedule_run", POST),
    ("/schedules/<name>/pause", "schedule_pause", "views_ops:schedule_pause", POST),
    ("/schedules/<name>/resume", "schedule_resume", "views_ops:schedule_resume", POST),
    ("/workers", "workers", "views_workers:workers", GET),
    ("/api/workers", "api_workers", "views_workers:api_workers", GET),
    ("/api/openapi.json", "api_openapi", "views_api:api_openapi", GET),
    ("/api/overview", "api_overview", "views_api:api_overview", GET),
    ("/api/jobs", "api_jobs", "views_api:api_jobs", GET),
    ("/api/jobs/<path:job_id>", "api_job", "views_api:api_job", GET),
    ("/api/workflows/<workflow_id>", "api_workflow", "views_api:api_workflow", GET),
    ("/api/failures", "api_failures", "views_api:api_failures", GET),
    ("/api/schedules", "api_schedules", "views_api:api_schedules", GET),
    ("/metrics", "metrics", "views_metrics:metrics", GET),
    ("/functions", "functions", "views_functions:functions", GET),
    ("/functions/<name>", "function", "views_functions:function", GET),
    ("/api/functions", "api_functions", "views_functions:api_functions", GET),
    ("/api/functions/<name>", "api_function", "views_functions:api_function", GET),
    ("/queues/<name>", "queue", "views_queue_charts:queue_page", GET),
    ("/api/queue-samples", "api_queue_samples", "views_queue_charts:api_queue_samples", GET),
    ("/alerts", "alerts", "views_alerts:alerts", GET),
    ("/api/alerts", "api_alerts", "views_alerts:api_alerts", GET),
)


class _Lazy:
    """A function of a view module, imported when first called."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.__name__ = target.rpartition(":")[2]

    @functools.cached_property
    def function(self) -> Any:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def lazy(target: str) -> Any:
    """``"module:function"`` of this package, as a function that imports it when first called."""
    return _Lazy(target)


def add_routes(bp: Blueprint) -> None:
    """Add every page, action and API address, and the hooks of every page, to ``bp``."""
    for rule, endpoint, target, methods in ROUTES:
        bp.add_url_rule(rule, endpoint, lazy(target), methods=list(methods))
    for kind in KINDS:  # a path each, so the API document lists them
        live = functools.partial(lazy("views_live:api_live"), kind)
        bp.add_url_rule(f"/api/live/{kind}", f"api_live_{kind}", live)
    bp.register_error_handler(HistoryUnavailable, lazy("jobs_common:history_down"))
    for processor in ("jobs_common:template_helpers", "views_alerts:banner_context"):
        bp.context_processor(lazy(processor))
    bp.context_processor(lazy("views_overview:template_names"))
    bp.after_request(lazy("views_overview:remember_poll"))
