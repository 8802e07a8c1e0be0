"""The outbox table: jobs written in the caller's own transaction, waiting for the relay.

A row holds the job exactly as RQ would store it (the fields of its
``rq:job:<id>`` hash, made by RQ's own ``Job``), where it goes (its queue, or
RQ's scheduled registry for ``enqueue_at``/``enqueue_in``) and its "queued"
history event, so the relay only copies data and never imports a job.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

__all__ = ["OutboxRow", "outbox_table"]

TABLE_NAME = "flask_jobs_outbox"


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The ``flask_jobs_outbox`` table on ``metadata`` (``db.metadata``: migrations see it)."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("job_id", sa.String(128), nullable=False, unique=True),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class OutboxRow:
    """One job on its way through the outbox."""

    job_id: str
    queue: str
    #: RQ's job hash, field by field (``bytes`` where RQ stores bytes).
    fields: dict[str, str | bytes]
    #: When to run it (epoch seconds, RQ's scheduled registry), or None: queue it now.
    run_at: int | None
    at_front: bool
    #: The "queued" history event, or None when history is off.
    event: dict[str, str] | None

    def to_values(self) -> dict[str, Any]:
        """The row's column values."""
        text = {k: v for k, v in self.fields.items() if isinstance(v, str)}
        binary = {
            k: base64.b64encode(v).decode("ascii")
            for k, v in self.fields.items()
            if isinstance(v, bytes)
        }
        payload = {"h": text, "b": binary, "t": self.run_at, "f": self.at_front, "e": self.event}
        return {
            "job_id": self.job_id,
            "queue": self.queue,
            "payload": json.dumps(payload, separators=(",", ":")),
            "created_at": datetime.now(timezone.utc),
        }

    @classmethod
    def from_values(cls, job_id: str, queue: str, payload: str) -> OutboxRow:
        """The row read back from the table."""
        data = json.loads(payload)
        fields: dict[str, str | bytes] = dict(data["h"])
        fields.update({k: base64.b64decode(v) for k, v in data["b"].items()})
        return cls(job_id, queue, fields, data["t"], bool(data["f"]), data["e"])
