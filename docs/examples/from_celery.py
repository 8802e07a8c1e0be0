"""The Celery app of the migration guide, moved to flask-jobs (the guide shows both)."""

from __future__ import annotations

from flask import Flask, current_app

from flask_jobs import Jobs, Retry

jobs = Jobs()


@jobs.job(queue="mail", timeout=30, retry=Retry(max=5, on=(ConnectionError,)))
def send_receipt(order_id: int, email: str) -> str:
    # was: @celery.task(autoretry_for=(ConnectionError,), max_retries=5, time_limit=30)
    sender = current_app.config["MAIL_SENDER"]  # the app's context, with no FlaskTask class
    return f"receipt {order_id} from {sender} to {email}"


@jobs.job
def purge_sessions(days: int) -> int:
    return days


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        MAIL_SENDER="shop@example.com",
        JOBS_QUEUES=["mail", "default"],
        # was: celery.conf.beat_schedule = {"purge": {"task": ..., "schedule": crontab(...)}}
        JOBS_SCHEDULE={
            "purge-sessions": {
                "job": "from_celery:purge_sessions",
                "cron": "0 3 * * *",
                "kwargs": {"days": 30},
            },
        },
    )
    app.config.from_prefixed_env()  # FLASK_JOBS_REDIS_URL=redis://...
    jobs.init_app(app)

    @app.post("/orders/<int:order_id>")
    def place_order(order_id: int) -> dict[str, str]:
        job = send_receipt.enqueue(order_id, "ada@example.com")  # was: .delay(...)
        return {"job": job.id}

    return app
