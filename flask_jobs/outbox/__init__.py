"""Jobs that go out with a database transaction: held until it commits, or written to
the outbox table in it and moved to Redis by the relay."""

from __future__ import annotations

from .held import hold, listen, session_with_writes
from .relay import OutboxRelay, outbox_status, start_relay_process, stop_relay_process
from .table import OutboxRow, outbox_table

__all__ = [
    "OutboxRelay",
    "OutboxRow",
    "hold",
    "listen",
    "outbox_status",
    "outbox_table",
    "session_with_writes",
    "start_relay_process",
    "stop_relay_process",
]
