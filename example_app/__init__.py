"""A realistic small Flask app on flask-jobs: reports built in the background with progress,
welcome e-mails through SMTP, a nightly cleanup, and the jobs dashboard behind a login."""

from __future__ import annotations

import copy
import os
from typing import Any

import click
from flask import Flask, render_template

from flask_jobs import JobsConnectionError

from . import auth
from .extensions import db, jobs
from .views import bp

__all__ = ["MissingSecretKey", "create_app", "db", "jobs"]


class MissingSecretKey(click.ClickException, RuntimeError):
    """No SECRET_KEY outside debug: one line from ``flask``, a RuntimeError elsewhere."""


#: The app's own settings, each overridable by the config dict or a FLASK_* variable.
DEFAULTS: dict[str, Any] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite:///example_app.db",  # relative: in the instance folder
    "EXAMPLE_REPORT_STEP_SECONDS": 0.6,
    "EXAMPLE_FLAKY_FAILURE_RATE": 0.5,
    # Where send_welcome_email delivers; `make demo` starts a sink here (example_app.mailsink).
    "EXAMPLE_SMTP_HOST": "127.0.0.1",
    "EXAMPLE_SMTP_PORT": 8025,
    "EXAMPLE_MAIL_FROM": "reports@example.test",
    # The sink's folder, which the /mailbox page reads (default: instance/mailbox).
    "EXAMPLE_MAILBOX": None,
    # Who may sign in: admin/admin and viewer/viewer in the demo. Set FLASK_EXAMPLE_USERS.
    "EXAMPLE_USERS": auth.DEMO_USERS,
    "JOBS_DASHBOARD_AUTH": auth.dashboard_auth,
    "JOBS_ON_FAILURE": ["example_app.errors:report_failure"],
    # Create missing tables when the app starts (dev). In production several processes start
    # at once: run `flask --app example_app init-db` once instead (the Procfile's release step).
    "EXAMPLE_CREATE_TABLES": True,
    # Periodic jobs, run by `flask jobs scheduler` (make demo starts one).
    "JOBS_SCHEDULE": {
        "heartbeat": {"job": "example_app.tasks:record_heartbeat", "every": "10s"},
        "crm-sync": {"job": "example_app.tasks:flaky_sync", "every": "1m", "args": ["crm"]},
        "nightly-cleanup": {"job": "example_app.tasks:cleanup_old_reports", "cron": "30 2 * * *"},
        "weekly-digest": {
            "job": "example_app.tasks:send_weekly_digest",
            "cron": "3 17 * * sun",
            "timezone": "Europe/Berlin",
        },
    },
}


def create_app(config: dict[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Create the example app; ``config`` wins over FLASK_* variables, which win over defaults."""
    app = Flask(__name__, instance_path=instance_path)
    # A copy: FLASK_JOBS_SCHEDULE__heartbeat__every=... writes into the nested dicts.
    app.config.from_mapping(copy.deepcopy(DEFAULTS))
    app.config.from_prefixed_env()  # FLASK_DEBUG, FLASK_JOBS_REDIS_URL, FLASK_SECRET_KEY...
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        if not (app.debug or app.testing):
            # The session cookie carries the login: a known key would let anyone sign it.
            raise MissingSecretKey(
                "SECRET_KEY is not set and this is not a debug run. The demo (make demo) is a "
                "debug app on an embedded Redis: run its commands with FLASK_DEBUG=1, e.g. "
                "FLASK_DEBUG=1 flask --app example_app jobs status. In production, export "
                "FLASK_SECRET_KEY=<a long random> and FLASK_JOBS_REDIS_URL."
            )
        app.config["SECRET_KEY"] = "dev"
    if not app.config.get("EXAMPLE_MAILBOX"):
        app.config["EXAMPLE_MAILBOX"] = os.path.join(app.instance_path, "mailbox")

    db.init_app(app)
    # Without JOBS_REDIS_URL, a debug or testing app gets the embedded redis-server.
    jobs.init_app(app)

    app.register_blueprint(bp)
    app.register_blueprint(auth.bp)

    @app.errorhandler(JobsConnectionError)
    def queue_unavailable(exc: JobsConnectionError) -> tuple[str, int]:
        app.logger.error("job queue unavailable: %s", exc)
        return render_template("unavailable.html"), 503

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create the app's tables and the job-history table (once, before a deploy starts)."""
        db.create_all()
        click.echo(f"tables ready: {', '.join(sorted(db.metadata.tables))}")

    if app.config["EXAMPLE_CREATE_TABLES"]:
        with app.app_context():
            db.create_all()  # the views module imported the models, so their tables are known
    return app
