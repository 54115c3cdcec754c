"""Development conveniences: the mail outbox and the BankID simulator's phone page."""

from __future__ import annotations

from flask import Blueprint, render_template

from signflow.adapters.mail import OutboxMailer
from signflow.errors import NotFound
from signflow.web import runtime

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/outbox")
def outbox():
    mailer = runtime().services.mailer
    if not isinstance(mailer, OutboxMailer):
        raise NotFound("the dev outbox is off: SIGNFLOW_SMTP_URL is set")
    return render_template("outbox.html", mails=list(reversed(mailer.messages())))
