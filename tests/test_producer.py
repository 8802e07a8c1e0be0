"""The producer: jobs enqueued from a process with no Flask app run on the app's workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import Job
from rq.serializers import JSONSerializer

import jobs_app
from conftest import drain_history, flask_command
from flask_jobs import ConfigurationError, JobArgumentError, JobsConnectionError, Producer
from flask_jobs.keys import HISTORY_STREAM, job_key, queue_key, scheduled_key

#: A plain Python process: no app module, no Flask app; it enqueues and says what it has.
PRODUCER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from flask_jobs import Producer

    with Producer(sys.argv[1]) as producer:
        job = producer.enqueue("jobs_app:read_config", "GREETING", queue="default")
        flask_apps = [
            name for name, module in sys.modules.items()
            if any(type(v).__name__ == "Flask" for v in list(vars(module).values())[:500])
        ]
        print(json.dumps({
            "id": job.id,
            "app_imported": "jobs_app" in sys.modules,
            "flask_apps": flask_apps,
        }))
    """
)


def _hash(client: redis.Redis, job_id: str) -> dict[str, bytes]:
    return {k.decode(): v for k, v in client.hgetall(job_key(job_id)).items()}


def _events(client: redis.Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(HISTORY_STREAM)
    ]


def test_a_job_from_a_plain_process_runs_in_the_apps_context(
    app: Flask, redis_url: str, redis_client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    produced = subprocess.run(
        [sys.executable, "-c", PRODUCER_SCRIPT, redis_url],
        env={**subprocess_env, "FLASK_APP": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(produced.stdout)
    assert report["app_imported"] is False
    assert report["flask_apps"] == []
    assert redis_client.lrange(queue_key("default"), 0, -1) == [report["id"].encode()]

    subprocess.run(
        flask_command("jobs", "worker", "--burst"),
        env=subprocess_env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    job = Job.fetch(report["id"], connection=redis_client, serializer=JSONSerializer)
    assert job.get_status() == "finished"
    # the app's config, read through current_app: the job ran in the app's context
    assert job.return_value() == "hello from config"
    with app.app_context():
        drain_history(app)
        (row,) = jobs_app.jobs.history.get(report["id"])
    assert row["status"] == "finished"
    assert row["origin"] == "producer"


def test_a_produced_job_is_stored_as_an_apps_enqueue_stores_it(
    app: Flask, redis_url: str, redis_client: redis.Redis
) -> None:
    with app.app_context():
        from_app = jobs_app.add.enqueue(1, 2)
    with Producer(redis_url) as producer:
        produced = producer.enqueue("jobs_app:add", 1, 2)

    ours, theirs = _hash(redis_client, produced.id), _hash(redis_client, from_app.id)
    assert set(ours) == set(theirs)
    for field in ("data", "origin", "status", "timeout", "result_ttl", "failure_ttl"):
        assert ours[field] == theirs[field], field
    assert json.loads(ours["meta"])["origin"] == "producer"
    assert Job.fetch(produced.id, connection=redis_client, serializer=JSONSerializer).args == [1, 2]
    assert redis_client.lrange(queue_key("default"), 0, -1) == [
        from_app.id.encode(),
        produced.id.encode(),
    ]
    app_event, produced_event = _events(redis_client)
    assert set(app_event) == set(produced_event)
    assert produced_event["job_id"] == produced.id
    assert produced_event["origin"] == "producer"
    assert produced_event["args"] == app_event["args"]


def test_options_keyword_arguments_and_a_delay(redis_url: str, redis_client: redis.Redis) -> None:
    with Producer(redis_url, config={"JOBS_QUEUES": ["mail", "default"]}) as producer:
        first = producer.enqueue("jobs_app.add", kwargs={"a": 1, "b": 2}, timeout=30)
        later = producer.enqueue("jobs_app:add", 1, 2, delay=timedelta(minutes=5), queue="low")
    assert first.origin == "mail"
    assert redis_client.lrange(queue_key("mail"), 0, -1) == [first.id.encode()]
    assert _hash(redis_client, first.id)["timeout"] == b"30"
    fetched = Job.fetch(first.id, connection=redis_client, serializer=JSONSerializer)
    assert fetched.func_name == "jobs_app.add"
    assert fetched.kwargs == {"a": 1, "b": 2}
    assert redis_client.zscore(scheduled_key("low"), later.id) is not None
    assert _hash(redis_client, later.id)["status"] == b"scheduled"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.enqueue("not a path"), "is not a job's import path"),
        (lambda p: p.enqueue("jobs_app:add", {1, 2}), "JSON"),
        (lambda p: p.enqueue("jobs_app:add", queue="no spaces"), "queue name"),
        (lambda p: p.enqueue("jobs_app:add", delay=timedelta(1), at=datetime.now()), "not both"),
    ],
)
def test_bad_input_enqueues_nothing(
    redis_url: str, redis_client: redis.Redis, call: Any, message: str
) -> None:
    with Producer(redis_url) as producer, pytest.raises(JobArgumentError, match=message):
        call(producer)
    assert redis_client.dbsize() == 0


def test_a_producer_needs_a_redis_and_no_eager_mode(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="URL of the Redis"):
        Producer("")
    with pytest.raises(ConfigurationError, match="JOBS_EAGER"):
        Producer(redis_url, config={"JOBS_EAGER": True})
    with pytest.raises(ConfigurationError, match="JOBS_RESULT_TTL"):
        Producer(redis_url, config={"JOBS_RESULT_TTL": "soon"})


def test_a_dead_redis_is_one_clear_error() -> None:
    producer = Producer("redis://127.0.0.1:1/0")
    with pytest.raises(
        JobsConnectionError, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"
    ):
        producer.enqueue("jobs_app:add", 1, 2)
    assert repr(producer) == "<Producer redis://127.0.0.1:1/0>"
