"""The rows of a live list (Failed now, Running, Retrying, Scheduled) as HTML, made here.

A page of 100 rows in Jinja is some 2,000 escaped expressions and 5,000 pieces
joined: it cost more than reading the rows from Redis. Here each row is one
f-string of values escaped once (a value shared by rows, as a function's cell or an
error, is escaped once per page). The page around the rows stays in
``_live_rows.html``; every value from Redis goes through `markupsafe.escape`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from flask import url_for
from markupsafe import Markup, escape

from .jobs_common import first_line, from_now, job_url_maker, jobs_url_maker, when
from .web import age

__all__ = ["BUTTON_LABELS", "ROW_ACTION", "rows_html", "truncate"]

#: Each action's button label (the bulk buttons and the one-row button).
BUTTON_LABELS = {
    "requeue": "Requeue",
    "cancel": "Cancel",
    "delete": "Delete…",
    "stop": "Stop…",
    "run_now": "Run now",
}
#: The action of each row's own button, by live set.
ROW_ACTION = {"failed": "requeue", "running": "stop", "retrying": "run_now", "scheduled": "run_now"}
EMPTY = {
    "failed": "No job is failed now.",
    "running": "No job is running now.",
    "retrying": "No job is waiting for a retry.",
    "scheduled": "No job is scheduled for later.",
}
DASH = "\u2013"
#: A job id of these characters (RQ's are UUIDs) is the same escaped, and in a URL.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+\Z").match


def truncate(text: str, length: int, end: str = "...", *, killwords: bool = False) -> str:
    """Jinja's ``truncate`` filter (its default leeway of 5 when words are kept)."""
    if len(text) <= length + (0 if killwords else 5):
        return text
    if killwords:
        return text[: length - len(end)] + end
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


def rows_html(
    rows: list[dict[str, Any]],
    kind: str,
    endpoint: str,
    *,
    selectable: bool,
    button: str | None,
    columns: int,
) -> Markup:
    """The ``<tr>`` of each row: a checkbox when ``selectable``, the row's own ``button``
    (its label) when given; a row saying the set is empty when it is.

    A row but its "how long ago" is a function of its values and of the list's settings:
    its pieces are made once (`_MADE`) and joined with that text at each load, as a
    polled list shows the same rows again and again.
    """
    if not rows:
        return Markup(f'<tr><td colspan="{columns + 1}" class="fj-muted">{EMPTY[kind]}</td></tr>')
    job_path = str(escape(job_url_maker()("")))  # + the quoted id: nothing left to escape
    settings = (kind, endpoint, selectable, button, job_path)
    make = _maker(kind, endpoint, selectable, button, job_path)
    now = datetime.now(timezone.utc)
    out = []
    for row in rows:
        if kind == "running":  # elapsed time, progress: made at each load
            out.append(make(row, now)[0])
            continue
        values = (row["id"], row["queue"], row["func"], row["attempt"], row["at"], row["error"])
        key = (settings, values)
        parts = _MADE.get(key)
        if parts is None:
            parts = make(row, now)
            if len(_MADE) >= MADE_KEPT:
                _MADE.clear()
            _MADE[key] = parts
        out.append(from_now(row["at"], now).join(parts))
    return Markup("\n".join(out))


#: The pieces of rows made lately (see `rows_html`), by their values and list settings.
_MADE: dict[tuple[Any, ...], tuple[str, ...]] = {}
MADE_KEPT = 2_000


def _maker(
    kind: str, endpoint: str, selectable: bool, button: str | None, job_path: str
) -> Callable[[dict[str, Any], datetime], tuple[str, ...]]:
    """What makes the pieces of a row of this list (joined with its "how long ago" text)."""
    func_cell = _cached(lambda func: _func_cell(func, jobs_url_maker()))
    queue_cell = _cached(
        lambda name: (
            f'<td><a href="{escape(url_for(f".{endpoint}", queue=name))}">{escape(name)}</a></td>'
        )
    )
    tail = _tail(kind)
    end = "<td></td></tr>"
    if button:
        css = "fj-small fj-danger" if kind == "running" else "fj-small "
        end = (
            f'<td><button type="submit" form="fj-one" value="{{}}" name="job_ids" class="{css}">'
            f"{button}</button></td></tr>"
        )

    def make(row: dict[str, Any], now: datetime) -> tuple[str, ...]:
        job_id = row["id"]
        if _PLAIN(job_id):  # as RQ makes them: nothing to escape in HTML or in a URL
            safe_id = path = job_id
            short = job_id if len(job_id) <= 10 else job_id[:9] + "…"
        else:
            safe_id, path = escape(job_id), quote(job_id, safe="")
            short = safe_id if len(job_id) <= 10 else escape(job_id[:9] + "…")
        check = (
            f'<td><input type="checkbox" name="job_ids" value="{safe_id}" '
            f'aria-label="Select {safe_id}"></td>'
            if selectable
            else ""
        )
        attempt = row["attempt"] or DASH
        head = (
            f'<tr>{check}<td><span class="fj-id"><a href="{job_path}{path}" '
            f'title="{safe_id}"><code>{short}</code></a><button type="button" class="fj-copy" '
            f'data-copy="{safe_id}" title="Copy the job id" aria-label="Copy job id {safe_id}">'
            "</button></span></td>"
            f'{func_cell(row["func"])}{queue_cell(row["queue"])}<td class="fj-num">{attempt}</td>'
        )
        parts = list(tail(row, now))
        parts[0] = head + parts[0]
        parts[-1] += end.format(safe_id) if button else end
        return tuple(parts)

    return make


def _cached(make: Callable[[Any], str]) -> Callable[[Any], str]:
    """``make``, asked once per value on this page."""
    made: dict[Any, str] = {}

    def cell(value: Any) -> str:
        found = made.get(value)
        if found is None:
            found = made[value] = make(value)
        return found

    return cell


def _func_cell(func: str | None, jobs_url: Callable[..., str]) -> str:
    if not func:
        return '<td><span class="fj-muted">gone</span></td>'
    safe = escape(func)
    return (
        f'<td><a href="{escape(jobs_url(function=func))}" title="{safe}">'
        f"<code>{escape(func.rpartition('.')[2])}</code></a></td>"
    )


def _tail(kind: str) -> Callable[[dict[str, Any], datetime], tuple[str, ...]]:
    """The cells a kind of list has of its own (when, and the error, or worker, or due in),
    in pieces to be joined with the row's "how long ago" text."""
    if kind == "running":
        workers = escape(url_for(".workers"))

        def running(row: dict[str, Any], now: datetime) -> tuple[str, ...]:
            worker = row["worker"]
            cell = DASH
            if worker:
                cell = (
                    f'<a href="{workers}#worker-{escape(worker)}"><code>'
                    f"{escape(truncate(worker, 24, '…', killwords=True))}</code></a>"
                )
            progress = row["progress"]
            if progress:
                percent = escape(progress["percent"])
                message = progress["message"]
                note = f' <span class="fj-muted">{escape(truncate(message, 40))}</span>'
                cell += (
                    f'\n<span class="fj-progress" role="progressbar" aria-valuemin="0" '
                    f'aria-valuemax="100" aria-valuenow="{percent}"><span style="width: '
                    f'{percent}%"></span></span>\n{percent}%{note if message else ""}'
                )
            started = escape(when(row["started_at"]))
            elapsed = escape(age(row["started_at"]))
            return (f'<td title="started {started} UTC">{elapsed}</td><td>{cell}</td>',)

        return running
    errors = _cached(
        lambda error: (
            f'<td class="fj-error-cell" title="{escape(error)}">'
            f'<span class="fj-bad">{escape(first_line(error, 100))}</span></td>'
        )
    )

    def timed(row: dict[str, Any], now: datetime) -> tuple[str, ...]:
        # "how long ago" (texts made of numbers and units: nothing to escape) goes between
        head, at = '<td title="', f'">{when(row["at"])}</td>'
        if kind == "scheduled":
            title = escape(row["error"] or "")
            cell = f'<td class="fj-error-cell" title="{title}"><span class="fj-muted">'
            return head, at + cell, "</span></td>"
        if row["error"]:
            return head, at + errors(row["error"])
        return head, f'{at}<td class="fj-error-cell" title="">{DASH}</td>'

    return timed
