"""Jobs pages: the history list with filters and bulk actions, one job's detail, failures."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import redis
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from flask_jobs.actions import REQUEUEABLE, cancel, requeue
from flask_jobs.config import QUEUE_NAME
from flask_jobs.errors import JobsError
from flask_jobs.events import STATUSES
from flask_jobs.history_query import MAX_PAGE, HistoryQuery
from flask_jobs.rq_job import META_PROGRESS, FlaskJob

from .web import arg_choice, arg_int, render, state

__all__ = ["register"]

#: What RQ accepts as a job id (plus the history column's length): anything else is no job.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: Origins that name another job: a requeue, a copy, or a job enqueued by a job.
ORIGIN_JOB = re.compile(r"(?:requeue|copy|job):([A-Za-z0-9_-]{1,128})(?:#\d+)?")
PAGE_SIZE = 50
#: At most this many jobs per "requeue all matching" (the rest: run it again).
MATCHING_CAP = 10_000
#: At most this many ids in one bulk form (a page holds at most MAX_PAGE rows).
BULK_CAP = 1_000
WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CANCELABLE = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
BULK_ACTIONS = ("requeue", "cancel", "delete")
JOB_ACTIONS = (*BULK_ACTIONS, "copy")
DONE = {"requeue": "Requeued", "cancel": "Canceled", "delete": "Deleted"}
#: The filters of the jobs list, with the longest value each accepts.
FILTERS = {
    "status": 20,
    "queue": 100,
    "function": 255,
    "origin": 255,
    "since": 40,
    "until": 40,
    "text": 200,
}


class HistoryUnavailable(Exception):
    """The history database could not be read."""


# -- input at the edge -----------------------------------------------------------


def _text(source: Mapping[str, str], name: str, limit: int) -> str:
    value = (source.get(name) or "").strip()
    if len(value) > limit:
        abort(400, f"'{name}' is too long: {len(value)} characters, at most {limit}.")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        abort(400, f"'{name}' must not contain control characters.")
    return value


def _moment(name: str, raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        abort(400, f"'{name}' must be a date and time like 2024-05-01T13:45 (UTC), not {raw!r}.")


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

    @classmethod
    def parse(cls, source: Mapping[str, str]) -> Filters:
        """The filters in ``source`` (query or form); a 400 that says why when one is bad."""
        values = {name: _text(source, name, limit) for name, limit in FILTERS.items()}
        if values["status"] and values["status"] not in STATUSES:
            abort(400, f"'status' must be one of {', '.join(STATUSES)}, not {values['status']!r}.")
        if values["queue"] and not QUEUE_NAME.match(values["queue"]):
            abort(400, f"'queue' {values['queue']!r} is not a queue name.")
        filters = cls(**values)
        filters.search_arguments()  # a bad date is a 400 now, not later
        return filters

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `HistoryQuery.search`."""
        return {
            "status": self.status or None,
            "queue": self.queue or None,
            "function": self.function or None,
            "origin": self.origin or None,
            "since": _moment("since", self.since),
            "until": _moment("until", self.until),
            "text": self.text or None,
        }

    def query(self) -> dict[str, Any]:
        """The filters that are set, as query arguments."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value}


def _cursor() -> int | None:
    if not request.args.get("cursor"):
        return None
    return arg_int("cursor", 0, minimum=1, maximum=2**63 - 1)


def _check_id(job_id: str) -> None:
    if not JOB_ID.fullmatch(job_id):
        abort(
            404,
            f"{job_id[:80]!r} is not a job id: job ids are 1 to 128 letters, digits, '_' or '-'.",
        )


def _job_ids(values: list[str]) -> tuple[list[str], int]:
    """The distinct valid ids among ``values``, and how many were not ids at all."""
    if len(values) > BULK_CAP:
        abort(400, f"Select at most {BULK_CAP} jobs at once, not {len(values)}.")
    ids = list(dict.fromkeys(v for v in values if JOB_ID.fullmatch(v)))
    return ids, len(set(values)) - len(ids)


# -- reading -----------------------------------------------------------------------


def _history() -> HistoryQuery | None:
    jobs_state = state()
    if not jobs_state.history_enabled:
        return None
    return HistoryQuery(jobs_state.history, current_app._get_current_object())  # type: ignore[attr-defined]


@contextmanager
def _reading_history() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        current_app.logger.warning("dashboard: history unavailable: %s", exc)
        raise HistoryUnavailable() from exc


def _history_off() -> ResponseReturnValue:
    return render_template(
        "flask_jobs/jobs_message.html",
        title="The job history is off",
        message="This page reads the job history, and JOBS_HISTORY_ENABLED is False. "
        "The overview shows the live queues.",
    )


def _history_down(exc: HistoryUnavailable) -> ResponseReturnValue:
    message = (
        "The job history database cannot be read right now (the app's log says why). "
        "The overview still shows the live queues."
    )
    return render_template(
        "flask_jobs/jobs_message.html", title="History unavailable", message=message
    ), 503


def _fetch(job_id: str) -> FlaskJob | None:
    """The job in Redis, or None when it is gone (or its data cannot be read)."""
    jobs_state = state()
    try:
        job = FlaskJob.fetch(
            job_id, connection=jobs_state.connection, serializer=jobs_state.serializer
        )
    except NoSuchJobError:
        return None
    except (redis.ConnectionError, redis.TimeoutError):
        raise  # the blueprint's 503 page
    except Exception as exc:  # a foreign serializer or a damaged hash: show the history only
        current_app.logger.warning("dashboard: cannot read job %s: %s", job_id, exc)
        return None
    assert isinstance(job, FlaskJob)
    return job


def _statuses(job_ids: list[str]) -> list[str | None]:
    """The RQ status of each job (None: not in Redis), a pipeline per thousand."""
    statuses: list[str | None] = []
    for start in range(0, len(job_ids), 1000):
        with state().connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start : start + 1000]:
                pipe.hget(FlaskJob.key_for(job_id), "status")
            statuses.extend(v.decode() if v else None for v in pipe.execute())
    return statuses


def _matching_ids(query: HistoryQuery, filters: Filters) -> tuple[list[str], bool]:
    """Distinct job ids of the rows matching ``filters``, newest first; whether capped."""
    seen: dict[str, None] = {}
    cursor = None
    with _reading_history():
        while len(seen) <= MATCHING_CAP:
            page = query.search(**filters.search_arguments(), cursor=cursor, limit=MAX_PAGE)
            seen.update(dict.fromkeys(row["job_id"] for row in page.rows))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    ids = list(seen)
    return ids[:MATCHING_CAP], len(ids) > MATCHING_CAP


def _group_attempts(query: HistoryQuery, func: str, exc_type: str) -> dict[str, set[int]]:
    """Per job id, its failed attempts that raised ``exc_type`` in ``func``."""
    found: dict[str, set[int]] = {}
    with _reading_history():
        for status in ("failed", "abandoned"):
            cursor = None
            while len(found) < MATCHING_CAP:
                page = query.search(
                    status=status, function=func, text=exc_type, cursor=cursor, limit=MAX_PAGE
                )
                for row in page.rows:
                    if row["exc_type"] == exc_type:
                        found.setdefault(row["job_id"], set()).add(row["attempt"])
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    return found


def _still_failed(job: FlaskJob | None, attempts: set[int]) -> bool:
    """Whether ``job`` is in the failed registry and its last failure is one of ``attempts``."""
    return (
        job is not None
        and job.get_status(refresh=False) == JobStatus.FAILED
        and job.attempt in attempts
    )


# -- changing ------------------------------------------------------------------------


def _perform(action: str, job: FlaskJob) -> None:
    """Requeue, cancel or delete ``job``; `JobsError` when its state does not allow it."""
    jobs_state = state()
    if action == "requeue":
        requeue(jobs_state, job)
    elif action == "cancel":
        cancel(jobs_state, job)
    elif action == "delete":
        if job.get_status(refresh=False) == JobStatus.STARTED:
            raise JobsError(f"job {job.id} is running; stop it before deleting it")
        job.delete()
    else:  # pragma: no cover - callers check the action
        raise ValueError(action)


def _perform_all(action: str, jobs: Iterator[FlaskJob | None]) -> tuple[int, int]:
    """``action`` on each job: how many were done, and how many skipped (gone or wrong state)."""
    done = skipped = 0
    for job in jobs:
        if job is None:
            skipped += 1
            continue
        try:
            _perform(action, job)
        except (JobsError, InvalidJobOperation):
            skipped += 1
        else:
            done += 1
    return done, skipped


def _copy(job: FlaskJob) -> FlaskJob:
    """A new job with ``job``'s function, arguments and queue, its origin ``copy:<id>``."""
    if not isinstance(job.func_name, str):
        raise JobsError(f"job {job.id} has no function path to enqueue again")
    function = state().jobs.function(job.func_name)
    call = function.options(queue=job.origin, origin=f"copy:{job.id}")
    return call.enqueue(*job.args, **job.kwargs)


def _redirect(url: str, message: str, category: str = "message") -> Response:
    """A 303 to ``url`` with ``message``, flashed if the app has a secret key, else in ``done``."""
    if current_app.secret_key:
        flash(message, category)
    else:
        url += ("&" if "?" in url else "?") + urlencode({"done": message})
    return redirect(url, 303)


def _back() -> str:
    """The jobs list the bulk form came from (its filters only, so never another site)."""
    given = dict(parse_qsl(request.form.get("back", "")[:4000]))
    kept: dict[str, Any] = {
        name: given[name][:300] for name in (*FILTERS, "cursor", "limit") if given.get(name)
    }
    return url_for(".jobs", **kept)


def _confirm(
    title: str, message: str, action_url: str, fields: list[tuple[str, str]], **extra: Any
) -> ResponseReturnValue:
    return render_template(
        "flask_jobs/job_confirm.html",
        title=title,
        message=message,
        action_url=action_url,
        fields=fields,
        **extra,
    )


def _counted(action: str, done: int, skipped: int, what: str = "job(s)") -> tuple[str, str]:
    message = f"{DONE[action]} {done} {what}."
    if skipped:
        message += (
            f" Skipped {skipped}: gone from Redis, or not in a state that allows it"
            " (requeue: failed, stopped or canceled; cancel: queued, scheduled or deferred;"
            " delete: not running)."
        )
    return message, "error" if skipped and not done else "message"


# -- views ---------------------------------------------------------------------------


def jobs() -> ResponseReturnValue:
    """Jobs from the history, newest first, filtered, a page at a time."""
    filters = Filters.parse(request.args)
    limit = arg_int("limit", PAGE_SIZE, minimum=1, maximum=MAX_PAGE)
    cursor = _cursor()
    query = _history()
    if query is None:
        return _history_off()
    with _reading_history():
        page = query.search(**filters.search_arguments(), cursor=cursor, limit=limit)
    here = filters.query()
    if limit != PAGE_SIZE:
        here["limit"] = str(limit)
    context = {
        "rows": page.rows,
        "filters": filters,
        "statuses": STATUSES,
        "limit": limit,
        "page_size": PAGE_SIZE,
        "next_url": url_for(".jobs", **here, cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": url_for(".jobs", **here) if cursor is not None else None,
        "back": urlencode({**here, "cursor": cursor} if cursor is not None else here),
    }
    if request.headers.get("HX-History-Restore-Request") == "true":
        return render_template("flask_jobs/jobs_list.html", **context)
    return render("flask_jobs/jobs_list.html", "flask_jobs/_job_rows.html", **context)


def jobs_bulk() -> ResponseReturnValue:
    """Requeue, cancel or delete the jobs ticked on a page of the list."""
    action = request.form.get("action", "")
    if action not in BULK_ACTIONS:
        abort(400, f"'action' must be one of {', '.join(BULK_ACTIONS)}, not {action[:40]!r}.")
    ids, invalid = _job_ids(request.form.getlist("job_ids"))
    back = _back()
    if not ids:
        return _redirect(back, "No jobs were selected.", "error")
    if action == "delete" and request.form.get("confirm") != "yes":
        fields = [("action", "delete"), ("back", request.form.get("back", ""))]
        return _confirm(
            "Delete jobs",
            f"Delete {len(ids)} job(s) from Redis? Running jobs are skipped; their history stays.",
            url_for(".jobs_bulk"),
            fields + [("job_ids", job_id) for job_id in ids],
            button="Delete",
            danger=True,
            cancel_url=back,
        )
    done, skipped = _perform_all(action, (_fetch(job_id) for job_id in ids))
    return _redirect(back, *_counted(action, done, skipped + invalid))


def jobs_requeue_matching() -> ResponseReturnValue:
    """Requeue every failed job the list's filters match, after a confirmation page."""
    filters = dataclasses.replace(Filters.parse(request.form), status="failed")
    back = url_for(".jobs", **filters.query())
    query = _history()
    if query is None:
        return _history_off()
    ids, capped = _matching_ids(query, filters)
    if request.form.get("confirm") != "yes":
        failed = sum(status == "failed" for status in _statuses(ids))
        notes = [
            f"{len(ids)} job(s) in the history match; {failed} of them are failed in Redis "
            "now, and only those are requeued."
        ]
        if capped:
            notes.append(
                f"That is capped at {MATCHING_CAP:,} jobs, the newest: run it again for the rest."
            )
        return _confirm(
            "Requeue all matching failed jobs",
            f"Requeue {failed} failed job(s)?",
            url_for(".jobs_requeue_matching"),
            list(filters.query().items()),
            notes=notes,
            button=f"Requeue {failed} job(s)",
            cancel_url=back,
            can_confirm=failed > 0,
        )
    done = skipped = 0
    for start in range(0, len(ids), 500):  # batches: a status pipeline, then only failed ones
        batch = ids[start : start + 500]
        failed_ids = [i for i, s in zip(batch, _statuses(batch), strict=True) if s == "failed"]
        d, s = _perform_all("requeue", (_fetch(job_id) for job_id in failed_ids))
        done, skipped = done + d, skipped + s
    message = f"Requeued {done} failed job(s)" + (f", skipped {skipped}" if skipped else "") + "."
    if capped:
        message += f" Capped at {MATCHING_CAP:,}: run it again for the rest."
    return _redirect(back, message)


def job(job_id: str) -> ResponseReturnValue:
    """One job: what it runs, where it came from, its state, and every attempt."""
    _check_id(job_id)
    live = _fetch(job_id)
    attempts: list[dict[str, Any]] = []
    history_note = None
    query = _history()
    if query is None:
        history_note = "The job history is off."
    else:
        try:
            attempts = query.get(job_id)
        except SQLAlchemyError as exc:
            current_app.logger.warning("dashboard: history unavailable: %s", exc)
            if live is None:  # nothing to show: say why, rather than "no such job"
                raise HistoryUnavailable() from exc
            history_note = "The job history database cannot be read right now."
    if live is None and not attempts:
        abort(
            404,
            f"No job with id {job_id!r}: it is neither in Redis nor in the history "
            "(it may have expired, been deleted, or been purged from the history).",
        )
    context = _describe(job_id, live, attempts)
    return render(
        "flask_jobs/job_detail.html",
        "flask_jobs/job_detail_live.html",
        history_note=history_note,
        attempts=attempts,
        **context,
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def _pretty_text(text: str | None) -> str:
    if text is None:
        return "-"
    try:
        return _pretty(json.loads(text))
    except ValueError:  # cut short by JOBS_HISTORY_MAX_ARG_BYTES: show it as it is
        return text


def _describe(job_id: str, live: FlaskJob | None, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """What the detail page shows, from Redis when the job is there, else from the history."""
    latest = attempts[-1] if attempts else {}
    with_args = next((row for row in reversed(attempts) if row["args"] is not None), None)
    args_text = _pretty_text(with_args["args"]) if with_args else "-"
    kwargs_text = _pretty_text(with_args["kwargs"]) if with_args else "-"
    truncated = bool(with_args and with_args["args_truncated"])
    progress = latest.get("progress")
    progress_message = latest.get("progress_message")
    context: dict[str, Any] = {
        "job_id": job_id,
        "in_redis": live is not None,
        "status": latest.get("status", "-"),
        "func": latest.get("func"),
        "queue": latest.get("queue"),
        "description": latest.get("description"),
        "origin": latest.get("origin"),
        "enqueued_at": latest.get("enqueued_at"),
        "dependencies": [],
        "result": next((r["result"] for r in reversed(attempts) if r["result"] is not None), None),
    }
    if live is not None:
        status = live.get_status(refresh=False)
        context.update(
            status=status.value,
            func=live.func_name,
            queue=live.origin,
            description=live.description,
            origin=live.origin_label or context["origin"],
            enqueued_at=live.enqueued_at or context["enqueued_at"],
            dependencies=live.dependency_ids,
            can_requeue=status in REQUEUEABLE,
            can_cancel=status in CANCELABLE,
            can_delete=status != JobStatus.STARTED,
        )
        events = state().events
        try:  # the real arguments, redacted here as the history redacts them
            args_text = _pretty(events.redact(list(live.args)))
            kwargs_text = _pretty(events.redact(dict(live.kwargs)))
            truncated = False
            context["can_copy"] = True
        except (DeserializationError, TypeError, ValueError) as exc:
            current_app.logger.warning("dashboard: cannot read arguments of %s: %s", job_id, exc)
        meta = live.meta.get(META_PROGRESS) if isinstance(live.meta, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("fraction"), int | float):
            progress, progress_message = meta["fraction"], meta.get("message")
    origin_job = ORIGIN_JOB.fullmatch(context["origin"] or "")
    if str(context["description"]).startswith(f"{context['func']}("):
        # RQ's default description is the call with its arguments, unredacted: never shown
        context["description"] = None
    context.update(
        args_text=args_text,
        kwargs_text=kwargs_text,
        truncated=truncated,
        progress=None if progress is None else min(1.0, max(0.0, float(progress))),
        progress_message=progress_message,
        origin_job=origin_job.group(1) if origin_job else None,
        active=context["status"] in ("queued", "started", "scheduled", "deferred"),
    )
    return context


def job_action(job_id: str, action: str) -> ResponseReturnValue:
    """Requeue, cancel, delete (after a confirmation page) or copy one job."""
    if action not in JOB_ACTIONS:
        abort(404, f"There is no job action {action[:40]!r}; use one of {', '.join(JOB_ACTIONS)}.")
    _check_id(job_id)
    here = url_for(".job", job_id=job_id)
    live = _fetch(job_id)
    if live is None:
        return _redirect(here, f"Job {job_id} is no longer in Redis: nothing to {action}.", "error")
    if action == "copy":
        try:
            copy = _copy(live)
        except (JobsError, DeserializationError, TypeError, ValueError) as exc:
            return _redirect(here, f"Could not enqueue a copy of job {job_id}: {exc}", "error")
        return _redirect(
            url_for(".job", job_id=copy.id), f"Enqueued {copy.id}, a copy of {job_id}."
        )
    if action == "delete" and request.form.get("confirm") != "yes":
        return _confirm(
            "Delete job",
            f"Delete job {job_id} ({live.func_name}) from Redis? Its history stays.",
            url_for(".job_action", job_id=job_id, action="delete"),
            [],
            button="Delete",
            danger=True,
            cancel_url=here,
        )
    try:
        _perform(action, live)
    except (JobsError, InvalidJobOperation) as exc:
        return _redirect(here, f"Could not {action} job {job_id}: {exc}", "error")
    return _redirect(here, f"{DONE[action]} job {job_id}.")


def failures() -> ResponseReturnValue:
    """Failed attempts grouped by function and exception type over a window."""
    window = arg_choice("window", tuple(WINDOWS), "7d")
    query = _history()
    if query is None:
        return _history_off()
    with _reading_history():
        groups = query.top_exceptions(WINDOWS[window], limit=100)
    return render("flask_jobs/failures.html", None, groups=groups, window=window, windows=WINDOWS)


def _group_action(action: str) -> ResponseReturnValue:
    func = _text(request.form, "function", 255)
    exc_type = _text(request.form, "exc_type", 255)
    window = request.form.get("window", "")
    back = url_for(".failures", window=window if window in WINDOWS else None)
    if not func or not exc_type:
        abort(400, "Say which group: 'function' and 'exc_type' are both needed.")
    query = _history()
    if query is None:
        return _history_off()
    attempts = _group_attempts(query, func, exc_type)
    jobs_of_group = (_fetch(job_id) for job_id in attempts)
    if action == "delete" and request.form.get("confirm") != "yes":
        count = sum(
            status == "failed" for status in _statuses(list(attempts))
        )  # a cheap upper bound
        return _confirm(
            "Delete failed jobs",
            f"Delete the failed jobs of {func} that raised {exc_type} from Redis "
            f"(up to {count})? Their history stays.",
            url_for(".failures_delete_group"),
            [("function", func), ("exc_type", exc_type), ("window", window)],
            button="Delete",
            danger=True,
            cancel_url=back,
            can_confirm=count > 0,
        )
    chosen = (
        job for job in jobs_of_group if job is not None and _still_failed(job, attempts[job.id])
    )
    done, skipped = _perform_all(action, chosen)
    message, category = _counted(action, done, skipped, f"failed job(s) of {func} with {exc_type}")
    return _redirect(back, message, category)


def failures_requeue_group() -> ResponseReturnValue:
    """Requeue every job of one failure group still in RQ's failed registry."""
    return _group_action("requeue")


def failures_delete_group() -> ResponseReturnValue:
    """Delete every job of one failure group still in RQ's failed registry (confirmed first)."""
    return _group_action("delete")


def when(moment: datetime | str | None) -> str:
    """A time from the history as UTC, to the second."""
    if moment is None:
        return "-"
    if isinstance(moment, str):  # an aggregate SQLite hands back as text
        return moment[:19]
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def register(bp: Blueprint) -> None:
    """Add the jobs list, job detail and failures pages to the dashboard blueprint."""
    bp.add_url_rule("/jobs", "jobs", jobs)
    bp.add_url_rule("/jobs/bulk", "jobs_bulk", jobs_bulk, methods=["POST"])
    bp.add_url_rule(
        "/jobs/requeue-matching", "jobs_requeue_matching", jobs_requeue_matching, methods=["POST"]
    )
    bp.add_url_rule("/job/<path:job_id>", "job", job)  # a "/" in an id: a 404, not a 405
    bp.add_url_rule("/job/<job_id>/<action>", "job_action", job_action, methods=["POST"])
    bp.add_url_rule("/failures", "failures", failures)
    bp.add_url_rule(
        "/failures/requeue-group",
        "failures_requeue_group",
        failures_requeue_group,
        methods=["POST"],
    )
    bp.add_url_rule(
        "/failures/delete-group", "failures_delete_group", failures_delete_group, methods=["POST"]
    )
    bp.register_error_handler(HistoryUnavailable, _history_down)

    @bp.context_processor
    def _helpers() -> dict[str, object]:
        return {"when": when}
