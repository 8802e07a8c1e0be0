"""What a worker's process imports: only what it runs (its memory is the size of its imports,
and its history recorder, forked from it, starts as a copy of them)."""

from __future__ import annotations

import subprocess
import sys

from flask import Flask

import jobs_app
from conftest import flask_command

#: Never run by a worker of an app without schedules whose history is not on PostgreSQL.
UNUSED = (
    "apscheduler",  # parsing schedules
    "flask_jobs.dashboard.views_",  # the dashboard's pages (served by the web app)
    "flask_jobs.dashboard.jobs_common",
    "flask_jobs.dashboard.openapi",
    "sqlalchemy.dialects.postgresql",  # the PostgreSQL dialect, on a SQLite database
)


def imported(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m.startswith(prefixes)]


def test_a_worker_imports_neither_the_dashboard_nor_unused_dialects(
    app: Flask, ctx: None, subprocess_env: dict[str, str], database_url: str
) -> None:
    job = jobs_app.loaded_modules.enqueue()
    done = subprocess.run(
        flask_command("jobs", "worker", "--burst"), env=subprocess_env, timeout=120
    )
    assert done.returncode == 0
    modules = jobs_app.jobs.fetch_job(job.id).return_value()
    assert "flask_jobs.worker.loop" in modules and "flask_jobs.dashboard" in modules
    unused = UNUSED if database_url.startswith("sqlite") else UNUSED[:-1]
    assert imported(modules, unused) == []


def test_the_dashboard_loads_its_views_with_its_first_page(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    probe = (
        "import sys, jobs_app\n"
        "app = jobs_app.create_app()\n"
        "assert 'flask_jobs.dashboard.views_jobs' not in sys.modules\n"
        "assert 'jobs_dashboard.jobs' in app.view_functions\n"
        "with app.test_request_context():\n"
        "    from flask import url_for\n"
        "    assert url_for('jobs_dashboard.job', job_id='x') == '/jobs/job/x'\n"
        "response = app.test_client().get('/jobs/jobs')\n"
        "assert response.status_code == 200, response.status_code\n"
        "assert 'flask_jobs.dashboard.views_jobs' in sys.modules\n"
        "assert 'flask_jobs.dashboard.views_workers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], env=subprocess_env, check=True, timeout=60)
