"""One Redis database per app: a guard that stops a second app's workers from sharing one.

RQ's keys (``rq:*``: queues, workers, registries) and ours (``flask_jobs:*``: the
history stream, the scheduler's leader lock and state, paused queues) have no app in
their names. Two apps on one database would run each other's jobs, record each other's
history and share one scheduler leader, so each app gets its own database number (or
its own Redis) and ``flask jobs worker``/``scheduler`` refuse to start on another's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .state import JobsState

__all__ = ["OWNER_KEY", "claim_database"]

#: Which app's workers and schedulers use this Redis database: its Flask import name.
OWNER_KEY = "flask_jobs:app"


def claim_database(state: JobsState) -> None:
    """Mark the database as this app's; `ConfigurationError` if another app has it."""
    from .state import redact_url

    conn = state.connection
    with conn.pipeline(transaction=False) as pipe:
        pipe.set(OWNER_KEY, state.app_name, nx=True)
        pipe.get(OWNER_KEY)
        _, owner = pipe.execute()
    owner_name = owner.decode() if isinstance(owner, bytes) else owner
    if owner_name is not None and owner_name != state.app_name:
        raise ConfigurationError(
            f"{redact_url(state.redis_url)} is used by the Flask app {owner_name!r}, not "
            f"{state.app_name!r}: give each app its own Redis database number "
            "(e.g. redis://host:6379/1 and /2), see docs/deploy.md. If that app is gone, "
            f"free the database with: redis-cli -u <url> DEL {OWNER_KEY}"
        )
