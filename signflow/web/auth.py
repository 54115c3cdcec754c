"""Bearer tokens: random 256-bit, stored as SHA-256, expiring; last use noted."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request

from signflow.core.accounts import live_token, note_token_use
from signflow.core.models import User, utcnow
from signflow.errors import Forbidden, Unauthorized
from signflow.web import db


def current_user() -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an API token is required (Authorization: Bearer …)")
    session = db()
    row = live_token(session, token.strip())
    if row is None:
        raise Unauthorized("the API token is not valid")
    if note_token_use(row, utcnow()):
        # its own small commit, before the view's work begins (once a minute at most)
        session.commit()
    return row.user


def require(*roles: str) -> Callable:
    """Decorator: the caller must present a token of one of *roles*."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args, **kwargs):
            user = current_user()
            if roles and user.role not in roles:
                raise Forbidden(f"this needs the role {' or '.join(roles)}")
            g.user = user
            return view(*args, **kwargs)

        return inner

    return wrap
