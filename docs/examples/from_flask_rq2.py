"""The Flask-RQ2 app of the migration guide, moved to flask-jobs (the guide shows both)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app

from flask_jobs import Jobs, Retry

jobs = Jobs()


@jobs.job(queue="reports", timeout=600, retry=Retry(max=3))
def build_report(user_id: int) -> str:
    # runs in the app's context, as a view does
    return f"report {user_id} for {current_app.config['COMPANY']}"


@jobs.periodic(cron="30 2 * * *", name="nightly-cleanup")
@jobs.job
def cleanup() -> int:
    return 0


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(COMPANY="Example Ltd", JOBS_QUEUES=["reports", "default"])
    app.config.from_prefixed_env()  # FLASK_JOBS_REDIS_URL=redis://...
    jobs.init_app(app)

    @app.post("/reports/<int:user_id>")
    def order_report(user_id: int) -> dict[str, str]:
        now = build_report.enqueue(user_id)
        later = build_report.enqueue_in(timedelta(minutes=5), user_id)
        return {"now": now.id, "later": later.id}

    return app
