"""The ops dashboard blueprint (for now: queues and workers, read-only)."""

from __future__ import annotations

from importlib import resources

import redis
from flask import Blueprint, Flask, abort, current_app, render_template

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

    @bp.before_request
    def _authorize() -> None:
        state = current_app.extensions["jobs"]
        auth = state.config.dashboard_auth
        if auth is None:
            if not (current_app.debug or current_app.testing):
                abort(
                    403,
                    "The jobs dashboard is closed: set JOBS_DASHBOARD_AUTH to a function that "
                    "returns True for users who may see it.",
                )
        elif not auth():
            abort(403, "You are not allowed to see the jobs dashboard.")

    @bp.get("/")
    def index() -> tuple[str, int] | str:
        from flask_jobs.status import status_data

        state = current_app.extensions["jobs"]
        try:
            data = status_data(state)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            message = str(state.connection_error(exc))
            return render_template("flask_jobs/unavailable.html", message=message), 503
        return render_template("flask_jobs/index.html", data=data)

    return bp


def register_dashboard(app: Flask) -> None:
    """Mount the dashboard at ``JOBS_DASHBOARD_URL_PREFIX`` unless it is disabled."""
    config = app.extensions["jobs"].config
    if config.dashboard_enabled:
        app.register_blueprint(create_blueprint(), url_prefix=config.dashboard_url_prefix)
