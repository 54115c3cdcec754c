"""Thin blueprints, one per audience: api, sign (signers), pki (anyone), dev."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from signflow.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["signflow"]


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
