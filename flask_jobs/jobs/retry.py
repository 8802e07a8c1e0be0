"""Retry policies: fixed, listed or exponential delays with jitter, optionally per exception."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import rq

__all__ = ["Retry"]


def _qualname(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Retry:
    """How often, and after what delay, a failed job runs again.

    ``backoff`` is ``"exponential"`` (``delay * 2 ** (n - 1)``, capped at
    ``max_delay``), ``"fixed"`` (``delay`` every time) or an explicit list of
    delays in seconds (the last one repeats). With ``jitter`` each computed
    delay is drawn from ``[delay / 2, delay]`` so that a burst of failures
    does not come back as a burst of retries. ``on`` limits retries to the
    given exception types; any other exception fails the job at once.

    ``max`` counts retries, not attempts: ``Retry(max=2)`` allows 3 attempts.
    """

    def __init__(
        self,
        max: int = 3,
        *,
        backoff: str | Sequence[float] = "exponential",
        delay: float = 1.0,
        max_delay: float = 3600.0,
        jitter: bool = True,
        on: type[BaseException] | Iterable[type[BaseException]] | None = None,
    ) -> None:
        if isinstance(max, bool) or not isinstance(max, int) or max < 1:
            raise ValueError(f"Retry(max={max!r}): max must be a whole number >= 1")
        if isinstance(backoff, str):
            if backoff not in ("exponential", "fixed"):
                raise ValueError(
                    f"Retry(backoff={backoff!r}): use 'exponential', 'fixed' or a list of seconds"
                )
            delays: tuple[float, ...] = ()
        else:
            delays = tuple(float(d) for d in backoff)
            if not delays or any(d < 0 for d in delays):
                raise ValueError("Retry(backoff=[...]): give at least one delay, none negative")
        if delay < 0 or max_delay < 0:
            raise ValueError("Retry: delay and max_delay must not be negative")
        if on is None:
            exceptions: tuple[type[BaseException], ...] = ()
        elif isinstance(on, type):
            exceptions = (on,)
        else:
            exceptions = tuple(on)
        for exc in exceptions:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise ValueError(f"Retry(on=...): {exc!r} is not an exception class")
        self.max = max
        self.backoff = backoff if isinstance(backoff, str) else "list"
        self.delays = delays
        self.delay = float(delay)
        self.max_delay = float(max_delay)
        self.jitter = jitter
        self.on = exceptions

    def __repr__(self) -> str:
        backoff = list(self.delays) if self.backoff == "list" else self.backoff
        return (
            f"Retry(max={self.max}, backoff={backoff!r}, delay={self.delay:g}, "
            f"max_delay={self.max_delay:g}, jitter={self.jitter})"
        )

    def base_delay(self, retry_number: int) -> float:
        """The delay before retry ``retry_number`` (1-based), before jitter."""
        if self.backoff == "list":
            return self.delays[min(retry_number, len(self.delays)) - 1]
        if self.backoff == "fixed":
            return min(self.delay, self.max_delay)
        return float(min(self.delay * 2 ** (retry_number - 1), self.max_delay))

    def to_rq(self) -> rq.Retry:
        """The plain-RQ equivalent (no jitter, no exception filter), for RQ's own workers."""
        intervals = [max(0, round(self.base_delay(n))) for n in range(1, self.max + 1)]
        return rq.Retry(max=self.max, interval=intervals)

    def to_meta(self) -> dict[str, Any]:
        """The policy as JSON-safe data, stored in the job's ``meta``."""
        return {
            "max": self.max,
            "backoff": self.backoff,
            "delays": list(self.delays),
            "delay": self.delay,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "on": [_qualname(exc) for exc in self.on],
        }

    @classmethod
    def from_meta(cls, data: Mapping[str, Any]) -> RetryPolicy:
        """Rebuild the parts of a policy a worker needs from ``to_meta`` data."""
        return RetryPolicy(data)


class RetryPolicy:
    """A retry policy as a worker reads it back from a job's ``meta``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        backoff = data.get("backoff", "fixed")
        self._retry = Retry(
            int(data.get("max", 1)),
            backoff=(data.get("delays") or [0.0]) if backoff == "list" else backoff,
            delay=float(data.get("delay", 0.0)),
            max_delay=float(data.get("max_delay", 3600.0)),
            jitter=bool(data.get("jitter", False)),
        )
        self.on = tuple(str(name) for name in data.get("on", ()))

    def delay_for(self, retry_number: int) -> float:
        """The delay before retry ``retry_number``, jitter included."""
        base = self._retry.base_delay(retry_number)
        if self._retry.jitter and base > 0:
            return random.uniform(base / 2, base)
        return base

    def retries(self, exc_type: type[BaseException] | None) -> bool:
        """Whether an exception of ``exc_type`` may be retried under this policy."""
        if not self.on or exc_type is None:
            return True
        return any(_qualname(cls) in self.on for cls in exc_type.__mro__)
