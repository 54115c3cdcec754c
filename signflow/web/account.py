"""The signed-in user's own things: their API tokens."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request
from flask_babel import gettext as _

from signflow.core import accounts
from signflow.errors import InvalidInput
from signflow.web import db, runtime
from signflow.web.staff import current_staff, seconds_left, staff_page

log = logging.getLogger(__name__)
bp = Blueprint("account", __name__, url_prefix="/account")


def _page(*, created: str = "", created_name: str = "", name: str = "", error: str = "",
          status: int = 200):
    tokens = accounts.tokens_of(db(), g.user)
    return render_template(
        "tokens.html", tokens=tokens, created=created, created_name=created_name,
        name=name, error=error, now=runtime().services.clock.now(),
        days=runtime().settings.api_token_days, name_max=accounts.TOKEN_NAME_MAX), status


@bp.get("/tokens")
@staff_page()
def tokens():
    return _page()


@bp.post("/tokens")
@staff_page()
def create():
    """A new token, shown on this response only: only its hash is kept."""
    name = request.form.get("name", "").strip()
    if not name:
        return _page(error=_("Give the token a name, e.g. the system that will use it."),
                     status=400)
    session = db()
    try:
        token = accounts.issue_token(session, g.user, runtime().settings.api_token_days,
                                     name=name)
    except InvalidInput:
        session.rollback()
        return _page(name=name, error=_("The name is at most %(count)d characters.",
                                        count=accounts.TOKEN_NAME_MAX), status=400)
    session.commit()
    log.info("API token created by user %s", g.user.id)
    return _page(created=token, created_name=name, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
@staff_page()
def revoke(token_id: int):
    session = db()
    row = accounts.revoke_token(session, g.user, token_id)
    session.commit()
    log.info("API token %s revoked by user %s", row.id, g.user.id)
    flash(_("The token %(name)s was revoked: it no longer works.",
            name=row.name or _("(no name)")), "ok")
    return redirect("/account/tokens")


@bp.get("/alive")
def alive():
    """A staff page still open says its user is there: the session goes on (the
    page calls this while people type, and when they press "stay signed in").
    Answers how long the session now lasts idle, how long it has left, and a CSRF
    token for the page's forms: after signing in again in another tab, the old
    page's forms would otherwise be refused, and what was typed into them lost.
    ``?peek=1`` only asks how long is left (a page about to warn: another tab may
    have kept the session going), and does not keep it going.  401 without a
    session."""
    from flask_wtf.csrf import generate_csrf

    g.peek = request.args.get("peek") == "1"
    if current_staff() is None:
        return jsonify(error={"code": "signed_out", "message": "not signed in"}), 401
    idle = int(current_app.permanent_session_lifetime.total_seconds())
    if g.peek:
        return jsonify(idle_seconds=idle, seconds_left=seconds_left())
    return jsonify(idle_seconds=idle, seconds_left=seconds_left(), csrf_token=generate_csrf())
