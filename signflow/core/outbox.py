"""The transactional outbox: work the database promised is never lost.

A mail or a job is recorded as a row in the caller's transaction
(:func:`send_mail`, :func:`enqueue_job`), so it exists exactly when the change
that promised it was committed.  After the commit a cheap nudge starts
delivery at once; :func:`deliver_due` (the dispatcher: a thread, or
``signflow dispatcher``) delivers whatever is due and retries a failure with a
capped backoff for as long as it takes, so an SMTP or Redis outage only delays.

Payloads are sealed (:class:`~signflow.core.ports.FieldSealer`), bound to the
row's ``ref``: an invitation carries the signer's link, which must never be
in clear in the database or in Redis.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from signflow.core.audit import EventType, append_event, lock_round
from signflow.core.models import OutboxMessage, new_id
from signflow.core.ports import Attachment, Mail, Services
from signflow.db import after_commit, session_scope

log = logging.getLogger(__name__)

#: Key in ``session.info`` of the nudge ``(refs, kind) -> None`` the runtime installs on
#: its session factory: called after commit with the refs of the rows just added.
NUDGE = "signflow_outbox_nudge"

#: The longest wait between two attempts, in seconds.
MAX_DELAY = 60

#: The actor of ``mail.sent`` events.
DISPATCHER = "system"

_TOKEN_IN_PATH = re.compile(r"/sign/[^/\s'\"<>?#]+")


def send_mail(session: Session, svc: Services, mail: Mail, *, round_id: str | None = None,
              on_sent: Mapping[str, Any] | None = None,
              attach: tuple[str, str] | None = None) -> OutboxMessage:
    """Record *mail* in the caller's transaction; it is sent after commit.

    *on_sent* (with *round_id*) is the data of the ``mail.sent`` event appended
    to the round's chain once the mail was really handed over, e.g.
    ``{"signer": id, "kind": "invitation"}``: never the body, never a link.
    *attach*: ``(storage key, file name)`` of a stored PDF to attach, read from
    the blob store when the mail goes out (the row stays small).
    """
    payload: dict[str, Any] = {"mail": {"to": mail.to, "subject": mail.subject,
                                        "body": mail.body}}
    for optional in ("reply_to", "language"):
        if getattr(mail, optional):
            payload["mail"][optional] = getattr(mail, optional)
    if on_sent is not None:
        payload["on_sent"] = dict(on_sent)
    if attach is not None:
        payload["attach"] = {"blob": attach[0], "filename": attach[1]}
    return record(session, svc, "mail", payload, round_id)


def enqueue_job(session: Session, svc: Services, job: str, *args: str,
                round_id: str | None = None) -> OutboxMessage:
    """Record that *job* is to be enqueued with *args*; it is, after commit."""
    return record(session, svc, "job", {"job": job, "args": list(args)}, round_id)


def record(session: Session, svc: Services, kind: str, payload: dict[str, Any],
           round_id: str | None) -> OutboxMessage:
    """Record a row of *kind* (``mail``, ``job``, ``webhook``) with its sealed *payload*;
    it is delivered after commit."""
    ref, now = new_id(), svc.clock.now()
    row = OutboxMessage(
        ref=ref, kind=kind, round_id=round_id, created_at=now, next_attempt_at=now, attempts=0,
        payload_sealed=svc.sealer.seal(json.dumps(payload, sort_keys=True),
                                       bound_to=f"outbox:{ref}"),
    )
    session.add(row)
    nudge: Callable[[Collection[str], str], None] | None = session.info.get(NUDGE)
    if nudge is not None:  # by ref: the row may be expired (and unloadable) by then
        after_commit(session, lambda: nudge([ref], kind))
    return row


#: How long a delivered message keeps its content (a mail's text: names, addresses,
#: the signing link), for a support question soon after; then only that it went out,
#: when and how often it was tried are kept.
KEEP_DELIVERED = timedelta(days=30)


def forget_delivered(session: Session, now: datetime) -> int:
    """Clear the sealed content of messages delivered over :data:`KEEP_DELIVERED`
    ago (the archivist's review: every mail ever sent was kept, sealed, for good).
    Returns how many were cleared."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_not(None),
               OutboxMessage.delivered_at < now - KEEP_DELIVERED,
               OutboxMessage.payload_sealed != "")
        .values(payload_sealed="")
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def waiting(session: Session, now: datetime) -> dict[str, dict[str, float]]:
    """What waits to be delivered, by kind: how many rows, how many of them failed
    at least once, and the oldest one's age in seconds.  Rows pile up here when no
    dispatcher runs, or SMTP, a receiver or Redis stays down: what an operator
    watches (``/readyz``, ``/metrics``)."""
    rows = session.execute(
        select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.created_at),
               func.sum(case((OutboxMessage.attempts > 0, 1), else_=0)))
        .where(OutboxMessage.delivered_at.is_(None)).group_by(OutboxMessage.kind))
    found: dict[str, dict[str, float]] = {}
    for kind, count, oldest, retrying in rows:  # UTCDateTime: aware, SQLite too
        found[kind] = {"count": int(count), "retrying": int(retrying or 0),
                       "oldest_seconds": max(0.0, (now - oldest).total_seconds())}
    return found


def backoff(attempts: int, jitter: Callable[[], float] = random.random) -> timedelta:
    """The wait after the *attempts*-th failure: 2, 4, 8 … capped at :data:`MAX_DELAY`
    seconds, minus up to a quarter at random so that retries do not march in step."""
    delay = min(2 ** min(attempts, 16), MAX_DELAY)
    return timedelta(seconds=delay * (1 - 0.25 * jitter()))


def describe_error(exc: BaseException) -> str:
    """The exception's class and a short message, any link token redacted."""
    message = _TOKEN_IN_PATH.sub("/sign/[link]", str(exc)).replace("\n", " ")
    return f"{type(exc).__name__}: {message}"[:300]


def deliver_due(sessions: sessionmaker[Session], svc: Services, *,
                now: datetime | None = None, limit: int = 50,
                only: Collection[str] | None = None) -> int:
    """Deliver up to *limit* due rows (those whose ref is in *only*, if given), one
    transaction each.

    On PostgreSQL a row is claimed ``FOR UPDATE SKIP LOCKED`` and held until it
    is marked, so several dispatchers may run at once and each row is delivered
    once (at least once should a dispatcher die between delivery and commit).
    A failure is counted and retried later (:func:`backoff`).

    :returns: how many rows were delivered.
    """
    delivered = 0
    if only is not None:  # each of those rows is claimed once at most: no empty last claim
        limit = min(limit, len(set(only)))
    for _ in range(limit):
        with session_scope(sessions) as session:
            row = _claim(session, now or svc.clock.now(), only)
            if row is None:
                break
            delivered += _deliver(session, svc, row, now or svc.clock.now())
    return delivered


def _claim(session: Session, now: datetime, only: Collection[str] | None
           ) -> OutboxMessage | None:
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1))
    if only is not None:
        stmt = stmt.where(OutboxMessage.ref.in_(list(only)))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def _mail_of(svc: Services, payload: Mapping[str, Any]) -> Mail:
    attach = payload.get("attach")
    if not attach:
        return Mail(**payload["mail"])
    document = Attachment(attach["filename"], "application/pdf", svc.blobs.get(attach["blob"]))
    return Mail(**payload["mail"], attachments=(document,))


def _deliver(session: Session, svc: Services, row: OutboxMessage, now: datetime) -> bool:
    row_id, ref, kind = row.id, row.ref, row.kind
    try:
        payload = json.loads(svc.sealer.open(row.payload_sealed, bound_to=f"outbox:{ref}"))
        if kind == "mail":
            svc.mailer.send(_mail_of(svc, payload))
        elif kind == "webhook":
            from signflow.core import webhooks  # it records through this module

            webhooks.deliver(session, svc, payload, now)
        else:
            svc.jobs.enqueue(payload["job"], *payload["args"])
    except Exception as exc:
        row.attempts += 1
        # from when the attempt ended: a server that hung 20 s is not tried again at once
        row.next_attempt_at = max(now, svc.clock.now()) + backoff(row.attempts)
        row.last_error = describe_error(exc)
        log.warning("outbox %s (%s) not delivered, attempt %d: %s", row_id, kind,
                    row.attempts, row.last_error)
        return False
    if kind == "mail" and payload.get("on_sent") and row.round_id:
        round_ = lock_round(session, row.round_id)  # flushes and reloads: row is read again
        append_event(session, round_, EventType.MAIL_SENT, DISPATCHER, payload["on_sent"])
    row.delivered_at = svc.clock.now()
    return True
