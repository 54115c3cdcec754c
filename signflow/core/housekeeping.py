"""Scheduled housekeeping: deadlines, stalled PDF work, archive renewal.

:func:`tick` is what ``signflow scheduler`` (a process of its own; the
compose file's ``scheduler``) does every 15 seconds, and ``signflow rounds
expire`` once, from cron.  Each step is idempotent, like every job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from signflow.core import messages, outbox, webhooks
from signflow.core.audit import EventType, append_event, lock_round, rfc3339
from signflow.core.links import revoke_links
from signflow.core.models import Document, Round, Signer
from signflow.core.notice import publish_due_notices
from signflow.core.orders import end_open_orders
from signflow.core.ports import Services
from signflow.core.rounds import (
    SYSTEM,
    forget_personal_numbers,
    invite,
    signed_by_all,
    store_document,
)
from signflow.core.states import RoundStatus, SignerStatus, transition
from signflow.db import try_lock

#: How long a recorded signature may wait for its PDF work before the scheduler
#: starts that work again: long enough for a busy queue, short enough that a
#: round interrupted by a Redis or TSA outage finishes soon after it ends.
STALL_GRACE = timedelta(seconds=40)
#: Completed documents whose last timestamp is older are re-timestamped.
RENEW_AFTER = timedelta(days=300)


def renew_archive(session: Session, svc: Services, round_id: str) -> None:
    """Job: re-timestamp a completed round's document (idempotent per run)."""
    round_ = lock_round(session, round_id)
    if round_.status != RoundStatus.COMPLETED.value or round_.current_document is None:
        return
    previous = round_.current_document
    data = svc.pdf.renew(svc.blobs.get(previous.storage_key))
    doc = store_document(session, svc, round_, "final", data)
    round_.current_document_id = doc.id
    append_event(session, round_, EventType.DOCUMENT_RENEWED, SYSTEM,
                 {"previous_sha256": previous.sha256, "sha256": doc.sha256})
    # an archive holding the copy mailed at completion can fetch this one: judged years
    # on, that copy's validation data may have run out, this one's not
    webhooks.emit(session, svc, round_, "document.renewed", {
        "previous_sha256": previous.sha256, "sha256": doc.sha256,
        "document": f"{svc.base_url}/api/v1/rounds/{round_.id}/document"})


def rounds_due_for_renewal(session: Session, older_than: datetime) -> list[str]:
    """Completed rounds whose document was last timestamped before *older_than*."""
    latest = (select(Document.round_id, func.max(Document.created_at).label("at"))
              .group_by(Document.round_id).subquery())
    rows = session.execute(
        select(Round.id).join(latest, latest.c.round_id == Round.id)
        .where(Round.status == RoundStatus.COMPLETED.value, latest.c.at < older_than))
    return [r[0] for r in rows]


def resume_stalled(session: Session, svc: Services, grace: timedelta,
                   now: datetime | None = None) -> list[str]:
    """Job: enqueue the PDF work again for signatures recorded but not applied.

    The job that writes a signature into the PDF is enqueued through the
    outbox, so an unreachable queue only delays it; but a job that used up its
    retries (a TSA outage) would leave the round waiting forever.  Run with the hourly
    housekeeping; *grace* leaves a job that is merely slow alone.
    """
    now = now or svc.clock.now()
    stalled = list(session.scalars(
        select(Round.id).join(Signer, Signer.round_id == Round.id).where(
            Round.status == RoundStatus.PENDING.value,
            Signer.status == SignerStatus.SIGNED.value,
            Signer.applied_at.is_(None), Signer.signed_at < now - grace,
        ).distinct().order_by(Round.id)))
    for round_id in stalled:
        svc.jobs.enqueue("apply_signatures", round_id)
    return stalled


def expire_due(session: Session, svc: Services, now: datetime | None = None) -> list[str]:
    """Job: end every pending round past its deadline; the secretariat is told.

    Returns the rounds it expired.
    """
    now = now or svc.clock.now()
    due = list(session.scalars(select(Round.id).where(
        Round.status == RoundStatus.PENDING.value, Round.expires_at < now)
        .order_by(Round.id)))  # one lock order, should two expiry runs overlap
    expired = []
    for round_id in due:
        round_ = lock_round(session, round_id)
        if round_.status != RoundStatus.PENDING.value:
            continue  # completed, cancelled or declined since the list was read
        if round_.expires_at >= now:
            continue  # the deadline was moved while we waited for the lock
        if signed_by_all(round_):
            continue  # signed by all; only PDF work is left, which resume_stalled restarts
        transition(round_, RoundStatus.EXPIRED)
        expired.append(round_id)
        end_open_orders(session, svc, round_.signers)
        revoke_links(round_, now)
        forget_personal_numbers(round_.signers)
        unsigned = [s.name for s in round_.signers if s.status != SignerStatus.SIGNED.value]
        append_event(session, round_, EventType.ROUND_EXPIRED, SYSTEM,
                     {"unsigned": unsigned, "expires_at": round_.expires_at.isoformat()})
        webhooks.emit(session, svc, round_, "round.expired", {
            "unsigned": unsigned, "expires_at": rfc3339(round_.expires_at)})
        mail = messages.expired(round_.language, to=round_.created_by.email,
                                title=round_.title, unsigned=unsigned,
                                link=messages.round_page(svc.base_url, round_.id))
        outbox.send_mail(session, svc, mail, round_id=round_id)
    return expired


def remind_due(session: Session, svc: Services, now: datetime | None = None) -> list[str]:
    """Job: send the reminders the rounds' workflows planned and that are due.

    A signer invited at *t* is reminded at ``t + first_after_days``, then every
    ``every_days``, at most ``at_most`` times (the plan copied onto the round
    when it started); each reminder resends the link they have and is an audit
    event.  Returns the signers reminded.
    """
    now = now or svc.clock.now()
    candidates = session.execute(
        select(Signer.id, Signer.round_id).join(Round, Signer.round_id == Round.id).where(
            Round.status == RoundStatus.PENDING.value, Round.reminder_plan.is_not(None),
            Signer.status == SignerStatus.INVITED.value, Signer.invited_at.is_not(None))
        .order_by(Signer.round_id, Signer.position)).all()
    reminded = []
    for round_id in dict.fromkeys(r for _s, r in candidates):  # one lock order
        round_ = lock_round(session, round_id)
        if round_.status != RoundStatus.PENDING.value or not round_.reminder_plan:
            continue
        plan = json.loads(round_.reminder_plan)
        for signer in round_.signers:
            if signer.status != SignerStatus.INVITED.value or signer.invited_at is None:
                continue
            if signer.reminders_sent >= plan["at_most"]:
                continue
            due = signer.invited_at + timedelta(
                days=plan["first_after_days"] + signer.reminders_sent * plan["every_days"])
            if now < due:
                continue
            invite(session, svc, signer, actor=SYSTEM, reminder=True)
            signer.reminders_sent += 1
            reminded.append(signer.id)
    return reminded


@dataclass
class Tick:
    """What one :func:`tick` did (nothing, if another scheduler held the lock)."""

    ran: bool = True
    expired: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    renewing: list[str] = field(default_factory=list)
    #: Rounds whose notice of justering went up on the notice board.
    notices: list[str] = field(default_factory=list)
    #: Delivered messages whose content was cleared (outbox.KEEP_DELIVERED).
    forgotten: int = 0


def tick(session: Session, svc: Services, *, renew: bool = False,
         now: datetime | None = None) -> Tick:
    """One round of housekeeping: restart stalled PDF work, expire rounds past
    their deadline, send the reminders due, publish the notices of justering
    whose posting day has come and, with *renew* (hourly), clear the content of
    long-delivered messages and queue archive renewals.

    Several schedulers may run: one lock per tick lets one of them act and the
    others skip (PostgreSQL), so nothing is enqueued twice by them.
    """
    if not try_lock(session, "signflow.housekeeping"):
        return Tick(ran=False)
    now = now or svc.clock.now()
    done = Tick(resumed=resume_stalled(session, svc, STALL_GRACE, now),
                expired=expire_due(session, svc, now))
    done.reminded = remind_due(session, svc, now)  # after expiry: none to an ended round
    done.notices = publish_due_notices(session, svc, now)
    if renew:
        # hourly, not every tick: it reads the whole outbox, which only grows
        done.forgotten = outbox.forget_delivered(session, now)
        done.renewing = rounds_due_for_renewal(session, now - RENEW_AFTER)
        for round_id in done.renewing:
            svc.jobs.enqueue("renew_archive", round_id)
    return done
