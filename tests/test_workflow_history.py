"""Workflows in the history, the JSON API and the dashboard; concurrency keys on the queues
page; the history table's workflow column on a database made before it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

import jobs_app
import workflow_jobs as wj
from conftest import drain_history, text
from flask_jobs.history.store import add_missing_columns

jobs = jobs_app.jobs


def test_every_attempt_row_carries_the_workflow(app: Flask, work: Any) -> None:
    with app.app_context():
        handle = jobs.chain(jobs_app.fail_with.si("connection"), wj.double.s()).enqueue()
        other = wj.double.enqueue(1)
    work()
    drain_history(app)
    with app.app_context():
        rows = jobs.history.search(workflow=handle.id).rows
        first, second = handle.ids
        attempts = sorted(r["attempt"] for r in rows if r["job_id"] == first)
        assert attempts == [1, 2, 3, 4]  # every retry of the step
        assert {r["workflow_id"] for r in rows} == {handle.id}
        canceled = [r for r in rows if r["job_id"] == second]
        assert [r["status"] for r in canceled] == ["canceled"]
        assert "ConnectionError" in (canceled[0]["exc_message"] or "")
        assert all(r["job_id"] != other.id for r in rows)
        assert jobs.history.get(other.id)[0]["workflow_id"] is None


def test_the_api_describes_a_workflow(app: Flask, client: Any, work: Any) -> None:
    with app.app_context():
        handle = jobs.chord(jobs.group(wj.double.s(1), wj.double.s(2)), wj.total.s()).enqueue()
        before = client.get(f"/jobs/api/workflows/{handle.id}").get_json()
    assert before["status"] == "queued"
    assert [m["status"] for m in before["members"]] == ["queued", "queued", "deferred"]
    work()
    data = client.get(f"/jobs/api/workflows/{handle.id}").get_json()
    assert data["kind"] == "chord" and data["status"] == "finished"
    assert data["progress"] == {"done": 3, "failed": 0, "total": 3}
    assert [m["role"] for m in data["members"]] == ["member", "member", "callback"]
    assert data["results"] == [2, 4] and data["result"] == 6
    assert client.get("/jobs/api/workflows/0123abcd").status_code == 404
    assert client.get("/jobs/api/workflows/not%20an%20id").status_code == 404


def test_the_job_page_shows_its_workflow(app: Flask, client: Any, work: Any) -> None:
    with app.app_context():
        handle = jobs.group(wj.double.s(1), wj.explode.si(2), wj.double.s(3)).enqueue()
    work()
    drain_history(app)
    first, failed, third = handle.ids
    body = text(client.get(f"/jobs/job/{failed}"))
    assert "Workflow: group" in body and handle.id in body
    assert f'href="/jobs/job/{first}"' in body and f'href="/jobs/job/{third}"' in body
    assert f"<code>{failed}</code> (this job)" in body
    assert "2 done, 1 failed, of 3" in body and 'role="progressbar"' in body
    assert f"/jobs/jobs?workflow={handle.id}" in body
    listing = text(client.get(f"/jobs/jobs?workflow={handle.id}"))
    assert all(job_id in listing for job_id in handle.ids)
    with app.app_context():
        outsider = wj.double.enqueue(5)
    drain_history(app)
    assert outsider.id not in text(client.get(f"/jobs/jobs?workflow={handle.id}"))
    assert client.get("/jobs/jobs?workflow=bad%20id").status_code == 400
    plain = text(client.get(f"/jobs/job/{outsider.id}"))
    assert "Workflow:" not in plain


def test_the_queues_page_counts_jobs_waiting_for_a_slot(app: Flask, client: Any) -> None:
    with app.app_context():
        for _ in range(5):
            wj.limited_sleep.enqueue(0)
        wj.per_tenant.enqueue(tenant_id=3)
    body = text(client.get("/jobs/queues"))
    assert "Concurrency limits" in body
    row = body[body.index("<code>workflow_jobs:limited_sleep</code>") :].split("</tr>")[0]
    cells = [c.split("<")[0] for c in row.split('class="fj-num')[1:]]
    assert [c.split(">")[-1] for c in cells] == ["2", "2", "3"]
    assert "<code>tenant:3</code>" in body


def test_a_history_table_made_before_the_workflow_column_gets_it(
    app: Flask, database_url: str
) -> None:
    engine = sa.create_engine(database_url)
    try:
        old = sa.MetaData()
        sa.Table(
            "flask_jobs_history_old",
            old,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("job_id", sa.String(128)),
        ).create(engine)
        legacy = sa.Table(  # the table as this version declares it, under the old name
            "flask_jobs_history_old",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("job_id", sa.String(128)),
            sa.Column("workflow_id", sa.String(64), nullable=True),
            sa.Index("ix_old_workflow_id", "workflow_id"),
        )
        assert add_missing_columns(engine, legacy) == ["workflow_id"]
        inspector = sa.inspect(engine)
        assert "workflow_id" in {c["name"] for c in inspector.get_columns("flask_jobs_history_old")}
        assert "ix_old_workflow_id" in {
            i["name"] for i in inspector.get_indexes("flask_jobs_history_old")
        }
        assert add_missing_columns(engine, legacy) == []  # once only
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS flask_jobs_history_old"))
        engine.dispose()
