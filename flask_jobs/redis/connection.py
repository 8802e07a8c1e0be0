"""Redis clients from ``JOBS_REDIS_URL``: plain URLs, and Sentinel-managed masters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

__all__ = ["SentinelURL", "close", "connect", "parse_sentinel_url", "redact_url"]

DEFAULT_SENTINEL_PORT = 26379

_SENTINEL_SHAPE = (
    "use redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]"
)
#: Query options that go to the sentinels themselves, not to the master.
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
_FLOAT_OPTIONS = ("socket_timeout", "socket_connect_timeout")


@dataclass(frozen=True)
class SentinelURL:
    """The parts of a ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a ``redis+sentinel://`` URL; `ValueError` saying the expected shape if it is bad."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis+sentinel", "rediss+sentinel"):
        raise ValueError(f"not a sentinel URL; {_SENTINEL_SHAPE}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    sentinels: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"no sentinel host in {item!r}; {_SENTINEL_SHAPE}")
        if port and not port.isdigit():
            raise ValueError(f"sentinel port {port!r} is not a number; {_SENTINEL_SHAPE}")
        sentinels.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(f"the URL must name the master's service; {_SENTINEL_SHAPE}")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"database {path[1]!r} is not a number; {_SENTINEL_SHAPE}")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinel_kwargs: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query):
        if key in _SENTINEL_OPTIONS:
            sentinel_kwargs[key.removeprefix("sentinel_")] = value
        elif key in _FLOAT_OPTIONS:
            try:
                options[key] = float(value)
            except ValueError:
                raise ValueError(f"{key}={value!r} is not a number of seconds") from None
        else:
            raise ValueError(
                f"unknown option {key!r}; known: {', '.join(_SENTINEL_OPTIONS + _FLOAT_OPTIONS)}"
            )
    return SentinelURL(
        sentinels=tuple(sentinels),
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
        ssl=parts.scheme == "rediss+sentinel",
        sentinel_kwargs=sentinel_kwargs,
        options=options,
    )


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for ``url``; for ``redis+sentinel://`` one that follows the current master."""
    if not url.startswith(("redis+sentinel://", "rediss+sentinel://")):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    options = {**options, **parsed.options}
    sentinel_kwargs: dict[str, Any] = {
        key: options[key] for key in ("socket_connect_timeout", "socket_timeout") if key in options
    }
    # Through Any: redis-py's Sentinel is typed in some releases and not in others.
    make_sentinel: Any = Sentinel
    sentinel = make_sentinel(
        list(parsed.sentinels),
        sentinel_kwargs={**sentinel_kwargs, **parsed.sentinel_kwargs},
    )
    if parsed.ssl:
        options["ssl"] = True
    # The pool asks the sentinels for the master's address on each new connection,
    # so after a failover the next reconnect finds the new master.
    client: redis.Redis = sentinel.master_for(
        parsed.service_name,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **options,
    )
    client._jobs_sentinel = sentinel  # type: ignore[attr-defined]  # for close()
    return client


def close(client: redis.Redis) -> None:
    """Close ``client``, and the sentinel clients it asks for the master, if any."""
    client.close()
    sentinel = getattr(client, "_jobs_sentinel", None)
    if sentinel is not None:
        for sentinel_client in sentinel.sentinels:
            sentinel_client.close()


def redact_url(url: str) -> str:
    """``url`` with any password (in the netloc or a ``*password`` option) replaced by ``***``."""
    parts = urlsplit(url)
    if "password" in parts.query:
        query = [
            (key, "***" if "password" in key else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostinfo}")
    return urlunsplit(parts)
