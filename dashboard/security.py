"""Who may see the dashboard (the host app's hook), and CSRF tokens for its forms."""

from __future__ import annotations

import hmac
import inspect
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, request

__all__ = [
    "allowed",
    "authorize",
    "can_write",
    "csrf_token",
    "set_csrf_cookie",
    "template_globals",
]

# Double-submit: a random token in a SameSite=Strict cookie and in every form. Another
# site can neither read the cookie nor make the browser send it, and no SECRET_KEY is
# needed (the host app may not have one).
COOKIE = "flask_jobs_csrf"
READ_ONLY = "read"


#: The action each state-changing endpoint performs, as the auth hook sees it.
_ENDPOINT_ACTIONS = {
    "jobs_requeue_matching": "requeue",
    "failures_requeue_group": "requeue",
    "failures_delete_group": "delete",
    "queue_pause": "pause_queue",
    "queue_resume": "resume_queue",
    "queue_empty": "empty_queue",
    "schedule_run": "run_schedule",
    "schedule_pause": "pause_schedule",
    "schedule_resume": "resume_schedule",
}
_JOB_ACTIONS = {
    "requeue": "requeue",
    "cancel": "cancel",
    "delete": "delete",
    "stop": "stop",
    "run_now": "run_now",
    "copy": "enqueue",
}
WRITE_ACTIONS = (
    "requeue", "cancel", "delete", "stop", "run_now", "enqueue", "pause_queue", "resume_queue",
    "empty_queue", "run_schedule", "pause_schedule", "resume_schedule",
)  # fmt: skip


def allowed(action: str) -> bool:
    """Whether the hook allows ``action`` ("view", "requeue", "delete"...) for this request.

    ``JOBS_DASHBOARD_AUTH`` is called with the action name; a hook that takes no
    argument may answer True (everything), False (nothing) or "read" (view only).
    """
    # Asked once per request and action (templates ask per button); kept on the request,
    # not on g, which an app context held open around several requests would share.
    answers: dict[str, bool] = request.environ.setdefault("flask_jobs.allowed", {})
    if action not in answers:
        answers[action] = _ask(action)
    return answers[action]


def _ask(action: str) -> bool:
    auth = current_app.extensions["jobs"].config.dashboard_auth
    if auth is None:
        return bool(current_app.debug or current_app.testing)
    try:
        parameters = inspect.signature(auth).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    if parameters:
        return bool(auth(action))
    result = auth()
    if result == READ_ONLY:
        return action == "view"
    return bool(result)


def can_write() -> bool:
    """Whether the current user may change anything at all (to show the action buttons)."""
    return any(allowed(action) for action in WRITE_ACTIONS)


def _action() -> str:
    endpoint = (request.endpoint or "").rpartition(".")[2]
    if endpoint == "job_action":
        return _JOB_ACTIONS.get(str((request.view_args or {}).get("action")), "unknown")
    if endpoint == "jobs_bulk":
        return _JOB_ACTIONS.get(request.form.get("action", ""), "unknown")
    return _ENDPOINT_ACTIONS.get(endpoint, "unknown")


def _same_origin() -> bool:
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return source is None  # no header: a non-browser client; the token still decides
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def authorize() -> None:
    """Before every request: may this user view (and do this)? Then CSRF and same origin."""
    if not allowed("view"):
        if current_app.extensions["jobs"].config.dashboard_auth is None:
            abort(
                403,
                "The jobs dashboard is closed: set JOBS_DASHBOARD_AUTH to a function that "
                "returns True for users who may see it (it is open only in debug or testing).",
            )
        abort(403, "You are not allowed to see the jobs dashboard.")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    action = _action()
    if not allowed(action):
        abort(403, f"You are not allowed to {action.replace('_', ' ')} here.")
    if not _same_origin():
        abort(400, "This form was sent from another site; reload the dashboard and try again.")
    expected = request.cookies.get(COOKIE)
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not expected or not hmac.compare_digest(_bytes(expected), _bytes(given)):
        abort(400, "The form's CSRF token is missing or stale: reload the page and try again.")


def _bytes(value: str) -> bytes:
    return str(value).encode("utf-8", "replace")


def csrf_token() -> str:
    """The browser's CSRF token (a new one is set as a cookie with this response)."""
    token = request.cookies.get(COOKIE) or g.get("_flask_jobs_csrf")
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
        g._flask_jobs_csrf = token
    return str(token)


def set_csrf_cookie(response: Response) -> Response:
    """After a request that made a new token: hand it to the browser."""
    token = g.get("_flask_jobs_csrf")
    if token:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path=request.script_root + "/",
        )
    return response


def template_globals() -> dict[str, Any]:
    """Names every dashboard template can use."""
    return {"csrf_token": csrf_token, "can_write": can_write(), "allowed": allowed}
