"""One Redis database per app: a guard that stops a second app's workers from sharing one.

RQ's keys (``rq:*``: queues, workers, registries) and ours (``flask_jobs:*``: the
history stream, the scheduler's leader lock and state, paused queues) have no app in
their names. Two apps on one database would run each other's jobs, record each other's
history and share one scheduler leader, so each app gets its own database number (or
its own Redis) and ``flask jobs worker``/``scheduler`` refuse to start on another's.
"""

from __future__ import annotations

import redis

from ..errors import ConfigurationError
from ..keys import OWNER_KEY
from .connection import redact_url

__all__ = ["claim_database"]


def claim_database(connection: redis.Redis, app_name: str, url: str) -> None:
    """Mark the database at ``url`` as app ``app_name``'s; `ConfigurationError` if another
    app has it."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.set(OWNER_KEY, app_name, nx=True)
        pipe.get(OWNER_KEY)
        _, owner = pipe.execute()
    owner_name = owner.decode() if isinstance(owner, bytes) else owner
    if owner_name is not None and owner_name != app_name:
        raise ConfigurationError(
            f"{redact_url(url)} is used by the Flask app {owner_name!r}, not "
            f"{app_name!r}: give each app its own Redis database number "
            "(e.g. redis://host:6379/1 and /2), see docs/deploy.md. If that app is gone, "
            f"free the database with: redis-cli -u <url> DEL {OWNER_KEY}"
        )
