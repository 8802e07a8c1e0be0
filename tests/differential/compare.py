"""Two snapshots side by side: their differences, the allowed ones set apart, as a report."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from differential.snapshot import Entry, Snapshot

__all__ = ["Allowed", "Difference", "Divergence", "KnownDivergence", "differences", "report"]

_MISSING = MISSING = "<missing>"


@dataclass(frozen=True)
class Difference:
    """One thing RQ's run left differently from ours: a key, or a field (hash field,
    ``[n].field`` of a stream entry, ``(ttl)``, ``(type)``, ``(value)``) of one."""

    key: str
    field: str
    rq: Any
    ours: Any

    def __str__(self) -> str:
        return f"  {self.key} {self.field}:\n      rq:   {self.rq!r}\n      ours: {self.ours!r}"


@dataclass(frozen=True)
class Allowed:
    """A difference we make on purpose. ``key`` and ``field`` are shell-style patterns
    (``field="(key)"`` is the key itself, present on one side only); ``workers`` and
    ``scenarios`` narrow it to some of our worker kinds and scenarios."""

    key: str
    field: str
    reason: str
    workers: tuple[str, ...] = ("*",)
    scenarios: tuple[str, ...] = ("*",)
    #: When set, only this pair of values (RQ's, ours) is allowed, e.g. ``("", MISSING)``.
    values: tuple[Any, Any] | None = None
    #: A difference that shows only when threads interleave one way: a run that does not
    #: need it is no sign that it is stale.
    timing: bool = False

    def covers(self, diff: Difference, worker: str, scenario: str) -> bool:
        return (
            fnmatchcase(diff.key, self.key)
            and fnmatchcase(diff.field, self.field)
            and any(fnmatchcase(worker, w) for w in self.workers)
            and any(fnmatchcase(scenario, s) for s in self.scenarios)
            and (self.values is None or (diff.rq, diff.ours) == self.values)
        )


class Divergence(Allowed):
    """A difference RQ's tools would see that we do not mean: a bug of ours, found by this
    suite and left for a fix. ``reason`` says precisely what differs. The scenarios it
    names are expected to fail (strict xfail) until it is fixed."""

    def applies(self, worker: str, scenario: str) -> bool:
        return any(fnmatchcase(worker, w) for w in self.workers) and any(
            fnmatchcase(scenario, s) for s in self.scenarios
        )


class KnownDivergence(AssertionError):
    """Raised when a run shows only differences named in `DIVERGENCES` (and allowed ones)."""


def differences(rq: Snapshot, ours: Snapshot) -> list[Difference]:
    """Every key, field, entry and TTL in which the two snapshots differ."""
    found: list[Difference] = []
    for key in sorted(set(rq) | set(ours)):
        a, b = rq.get(key), ours.get(key)
        if a is None or b is None:
            found.append(
                Difference(key, "(key)", _MISSING if a is None else a, _MISSING if b is None else b)
            )
            continue
        found.extend(_entry_differences(key, a, b))
    return found


def _entry_differences(key: str, a: Entry, b: Entry) -> list[Difference]:
    if a.type != b.type:
        return [Difference(key, "(type)", a, b)]
    found = []
    if a.ttl != b.ttl:
        found.append(Difference(key, "(ttl)", a.ttl, b.ttl))
    if a.type == "hash":
        found.extend(_mapping_differences(key, "", a.value, b.value))
    elif a.type == "stream":
        for n in range(max(len(a.value), len(b.value))):
            left = a.value[n] if n < len(a.value) else {}
            right = b.value[n] if n < len(b.value) else {}
            found.extend(_mapping_differences(key, f"[{n}].", left, right))
    elif a.value != b.value:
        found.append(Difference(key, "(value)", a.value, b.value))
    return found


def _mapping_differences(
    key: str, prefix: str, a: dict[str, Any], b: dict[str, Any]
) -> list[Difference]:
    return [
        Difference(key, prefix + name, a.get(name, _MISSING), b.get(name, _MISSING))
        for name in sorted(set(a) | set(b))
        if a.get(name, _MISSING) != b.get(name, _MISSING)
    ]


def report(
    title: str,
    unexplained: list[Difference],
    allowed: list[tuple[Difference, Allowed]],
    known: list[tuple[Difference, Allowed]] | None = None,
) -> str:
    """A readable account of the unexplained differences (and, briefly, the allowed ones)."""
    lines = [f"{title}: {len(unexplained)} difference(s) RQ's tools would see"]
    lines += [str(d) for d in unexplained]
    if known:
        lines.append("  known divergences (bugs of ours, see differential/divergences.py):")
        lines += [str(d) for d, _ in known]
    if allowed:
        lines.append(f"  (and {len(allowed)} allowed: see differential/allowed.py)")
        lines += [f"    {d.key} {d.field}: {rule.reason[:70]}" for d, rule in allowed]
    return "\n".join(lines)
