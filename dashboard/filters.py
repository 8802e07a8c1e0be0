"""The jobs list's filters, checked at the edge: a bad one is a 400 that says why."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flask import abort

from flask_jobs.ops.matching import search_arguments

from .jobs_common import text_field

__all__ = ["FILTERS", "INLINE_LIMIT", "Filters"]

#: The filters of the jobs list, with the longest value each accepts.
FILTERS = {
    "status": 20,
    "queue": 100,
    "function": 255,
    "origin": 255,
    "since": 40,
    "until": 40,
    "text": 200,
    "workflow": 64,
}
#: Up to this many matching jobs are requeued within the request; more go to a background job.
INLINE_LIMIT = 200


@dataclasses.dataclass(frozen=True)
class Filters:
    """The jobs list's filters, validated, as the strings the form shows."""

    status: str = ""
    queue: str = ""
    function: str = ""
    origin: str = ""
    since: str = ""
    until: str = ""
    text: str = ""
    workflow: str = ""

    @classmethod
    def parse(cls, source: Mapping[str, str]) -> Filters:
        """The filters in ``source`` (query or form); a 400 that says why when one is bad."""
        values = {name: text_field(source, name, limit) for name, limit in FILTERS.items()}
        filters = cls(**values)
        filters.search_arguments()  # a bad status, queue or date is a 400 now, not later
        return filters

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `HistoryQuery.search`."""
        try:
            return search_arguments(self.query())
        except ValueError as exc:
            abort(400, str(exc))

    def problem(self) -> str | None:
        """Why these filters can match nothing, when that is plain from the filters alone."""
        arguments = self.search_arguments()
        since, until = arguments["since"], arguments["until"]
        if since is not None and until is not None and since >= until:
            return (
                f"'enqueued since' ({self.since}) is not before 'until' ({self.until}): "
                "no job can match. Swap them, or clear one."
            )
        return None

    def query(self) -> dict[str, Any]:
        """The filters that are set, as query arguments."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value}
