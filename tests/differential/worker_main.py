"""A worker of one side in a process of its own, for scenarios that kill it:
``python -m differential.worker_main <rq|default|default-threads|fork> <redis url> <name>``."""

from __future__ import annotations

import sys

import redis

import jobs_app
from differential.sides import Side


def main(kind: str, url: str, name: str) -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": url, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    side = Side(kind, redis.Redis.from_url(url), app, url)
    side.build(name).work(burst=False, with_scheduler=False, logging_level="ERROR")


if __name__ == "__main__":
    main(*sys.argv[1:4])
