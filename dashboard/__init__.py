"""The ops dashboard: a blueprint of server-rendered pages (htmx for live parts).

Every page works without JavaScript; every state change is a POST form with
a CSRF token; the dashboard refuses to serve outside debug/testing until
``JOBS_DASHBOARD_AUTH`` says who may see it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, NoReturn

import redis
from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from flask_jobs.errors import JobsConnectionError
from flask_jobs.ops.audit import audit_table

from . import security
from .routes import add_routes

__all__ = ["create_blueprint", "register_dashboard"]


def _folder(package: str) -> str:
    # importlib.resources finds the folder in a wheel install and an editable one alike.
    return str(resources.files(package))


def create_blueprint() -> Blueprint:
    """A fresh dashboard blueprint (one per app, so several apps in a process don't share one)."""
    bp = Blueprint(
        "jobs_dashboard",
        __name__,
        template_folder=_folder("flask_jobs.dashboard.templates"),
        static_folder=_folder("flask_jobs.dashboard.static"),
        static_url_path="/static",
    )
    bp.before_request(security.authorize)
    bp.after_request(security.set_csrf_cookie)
    bp.context_processor(security.template_globals)

    @bp.errorhandler(redis.ConnectionError)
    @bp.errorhandler(redis.TimeoutError)
    @bp.errorhandler(JobsConnectionError)
    def redis_down(exc: Exception) -> Any:
        if isinstance(exc, JobsConnectionError):
            message = str(exc)
        else:
            message = str(current_app.extensions["jobs"].connection_error(exc))
        return _error(503, message)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:
            return exc
        body, code = _error(exc.code, exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            return body, code, {"Allow": ", ".join(exc.valid_methods)}
        return body, code

    add_routes(bp)  # their views load at their first request (`routes`)
    # Last: any other path under the dashboard gets the dashboard's own 404 (or 405) page.
    for rule, endpoint in (("/<path:rest>", "not_found"), ("/api/<path:rest>", "not_found_api")):
        bp.add_url_rule(rule, endpoint, _not_found, methods=["GET", "POST"])
    return bp


def _not_found(rest: str) -> NoReturn:
    """No page here: a 405 when the path is an action (a POST from a button), else a 404."""
    if request.method == "GET":
        adapter = current_app.url_map.bind_to_environ(request.environ)
        try:
            endpoint, _ = adapter.match(request.path, method="POST")
        except HTTPException:
            endpoint = ""
        if endpoint and not str(endpoint).rpartition(".")[2].startswith("not_found"):
            raise MethodNotAllowed(
                ["POST"],
                description="This address is an action: the dashboard's buttons send it as a "
                "form (POST). Go back to the page and use the button.",
            )
    abort(404, f"There is no dashboard page at {request.path[:200]!r}.")


def _error(code: int, message: str) -> tuple[Any, int]:
    """An error page, or a JSON error body for the API."""
    if (request.endpoint or "").rpartition(".")[2].startswith(("api_", "not_found_api")):
        return jsonify({"error": message, "status": code}), code
    return render_template("flask_jobs/error.html", code=code, message=message), code


def register_dashboard(app: Flask) -> None:
    """Mount the dashboard at ``JOBS_DASHBOARD_URL_PREFIX`` unless it is disabled."""
    state = app.extensions["jobs"]
    config = state.config
    # The audit table on the history's metadata now, so `flask db migrate` sees it.
    audit_table(state.history.table.metadata)
    if config.dashboard_enabled:
        app.register_blueprint(create_blueprint(), url_prefix=config.dashboard_url_prefix)
