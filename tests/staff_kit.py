"""Signed-in staff for page tests that are not about signing in.

The sign-in itself (BankID, OIDC) has its own tests; every other page test
starts from the session cookie that a sign-in would have left, made with the
app's own secret key and session serializer.
"""

from __future__ import annotations

import time

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from signflow.core.models import User
from signflow.db import session_scope
from signflow.web.staff import EPOCH, METHOD, SEEN, SIGNED_IN, USER


def cookie_name(settings) -> str:
    return "__Host-signflow" if settings.base_url.startswith("https://") else "signflow"


def session_cookie(settings, user_id: int, *, method: str = "bankid", epoch: int = 0,
                   idle_for: int = 0) -> str:
    """The value of the session cookie of a user who has just signed in (and, with
    *idle_for*, has done nothing for that many seconds since)."""
    app = Flask("staff-kit")
    app.secret_key = settings.secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    now = int(time.time())
    return serializer.dumps({USER: user_id, SIGNED_IN: now - idle_for, SEEN: now - idle_for,
                             METHOD: method, EPOCH: epoch, "_permanent": True})


def user_id(runtime, email: str) -> int:
    with session_scope(runtime.sessions) as session:
        return session.scalar(select(User.id).where(User.email == email.lower()))


def sign_in_client(client, settings, runtime, email: str) -> None:
    """Make a Flask test client a signed-in *email*."""
    client.set_cookie(cookie_name(settings), session_cookie(settings, user_id(runtime, email)))


def signed_in_context(browser, live_app, email: str, **context_args):
    """A browser context in which *email* (an existing user) is signed in."""
    context = browser.new_context(**context_args)
    context.add_cookies([{
        "name": cookie_name(live_app.settings),
        "value": session_cookie(live_app.settings, user_id(live_app.runtime, email)),
        "url": live_app.url,
    }])
    return context
