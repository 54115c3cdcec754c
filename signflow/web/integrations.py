"""The organisation's webhooks and every delivery to them, for the secretariat."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, render_template, request
from flask_babel import gettext as _

from signflow.core import webhooks
from signflow.errors import InvalidInput
from signflow.web import db, runtime
from signflow.web.staff import staff_page

log = logging.getLogger(__name__)
bp = Blueprint("integrations", __name__, url_prefix="/account")

#: The events in words, in the order the form offers them.
EVENT_WORDS = {
    "round.completed": lambda: _("Everyone has signed"),
    "signer.signed": lambda: _("A signer has signed"),
    "signer.declined": lambda: _("A signer declined"),
    "round.declined": lambda: _("The round ended because a signer declined"),
    "round.expired": lambda: _("The deadline passed"),
    "round.cancelled": lambda: _("The round was cancelled"),
    "notice.ready": lambda: _("The notice of justering is published"),
    "document.renewed": lambda: _("The archived document got a new timestamp"),
}


def _page(*, created: str = "", created_url: str = "", url: str = "",
          chosen: tuple[str, ...] = webhooks.EVENTS, errors: dict[str, str] | None = None,
          status: int = 200):
    session = db()
    org = g.user.organisation_id
    return render_template(
        "webhooks.html", hooks=webhooks.webhooks_of(session, org),
        deliveries=webhooks.deliveries(session, org), created=created,
        created_url=created_url, url=url, chosen=chosen, errors=errors or {},
        events=[(name, words()) for name, words in EVENT_WORDS.items()],
        words={name: words() for name, words in EVENT_WORDS.items()},
        https_only=not runtime().settings.dev_mode), status


@bp.get("/webhooks")
@staff_page("secretariat", "admin")
def page():
    return _page()


@bp.post("/webhooks")
@staff_page("secretariat", "admin")
def add():
    """A new webhook; its signing secret is shown on this response only."""
    url = request.form.get("url", "").strip()
    chosen = tuple(e for e in request.form.getlist("events") if e in webhooks.EVENTS)
    session, svc = db(), runtime().services
    try:
        hook, secret = webhooks.add_webhook(session, svc, g.user.organisation, url, chosen,
                                            allow_http=runtime().settings.dev_mode)
    except InvalidInput as exc:
        session.rollback()
        field = (exc.fields or {}).get("field", "url")
        message = (_("Choose at least one event.") if field == "events" else
                   _("Give the receiver's address, starting with https:// and without spaces."))
        return _page(url=url, chosen=chosen, errors={field: message}, status=400)
    session.commit()
    log.info("webhook %s added by user %s", hook.id, g.user.id)
    return _page(created=secret, created_url=hook.url, status=201)


@bp.post("/webhooks/<webhook_id>/remove")
@staff_page("secretariat", "admin")
def remove(webhook_id: str):
    session = db()
    hook = webhooks.remove_webhook(session, g.user.organisation_id, webhook_id)
    session.commit()
    log.info("webhook %s removed by user %s", hook.id, g.user.id)
    # not the URL: it may hold a receiver's credentials, and the flash rides in the cookie
    flash(_("The webhook was removed: it gets no more events."), "ok")
    return redirect("/account/webhooks")
