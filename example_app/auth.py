"""The example app's own simple login, and the dashboard policy built on it.

Two roles: ``admin`` may do everything on the jobs dashboard, ``read`` may only
look. Users come from ``EXAMPLE_USERS`` (password hashes from
``werkzeug.security.generate_password_hash``), so a deploy sets them with
``FLASK_EXAMPLE_USERS='{"ops": {"password_hash": "scrypt:...", "role": "admin"}}'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

__all__ = ["DEMO_USERS", "ROLES", "User", "bp", "current_user", "dashboard_auth"]

bp = Blueprint("auth", __name__)

ROLES = ("admin", "read")

#: The demo's two users: admin/admin and viewer/viewer. Replace them outside a demo.
DEMO_USERS = {
    "admin": {
        "role": "admin",
        "password_hash": "scrypt:32768:8:1$Q5K9UfDrNwyWJqvX$0ad123dd0a28604efc563dfebb27b8bb7b1d6e2"
        "3b566664b3df3b12cd084a288c4a49a35360b3285aaf1111e711caee7d4c8bacb38e1b5c15589fe6f35ae4a6c",
    },
    "viewer": {
        "role": "read",
        "password_hash": "scrypt:32768:8:1$762W8rY7drCnX2Mf$475047ac55244deaaaf2916b31f408a5c273ae7"
        "fa0ed51a23710bf21b156f0ef5a404ccd6553c2f447249da9a1c1c5d7a30d484ced50601fca9f0e29aa126c66",
    },
}


@dataclass(frozen=True)
class User:
    """A signed-in user: a name and a role."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the user may change things on the jobs dashboard."""
        return self.role == "admin"


def current_user() -> User | None:
    """The user signed in on this request, or None."""
    if "user" not in g:
        name = session.get("user")
        found: User | None = None
        if isinstance(name, str):
            entry = current_app.config["EXAMPLE_USERS"].get(name)
            if entry and entry.get("role") in ROLES:
                found = User(name, entry["role"])
        g.user = found
    user: User | None = g.user
    return user


def dashboard_auth(action: str) -> bool:
    """JOBS_DASHBOARD_AUTH: admins may do anything, read-only users may only view."""
    user = current_user()
    if user is None:
        return False
    return user.is_admin or action == "view"


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//evil.example" or "https://..." would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.index")


@bp.before_app_request
def login_before_dashboard() -> Response | None:
    """Send a visitor who is not signed in from the jobs dashboard to the login page."""
    if request.blueprint == "jobs_dashboard" and current_user() is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


@bp.app_context_processor
def user_in_templates() -> dict[str, Any]:
    """``user`` in every template: who is signed in; and the jobs dashboard's header hook."""
    user = current_user()
    shown = None
    if user is not None:
        shown = {
            "name": user.name,
            "sign_out_url": url_for("auth.logout"),
            "sign_out_method": "post",
        }
    return {"user": user, "jobs_dashboard_user": shown}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Sign in with a name and password from EXAMPLE_USERS."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target, name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    entry = current_app.config["EXAMPLE_USERS"].get(name)
    if not entry or not check_password_hash(str(entry.get("password_hash", "")), password):
        error = "Unknown name or wrong password."
        return render_template("login.html", next=target, name=name, error=error), 401
    session.clear()
    session["user"] = name
    flash(f"Signed in as {name} ({entry['role']}).")
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> Response:
    """Sign out."""
    session.clear()
    return redirect(url_for("main.index"), 303)
