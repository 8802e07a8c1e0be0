"""What a live list shows of each job, read from Redis in one call: a few fields of each
job hash and the exception of its latest result, never whole RQ jobs.

Rebuilding RQ's `Job` for every row (``Job.fetch_many``: every field of the hash,
dates parsed, serializer checks) and then one ``XREVRANGE`` per job for its latest
result cost most of a list page's time; one Lua call returns only the fields a row
shows, and the ``exc_string`` of each job's latest result.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from base64 import b64decode
from collections.abc import Callable
from datetime import datetime, timezone
from json.decoder import scanstring  # type: ignore[attr-defined]
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from rq.serializers import JSONSerializer
from rq.utils import str_to_date

from ..jobs.flask_job import META_PROGRESS, FlaskJob
from ..keys import job_key, results_key
from .row_scripts import LATEST as _LATEST
from .row_scripts import READ as _READ

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = [
    "exception_line",
    "load_latest",
    "progress_of",
    "queue_latest",
    "read_rows",
]

#: How much of a job's data is decompressed to read its function's path (the first value).
_HEAD = 1024
#: The job hash fields a row is made of (in this order in the script's reply).
FIELDS = ("data", "meta", "retries_left", "started_at", "ended_at", "worker_name")


def progress_of(meta: Any) -> dict[str, Any] | None:
    """The progress a job reported in its meta (``percent``, ``message``), or None."""
    raw = meta.get(META_PROGRESS) if isinstance(meta, dict) else None
    fraction = raw.get("fraction") if isinstance(raw, dict) else None
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        return None
    message = raw.get("message") if isinstance(raw, dict) else None
    return {
        "percent": round(min(1.0, max(0.0, float(fraction))) * 100),
        "message": str(message)[:200] if message else None,
    }


def exception_line(traceback: str | None) -> str | None:
    """The exception of a traceback and the first line of its message (the line after the
    last frame: a message may have lines of its own)."""
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    last = len(lines) - 1
    for i in range(last, -1, -1):  # the last frame, from the end: the message is short
        if lines[i][:1] == " ":
            return lines[i + 1 if i < last else last].strip()
    return lines[last].strip() if lines else None


def _time(raw: bytes | None) -> datetime | None:
    """RQ's ``2024-01-02T03:04:05.678901Z`` as an aware datetime (None when missing)."""
    if not raw:
        return None
    text = raw.decode("ascii", "replace")
    try:  # fromisoformat takes no "Z" before Python 3.11; "+00:00" makes it aware at once
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] == "Z" else text)
    except ValueError:
        try:
            moment = str_to_date(text)
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _func_name(raw: bytes, serializer: Any) -> str | None:
    """The function's dotted path from RQ's ``data`` field (zlib-compressed, or not)."""
    if serializer is JSONSerializer:  # the first string of '["path", ...]': no need for the rest
        try:
            head = zlib.decompressobj().decompress(raw, _HEAD)
        except zlib.error:
            head = raw
        if head[:2] == b'["':
            try:
                return str(scanstring(head.decode("utf-8", "replace"), 2)[0])
            except ValueError:  # longer than the head, or not JSON: read it all
                pass
    with contextlib.suppress(zlib.error):
        raw = zlib.decompress(raw)
    name = serializer.loads(raw)[0]
    return name if isinstance(name, str) else None


def _attempt(meta: dict[str, Any], retries_left: int | None) -> int | None:
    # FlaskJob's own rule, read from these two fields without rebuilding the job
    view = SimpleNamespace(meta=meta, retries_left=retries_left)
    attempt = FlaskJob.attempt.fget(view)  # type: ignore[attr-defined]
    return attempt if isinstance(attempt, int) else None


def _error(raw: bytes | None) -> str | None:
    """The exception line of a result's ``exc_string`` (base64 of zlib, as RQ stores it)."""
    if not raw:
        return None
    try:
        return exception_line(zlib.decompress(b64decode(raw)).decode("utf-8", "replace"))
    except Exception:  # an unreadable result: no error shown
        return None


#: The scripts registered on each client (EVALSHA: a script's text is sent once per client).
_SCRIPTS: dict[tuple[int, str], Any] = {}


def _script(state: JobsState, source: str) -> Any:
    conn: Any = state.connection
    script = _SCRIPTS.get((id(conn), source))
    if script is None or script.registered_client is not conn:
        script = _SCRIPTS[(id(conn), source)] = conn.register_script(source)
    return script


def _head(errors: bool) -> list[Any]:
    return [job_key(""), results_key(""), "1" if errors else "0", len(FIELDS), *FIELDS]


def _known(job_ids: list[str], errors: bool) -> list[Any]:
    """The ARGV of the failures of ``job_ids`` read before: how many, then (id, ended_at)."""
    pairs: list[Any] = []
    if errors:
        for job_id in job_ids:
            seen = _FAILURES.get(job_id)
            if seen is not None:
                pairs += (job_id, seen[_ENDED])
    return [len(pairs) // 2, *pairs]


def _call(
    state: JobsState, source: str, keys: list[str], args: list[Any], errors: bool, known: list[Any]
) -> Any:
    return _script(state, source)(keys=keys, args=[*_head(errors), *known, *args])


def read_rows(
    state: JobsState, job_ids: list[str], *, errors: bool = True
) -> list[dict[str, Any] | None]:
    """For each of ``job_ids``, in order: what a live list shows of it (``func``,
    ``attempt``, ``started_at``, ``ended_at``, ``worker``, ``progress``, ``error``: the
    exception line of its latest result when ``errors``), or None when its hash is gone.

    One round trip, whatever the number of jobs.
    """
    if not job_ids:
        return []
    ids = list(job_ids)
    return _rows(state, _call(state, _READ, [], ids, errors, _known(ids, errors)), ids)


#: One page of `queue_latest`: how many ids the sets hold, each entry of the page as
#: (score, id, index of its set), and the rows of its ids.
Latest = tuple[int, list[tuple[float, str, int]], list[dict[str, Any] | None]]


def queue_latest(
    state: JobsState,
    pipe: Any,
    keys: list[str],
    offset: int,
    limit: int,
    *,
    errors: bool = True,
) -> Callable[[Any], Latest]:
    """Queue on ``pipe`` the read of one page of the union of the sorted sets ``keys``
    (RQ's failed registries), highest score first, and its rows: one command. Returns
    what makes, of its reply, how many ids the sets hold, each entry of the page as
    (score, id, index of its set in ``keys``), and `read_rows` of its ids. (A Redis
    without the script answers NOSCRIPT: `load_latest`, then send it again.)"""
    if not keys or limit <= 0:
        pipe.echo("")  # one reply, as every call
        return lambda reply: (0, [], [])
    page = (*keys, offset, limit)
    args = [*_head(errors), *_known(_PAGES.get(page, []), errors), offset, limit]
    pipe.evalsha(_script(state, _LATEST).sha, len(keys), *keys, *args)
    return lambda reply: _latest(state, page, reply)


def load_latest(state: JobsState) -> None:
    """Give Redis the script of `queue_latest` (after a NOSCRIPT: a restart, SCRIPT FLUSH)."""
    script = _script(state, _LATEST)
    state.connection.script_load(script.script)


def _latest(state: JobsState, page: tuple[Any, ...], reply: list[Any]) -> Latest:
    total, count = int(reply[0]), int(reply[1])
    ids = [job_id.decode() for job_id in reply[2 : 2 + count]]
    scores = [float(score) for score in reply[2 + count : 2 + 2 * count]]
    sets = [int(index) - 1 for index in reply[2 + 2 * count : 2 + 3 * count]]
    entries = list(zip(scores, ids, sets, strict=True))
    with _KEEPING:
        _keep(_PAGES, page, ids, PAGES_KEPT)
    return total, entries, _rows(state, reply[2 + 3 * count :], ids)


def _rows(state: JobsState, reply: list[Any], ids: list[str]) -> list[dict[str, Any] | None]:
    """The rows of jobs ``ids`` from the script's flat reply (each read once: `_READ_ROWS`)."""
    width = len(FIELDS) + 1
    serializer = state.serializer
    found: list[dict[str, Any] | None] = []
    again: list[int] = []
    for n, job_id in enumerate(ids):
        values = reply[n * width : n * width + width]
        ended, exc = values[_ENDED], values[-1]
        if exc == 1:  # read before at this end: its values but meta are those (see _ROWS)
            seen = _FAILURES.get(job_id)
            if seen is None or seen[_ENDED] != ended:  # forgotten since: read it again
                again.append(n)
                found.append(None)
                continue
            meta = values[_META]
            values = list(seen)
            values[_META] = meta
        elif exc and ended:
            with _KEEPING:
                _keep(_FAILURES, job_id, tuple(values), READ_ROWS_KEPT)
        raw = (serializer, *values)
        row = _READ_ROWS.get(raw)
        if row is None:
            row = _read_row(serializer, *values)
            with _KEEPING:
                _keep(_READ_ROWS, raw, row, READ_ROWS_KEPT)
        found.append(None if row is _GONE else dict(row))
    if again:
        ids_again = [ids[n] for n in again]
        read = _rows(state, _call(state, _READ, [], ids_again, True, [0]), ids_again)
        for n, row in zip(again, read, strict=True):
            found[n] = row
    return found


def _keep(kept: dict[Any, Any], key: Any, value: Any, most: int) -> None:
    """``kept[key] = value``, the oldest entries let go past ``most`` (hold `_KEEPING`)."""
    kept.pop(key, None)
    while len(kept) >= most:
        del kept[next(iter(kept))]
    kept[key] = value


#: The rows read lately, by the raw values they were read from (the serializer and the
#: script's values: a row is a function of them alone), oldest first. A page that is
#: polled shows mostly the same jobs: their values come back from Redis unchanged, and
#: their decompressing and parsing (most of a row's cost) is done once, not per load.
_READ_ROWS: dict[tuple[Any, ...], dict[str, Any]] = {}
#: The raw values of the latest failure read of each job lately, by job id. A job's
#: failure does not change while it stays failed: the script is told which the caller
#: has, and reads only their ended_at (and meta, which the job's own code may change).
_FAILURES: dict[str, tuple[Any, ...]] = {}
#: Where ended_at and meta are in a row's values.
_ENDED, _META = FIELDS.index("ended_at"), FIELDS.index("meta")
#: The job ids of each page of the failed registries read lately (by its sets, offset and
#: size): the failures to tell the script of when that page is read again.
_PAGES: dict[tuple[Any, ...], list[str]] = {}
#: How many rows (and failures) are kept: two pages of the largest size (each holds its
#: raw values: a few MB at most, with long tracebacks); and pages.
READ_ROWS_KEPT = 1_000
PAGES_KEPT = 100
_KEEPING = threading.Lock()  # pages are served by threads
#: The row of a job whose hash is gone.
_GONE: dict[str, Any] = {}


def _read_row(
    serializer: Any,
    data: bytes | None,
    meta_raw: bytes | None,
    retries: bytes | None,
    started: bytes | None,
    ended: bytes | None,
    worker: bytes | None,
    exc: bytes | None,
) -> dict[str, Any]:
    """One row from its raw values (`_GONE` when the hash is gone)."""
    if not data and not meta_raw and not started and not ended:
        return _GONE  # data is never empty in a stored job
    func = attempt = None
    meta: Any = {}
    try:
        meta = serializer.loads(meta_raw) if meta_raw else {}
        func = _func_name(data, serializer) if data else None
        left = int(retries) if retries else None
        attempt = _attempt(meta if isinstance(meta, dict) else {}, left)
    except Exception:  # unreadable job data: show its id alone
        pass
    return {
        "func": func,
        "attempt": attempt,
        "started_at": _time(started),
        "ended_at": _time(ended),
        "worker": worker.decode("utf-8", "replace") if worker else None,
        "progress": progress_of(meta),
        "error": _error(exc),
    }
