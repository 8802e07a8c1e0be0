"""What a live list shows of each job, read from Redis in one call: a few fields of each
job hash and the exception of its latest result, never whole RQ jobs.

Rebuilding RQ's `Job` for every row (``Job.fetch_many``: every field of the hash,
dates parsed, serializer checks) and then one ``XREVRANGE`` per job for its latest
result cost most of a list page's time; one Lua call returns only the fields a row
shows, and the ``exc_string`` of each job's latest result.
"""

from __future__ import annotations

import contextlib
import zlib
from base64 import b64decode
from datetime import datetime, timezone
from json.decoder import scanstring  # type: ignore[attr-defined]
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from rq.serializers import JSONSerializer
from rq.utils import str_to_date

from ..jobs.flask_job import META_PROGRESS, FlaskJob
from ..keys import job_key, results_key

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = ["exception_line", "progress_of", "read_latest", "read_rows"]

#: How much of a job's data is decompressed to read its function's path (the first value).
_HEAD = 1024
#: The job hash fields a row is made of (in this order in the script's reply).
FIELDS = ("data", "meta", "retries_left", "started_at", "ended_at", "worker_name")
#: The rows of job ids, read in Lua. ARGV[1], ARGV[2]: the prefixes of a job's hash and
#: of its results stream; ARGV[3]: "1" to read each job's latest result; ARGV[4]: how many
#: hash fields follow. Per job: the fields, then the latest result's exc_string (nil when
#: missing), all in one flat array (hiredis parses it in C; packing the values into one
#: string cost more in Lua, and more again to split in Python).
_ROWS = """
local errors = ARGV[3] == '1'
local width = tonumber(ARGV[4])
local fields = {}
for i = 1, width do fields[i] = ARGV[4 + i] end
local function rows(ids, out, n)
    for _, id in ipairs(ids) do
        local values = redis.call('hmget', ARGV[1] .. id, unpack(fields))
        for j = 1, width do
            n = n + 1
            out[n] = values[j]
        end
        local exc = false
        if errors then
            local latest = redis.call('xrevrange', ARGV[2] .. id, '+', '-', 'COUNT', 1)
            if latest[1] then
                local payload = latest[1][2]
                for j = 1, #payload, 2 do
                    if payload[j] == 'exc_string' then exc = payload[j + 1] end
                end
            end
        end
        n = n + 1
        out[n] = exc
    end
    return out
end
"""
#: The rest of ARGV: the job ids.
_READ = (
    _ROWS
    + """
local ids = {}
for i = 5 + width, #ARGV do ids[#ids + 1] = ARGV[i] end
return rows(ids, {}, 0)
"""
)
#: KEYS: sorted sets of job ids (the failed registries). The rest of ARGV: the offset and
#: size of a page of their union, highest score first (score, then id, then key: highest
#: first). Replies {total of every set, ids..., their scores..., their set's index...},
#: then the ids' rows: the page and its rows in one call.
_LATEST = (
    _ROWS
    + """
local offset = tonumber(ARGV[5 + width])
local size = tonumber(ARGV[6 + width])
local total, entries = 0, {}
-- one set: its page alone; several: the first offset + size of each, merged
local first = #KEYS == 1 and offset or 0
for k = 1, #KEYS do
    total = total + redis.call('zcard', KEYS[k])
    local found = redis.call('zrevrange', KEYS[k], first, offset + size - 1, 'WITHSCORES')
    for i = 1, #found, 2 do
        entries[#entries + 1] = {tonumber(found[i + 1]), found[i], KEYS[k], found[i + 1], k}
    end
end
if #KEYS > 1 then
    table.sort(entries, function(a, b)
        if a[1] ~= b[1] then return a[1] > b[1] end
        if a[2] ~= b[2] then return a[2] > b[2] end
        return a[3] > b[3]
    end)
else
    offset = 0
end
local ids, scores, sets = {}, {}, {}
for i = offset + 1, math.min(#entries, offset + size) do
    ids[#ids + 1] = entries[i][2]
    scores[#scores + 1] = entries[i][4]
    sets[#sets + 1] = entries[i][5]
end
local out = {total, #ids}
for _, list in ipairs({ids, scores, sets}) do
    for _, value in ipairs(list) do out[#out + 1] = value end
end
return rows(ids, out, #out)
"""
)


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


def _call(state: JobsState, source: str, keys: list[str], args: list[Any], errors: bool) -> Any:
    conn: Any = state.connection
    script = _SCRIPTS.get((id(conn), source))
    if script is None or script.registered_client is not conn:
        script = _SCRIPTS[(id(conn), source)] = conn.register_script(source)
    head = [job_key(""), results_key(""), "1" if errors else "0", len(FIELDS), *FIELDS]
    return script(keys=keys, args=head + args)


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
    return _rows(state, _call(state, _READ, [], list(job_ids), errors), len(job_ids))


def read_latest(
    state: JobsState, keys: list[str], offset: int, limit: int, *, errors: bool = True
) -> tuple[int, list[tuple[float, str, int]], list[dict[str, Any] | None]]:
    """One page of the union of the sorted sets ``keys`` (RQ's failed registries), highest
    score first, and its rows: how many ids the sets hold, each entry of the page as
    (score, id, index of its set in ``keys``), and `read_rows` of its ids. One round trip."""
    if not keys or limit <= 0:
        return 0, [], []
    reply = _call(state, _LATEST, keys, [offset, limit], errors)
    total, count = int(reply[0]), int(reply[1])
    ids = [job_id.decode() for job_id in reply[2 : 2 + count]]
    scores = [float(score) for score in reply[2 + count : 2 + 2 * count]]
    sets = [int(index) - 1 for index in reply[2 + 2 * count : 2 + 3 * count]]
    entries = list(zip(scores, ids, sets, strict=True))
    return total, entries, _rows(state, reply[2 + 3 * count :], count)


def _rows(state: JobsState, reply: list[Any], count: int) -> list[dict[str, Any] | None]:
    """The rows of ``count`` jobs from the script's flat reply."""
    width = len(FIELDS) + 1
    serializer = state.serializer
    found: list[dict[str, Any] | None] = []
    for n in range(count):
        data, meta_raw, retries, started, ended, worker, exc = reply[n * width : n * width + width]
        if not data and not meta_raw and not started and not ended:
            found.append(None)  # the hash is gone (data is never empty in a stored job)
            continue
        func = attempt = None
        meta: Any = {}
        try:
            meta = serializer.loads(meta_raw) if meta_raw else {}
            func = _func_name(data, serializer) if data else None
            left = int(retries) if retries else None
            attempt = _attempt(meta if isinstance(meta, dict) else {}, left)
        except Exception:  # unreadable job data: show its id alone
            pass
        found.append(
            {
                "func": func,
                "attempt": attempt,
                "started_at": _time(started),
                "ended_at": _time(ended),
                "worker": worker.decode("utf-8", "replace") if worker else None,
                "progress": progress_of(meta),
                "error": _error(exc),
            }
        )
    return found
