"""Staff sessions for the pages: who is signed in, for how long, and as what.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure and
``__Host-`` prefixed behind HTTPS).  It holds the user's id, when they signed
in and when they were last seen: idle longer than
``SIGNFLOW_SESSION_IDLE_MINUTES`` or signed in longer than
``SIGNFLOW_SESSION_MAX_HOURS`` ago, the next page asks for sign-in again.
:func:`sign_in` starts from an empty session, so a session id planted before
sign-in never carries over.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from urllib.parse import quote

from flask import Flask, abort, current_app, g, redirect, request, session

from signflow.core.models import User
from signflow.web import db

USER, SIGNED_IN, SEEN, METHOD, EPOCH = "uid", "at", "seen", "via", "ep"


def configure(app: Flask, settings) -> None:
    secure = settings.base_url.startswith("https://")
    from datetime import timedelta

    app.config.update(
        SESSION_COOKIE_NAME="__Host-signflow" if secure else "signflow",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        SIGNFLOW_SESSION_MAX_SECONDS=settings.session_max_hours * 3600,
    )


def sign_in(user: User, method: str) -> None:
    """Start a new session for *user* (``bankid``, ``oidc``, …), dropping the old one."""
    session.clear()
    session.permanent = True
    now = int(time.time())
    session.update({USER: user.id, SIGNED_IN: now, SEEN: now, METHOD: method,
                    EPOCH: user.session_epoch})


def sign_out(user: User | None = None) -> None:
    """End this session and, the cookie being all the session there is, every other
    cookie *user* was given: a copied or left-behind one stops working too."""
    session.clear()
    if user is not None:
        user.session_epoch = (user.session_epoch or 0) + 1
        db().commit()


def current_staff() -> User | None:
    """The signed-in user, or None (no session, timed out, or the user is gone)."""
    if "staff" in g:
        return g.staff
    g.staff = None
    uid = session.get(USER)
    if uid is None:
        return None
    now = int(time.time())
    idle = now - int(session.get(SEEN, 0))
    age = now - int(session.get(SIGNED_IN, 0))
    idle_limit = current_app.permanent_session_lifetime.total_seconds()
    if idle > idle_limit or age > current_app.config["SIGNFLOW_SESSION_MAX_SECONDS"]:
        session.clear()
        return None
    user = db().get(User, uid)
    if user is None or session.get(EPOCH, 0) != user.session_epoch:
        session.clear()
        return None
    if idle > 30 and not g.get("peek"):  # (a page asking how long it has left is no use)
        session[SEEN] = now  # writing the cookie on every request would be noise
    g.staff = user
    return user


def seconds_left() -> int:
    """How long the signed-in session lasts if nothing more happens: idle or
    whole-session limit, whichever comes first."""
    now = int(time.time())
    idle_left = current_app.permanent_session_lifetime.total_seconds() - (
        now - int(session.get(SEEN, 0)))
    age_left = current_app.config["SIGNFLOW_SESSION_MAX_SECONDS"] - (
        now - int(session.get(SIGNED_IN, 0)))
    return max(0, int(min(idle_left, age_left)))


def staff_page(*roles: str) -> Callable:
    """Decorator for staff pages: a stranger goes to /login, a wrong role gets 403."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args, **kwargs):
            user = current_staff()
            if user is None:
                return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")
            if roles and user.role not in roles:
                abort(403)
            g.user = user
            return view(*args, **kwargs)

        return inner

    return wrap


#: Where sign-in may lead back to: the staff pages, nothing else.
_NEXT = re.compile(r"^/(?:rounds|account|verify)(?:[/?][!#-~]*)?$")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: one of our staff pages, never another host.

    Only printable ASCII without spaces or backslashes passes: browsers drop
    tabs and newlines from URLs, so ``/\t/evil.example`` would otherwise leave
    the site."""
    if not target or not _NEXT.match(target) or "\\" in target or "//" in target:
        return "/rounds"
    return target
