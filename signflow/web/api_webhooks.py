"""``/api/v1/webhooks``: the organisation's webhooks and deliveries (on the API's blueprint)."""

from __future__ import annotations

from flask import g, jsonify

from signflow.core import webhooks
from signflow.core.audit import rfc3339
from signflow.core.models import Webhook
from signflow.errors import InvalidInput
from signflow.web import db, json_sent, runtime
from signflow.web.api import bp
from signflow.web.auth import require


@bp.get("/webhooks")
@require("secretariat", "admin")
def list_webhooks():
    hooks = webhooks.webhooks_of(db(), g.user.organisation_id)
    return jsonify(webhooks=[_webhook_dict(h) for h in hooks])


@bp.post("/webhooks")
@require("secretariat", "admin")
def add_webhook():
    """``{"url": "https://…", "events": [...]}`` (default: every event).  The answer
    carries the signing secret, this once."""
    body = json_sent()
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        raise InvalidInput("send a JSON object with the receiver's url", field="url")
    events = body.get("events", list(webhooks.EVENTS))
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidInput("events must be a list of event names", field="events")
    session, svc = db(), runtime().services
    hook, secret = webhooks.add_webhook(session, svc, g.user.organisation, body["url"], events,
                                        allow_http=runtime().settings.dev_mode)
    session.commit()
    return jsonify(_webhook_dict(hook) | {"secret": secret}), 201


@bp.delete("/webhooks/<webhook_id>")
@require("secretariat", "admin")
def remove_webhook(webhook_id: str):
    session = db()
    hook = webhooks.remove_webhook(session, g.user.organisation_id, webhook_id)
    session.commit()
    return jsonify(_webhook_dict(hook))


@bp.get("/webhooks/deliveries")
@require("secretariat", "admin")
def webhook_deliveries():
    return jsonify(deliveries=webhooks.deliveries(db(), g.user.organisation_id))


def _webhook_dict(hook: Webhook) -> dict:
    return {"id": hook.id, "url": hook.url, "events": hook.events.split(),
            "active": hook.active, "created_at": rfc3339(hook.created_at)}
