"""How the suite enqueues the benchmark jobs of each system (inside a Flask request)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

__all__ = ["PRODUCERS", "Producer"]


class Producer:
    """Enqueues the benchmark jobs of one system."""

    family = ""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder

    def context(self) -> Any:
        """A Flask request context to enqueue in (what a view does)."""
        from flask import Flask

        return Flask("bench_view").test_request_context("/")

    def single(self, i: int, n: int) -> None:
        raise NotImplementedError

    def bulk(self, count: int, n: int) -> bool:
        """Enqueue ``count`` no-op jobs at once; False when the system has no bulk API."""
        return False

    def sleepers(self, count: int, job: str = "") -> None:
        for i in range(count):
            self.sleep(i, count, job)

    def sleep(self, i: int, n: int, job: str = "") -> None:
        """Enqueue the 10 ms job (``job``: another one of the same arguments, by name)."""
        raise NotImplementedError

    def latency(self, sent: float) -> None:
        raise NotImplementedError

    def fill(self, count: int) -> None:
        if not self.bulk(count, count):
            for i in range(count):
                self.single(i, count)


class FlaskJobsProducer(Producer):
    family = "flask-jobs"

    def __init__(self, url: str, folder: Path) -> None:
        super().__init__(url, folder)
        import bench_app

        self.mod = bench_app
        self.app = bench_app.create_app(
            history=True, history_uri=f"sqlite:///{folder / 'history.db'}"
        )

    def context(self) -> Any:
        return self.app.test_request_context("/")

    def single(self, i: int, n: int) -> None:
        self.mod.noop.enqueue(i, n)

    def bulk(self, count: int, n: int) -> bool:
        from flask_jobs import enqueue_many

        enqueue_many(self.mod.noop, [((i, n), {}) for i in range(count)])
        return True

    def sleep(self, i: int, n: int, job: str = "") -> None:
        getattr(self.mod, job or "sleep10").enqueue(i, n)

    def latency(self, sent: float) -> None:
        self.mod.latency.enqueue(sent)


class RQProducer(Producer):
    family = "rq"

    def __init__(self, url: str, folder: Path) -> None:
        super().__init__(url, folder)
        import peer_rq
        from rq import Queue

        self.mod = peer_rq
        self.queue = Queue("default", connection=redis.Redis.from_url(url))

    def single(self, i: int, n: int) -> None:
        self.queue.enqueue(self.mod.noop, i, n)

    def bulk(self, count: int, n: int) -> bool:
        from rq import Queue

        self.queue.enqueue_many([Queue.prepare_data(self.mod.noop, (i, n)) for i in range(count)])
        return True

    def sleep(self, i: int, n: int, job: str = "") -> None:
        self.queue.enqueue(self.mod.sleep10, i, n)

    def latency(self, sent: float) -> None:
        self.queue.enqueue(self.mod.latency, sent)


class CeleryProducer(Producer):
    family = "celery"

    def __init__(self, url: str, folder: Path) -> None:
        super().__init__(url, folder)
        import peer_celery

        self.mod = peer_celery

    def single(self, i: int, n: int) -> None:
        self.mod.noop.delay(i, n)

    def bulk(self, count: int, n: int) -> bool:
        from celery import group

        group(self.mod.noop.s(i, n) for i in range(count)).apply_async()
        return True

    def sleep(self, i: int, n: int, job: str = "") -> None:
        self.mod.sleep10.delay(i, n)

    def latency(self, sent: float) -> None:
        self.mod.latency.delay(sent)


class DramatiqProducer(Producer):
    family = "dramatiq"

    def __init__(self, url: str, folder: Path) -> None:
        super().__init__(url, folder)
        import peer_dramatiq

        self.mod = peer_dramatiq

    def single(self, i: int, n: int) -> None:
        self.mod.noop.send(i, n)

    def bulk(self, count: int, n: int) -> bool:
        from dramatiq import group

        group(self.mod.noop.message(i, n) for i in range(count)).run()
        return True

    def sleep(self, i: int, n: int, job: str = "") -> None:
        self.mod.sleep10.send(i, n)

    def latency(self, sent: float) -> None:
        self.mod.latency.send(sent)


PRODUCERS: dict[str, type[Producer]] = {
    p.family: p for p in (FlaskJobsProducer, RQProducer, CeleryProducer, DramatiqProducer)
}
