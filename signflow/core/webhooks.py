"""Webhooks: an organisation's own systems (case management, the digital notice
board) hear when its rounds move.

:func:`emit` records one delivery per subscribed webhook in the caller's
transaction, through the outbox, so a receiver that is down gets it later
(retried with backoff until it answers 2xx) and one that hangs never holds a
request.  Each POST carries the event as JSON and a signature over the
timestamp and the body, as the common ``Signature`` header schemes do::

    Signflow-Signature: t=1733130000,v1=<hex HMAC-SHA256(secret, "1733130000." + body)>

A receiver recomputes it with the secret it was given once, when the webhook
was made, and refuses a stale timestamp (:func:`signature_valid`).  Bodies
name rounds and signers, never a personal number or a link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import idna
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from signflow.core import outbox
from signflow.core.audit import rfc3339
from signflow.core.models import (
    Organisation,
    OutboxMessage,
    Round,
    Webhook,
    WebhookDelivery,
    new_id,
)
from signflow.core.ports import Services
from signflow.errors import InvalidInput, NotFound

#: The events a webhook may ask for.
EVENTS = ("round.completed", "round.declined", "round.expired", "round.cancelled",
          "signer.signed", "signer.declined", "notice.ready", "document.renewed")
#: How old a signature's timestamp a receiver should accept, in seconds.
TOLERANCE = 300
#: One label of a host name (RFC 1123; "_" as internal names use it).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
#: An address in brackets, as ``urlsplit`` hands it over without them.
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?")


class WebhookRefused(Exception):
    """The receiver answered, but not with 2xx: the delivery is retried."""


def add_webhook(session: Session, svc: Services, organisation: Organisation, url: str,
                events: Iterable[str] = EVENTS, *, allow_http: bool = False
                ) -> tuple[Webhook, str]:
    """Register *url* for *events*; returns the webhook and its secret, which is
    shown this once and kept only sealed."""
    schemes = ("https", "http") if allow_http else ("https",)
    refused = InvalidInput(f"the webhook URL must be an {' or '.join(schemes)} URL "
                           "with a host", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range is a ValueError here, not at delivery
    except ValueError:  # "https://[" and the like
        raise refused from None
    if (parts.scheme not in schemes or not parts.hostname or len(url) > 2000
            or not _host_ok(parts.hostname)
            or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)):
        raise refused
    if parts.username is not None or parts.password is not None:
        # it would be shown in every list of webhooks and deliveries; the signature
        # (Signflow-Signature) is what tells a receiver the call is ours
        raise InvalidInput("the webhook URL may not hold a user or password: check the "
                           "Signflow-Signature header instead", field="url")
    wanted = list(dict.fromkeys(events))
    unknown = [e for e in wanted if e not in EVENTS]
    if unknown or not wanted:
        raise InvalidInput(f"events must be some of {', '.join(EVENTS)}", field="events")
    secret = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(id=new_id(), organisation_id=organisation.id, url=url,
                   events=" ".join(wanted), active=True, created_at=svc.clock.now())
    hook.secret_sealed = svc.sealer.seal(secret, bound_to=f"webhook:{hook.id}")
    session.add(hook)
    return hook, secret


def _host_ok(host: str) -> bool:
    """Whether *host* is a name DNS could hold or an address: ``urlsplit`` takes
    "xn--" or "a..b" as a host, and the deliveries would fail for ever.

    Checked as requests will send it: a host in other letters through IDNA 2008
    (UTS 46), as requests encodes it ("straße.de" yes, "☃.net" no); an ASCII
    host as it stands, its punycode labels decodable."""
    if ":" in host:
        return bool(_ADDRESS.fullmatch(host))
    try:
        if host.isascii():
            ascii_host = host
            for label in host.split("."):
                if label.lower().startswith("xn--"):
                    idna.decode(label)
        else:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return False
    labels = ascii_host.removesuffix(".").split(".")
    return len(ascii_host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def webhooks_of(session: Session, organisation_id: int) -> list[Webhook]:
    """The organisation's webhooks, removed ones too (their deliveries stay on record)."""
    return list(session.scalars(select(Webhook).where(Webhook.organisation_id == organisation_id)
                                .order_by(Webhook.created_at)))


def remove_webhook(session: Session, organisation_id: int, webhook_id: str) -> Webhook:
    """Stop *webhook_id* (of this organisation only) getting events; its
    deliveries stay on record.  :class:`NotFound` for another organisation's."""
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.organisation_id != organisation_id:
        raise NotFound("no such webhook")
    hook.active = False
    return hook


def emit(session: Session, svc: Services, round_: Round, event: str,
         data: Mapping[str, Any] | None = None) -> list[WebhookDelivery]:
    """Record *event* about *round_* for each webhook of its organisation that wants it."""
    assert event in EVENTS, event
    hooks = session.scalars(select(Webhook).where(
        Webhook.organisation_id == round_.organisation_id, Webhook.active.is_(True)))
    now, made = svc.clock.now(), []
    for hook in hooks:
        if event not in hook.events.split():
            continue
        delivery_id = new_id()
        body = json.dumps({
            "id": delivery_id, "event": event, "created_at": rfc3339(now),
            "round": {"id": round_.id, "title": round_.title, "status": round_.status,
                      "url": f"{svc.base_url}/api/v1/rounds/{round_.id}"},
            "data": dict(data or {}),
        }, ensure_ascii=False, sort_keys=True)
        row = outbox.record(session, svc, "webhook", {
            "webhook": hook.id, "delivery": delivery_id, "event": event, "body": body,
        }, round_.id)
        delivery = WebhookDelivery(id=delivery_id, webhook_id=hook.id, event=event,
                                   round_id=round_.id, outbox_ref=row.ref, created_at=now)
        session.add(delivery)
        made.append(delivery)
    return made


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Signflow-Signature`` header's value."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_valid(secret: str, header: str, body: bytes, now: float,
                    tolerance: int = TOLERANCE) -> bool:
    """What a receiver checks: the signature is ours and its timestamp is fresh."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={fields['v1']}")


def deliver(session: Session, svc: Services, payload: Mapping[str, Any], now: datetime) -> None:
    """POST one delivery (the outbox's dispatcher calls this); raises unless 2xx,
    so that it is retried.  A webhook removed since is dropped: its outbox row
    ends without a 2xx, which :func:`deliveries` shows as ``dropped``."""
    hook = session.get(Webhook, payload["webhook"])
    if hook is None or not hook.active:
        return
    secret = svc.sealer.open(hook.secret_sealed, bound_to=f"webhook:{hook.id}")
    body = payload["body"].encode("utf-8")
    status = svc.webhooks.post(hook.url, body, {
        "Content-Type": "application/json",
        "User-Agent": "signflow-webhooks",
        "Signflow-Event": payload["event"],
        "Signflow-Delivery": payload["delivery"],
        "Signflow-Signature": sign(secret, int(now.timestamp()), body),
    })
    delivery = session.get(WebhookDelivery, payload["delivery"])
    if delivery is not None:
        delivery.last_status = status
    if not 200 <= status < 300:
        raise WebhookRefused(f"the receiver answered {status}")


def deliveries(session: Session, organisation_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The organisation's latest deliveries with their progress, newest first."""
    return _deliveries(session, _with_progress()
                       .where(Webhook.organisation_id == organisation_id)
                       .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                       .limit(limit))


def round_deliveries(session: Session, round_id: str, event: str) -> list[dict[str, Any]]:
    """The deliveries of *event* about one round, as :func:`deliveries` shows them."""
    return _deliveries(session, _with_progress()
                       .where(WebhookDelivery.round_id == round_id,
                              WebhookDelivery.event == event)
                       .order_by(WebhookDelivery.created_at, WebhookDelivery.id))


def _with_progress() -> Select:
    """Deliveries with their webhook's URL and their outbox row (the progress)."""
    return (select(WebhookDelivery, Webhook.url, OutboxMessage)
            .join(Webhook, WebhookDelivery.webhook_id == Webhook.id)
            .join(OutboxMessage, OutboxMessage.ref == WebhookDelivery.outbox_ref))


def _deliveries(session: Session, query: Select) -> list[dict[str, Any]]:
    return [_delivery_dict(d, url, row) for d, url, row in session.execute(query)]


def _delivery_dict(d: WebhookDelivery, url: str, row: OutboxMessage) -> dict[str, Any]:
    """One delivery as the API shows it.  Done with a 2xx: delivered; done without
    one: dropped (its webhook was removed before it went out, :func:`deliver`)."""
    answered = d.last_status is not None and 200 <= d.last_status < 300
    if row.delivered_at:
        state = "delivered" if answered else "dropped"
    else:
        state = "failing" if row.attempts else "pending"
    return {
        "id": d.id, "webhook": d.webhook_id, "url": url, "event": d.event,
        "round": d.round_id, "created_at": rfc3339(d.created_at), "state": state,
        "attempts": row.attempts + (1 if state == "delivered" else 0),
        "last_status": d.last_status,
        "last_error": None if state == "delivered" else row.last_error,
        "delivered_at": (rfc3339(row.delivered_at)
                         if row.delivered_at and state == "delivered" else None),
        "next_attempt_at": None if row.delivered_at else rfc3339(row.next_attempt_at),
    }
