"""Who may see the dashboard (the host app's hook), and CSRF tokens for its forms."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Response, abort, current_app, g, request

__all__ = ["authorize", "can_write", "csrf_token", "set_csrf_cookie", "template_globals"]

# Double-submit: a random token in a SameSite=Strict cookie and in every form. Another
# site can neither read the cookie nor make the browser send it, and no SECRET_KEY is
# needed (the host app may not have one).
COOKIE = "flask_jobs_csrf"
READ_ONLY = "read"


def _access() -> bool | str:
    auth = current_app.extensions["jobs"].config.dashboard_auth
    if auth is None:
        return bool(current_app.debug or current_app.testing)
    result = auth()
    return READ_ONLY if result == READ_ONLY else bool(result)


def can_write() -> bool:
    """Whether the current user may change things (requeue, delete, pause...)."""
    return _access() is True


def authorize() -> None:
    """Before every dashboard request: the auth hook, then CSRF on anything that changes state."""
    access = _access()
    if not access:
        if current_app.extensions["jobs"].config.dashboard_auth is None:
            abort(
                403,
                "The jobs dashboard is closed: set JOBS_DASHBOARD_AUTH to a function that "
                "returns True for users who may see it (it is open only in debug or testing).",
            )
        abort(403, "You are not allowed to see the jobs dashboard.")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if access is not True:
        abort(403, "Your access to the jobs dashboard is read-only.")
    expected = request.cookies.get(COOKIE)
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), str(given)):
        abort(400, "The form's CSRF token is missing or stale: reload the page and try again.")


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
    return {"csrf_token": csrf_token, "can_write": can_write()}
