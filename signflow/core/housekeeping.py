"""Scheduled housekeeping: deadlines, stalled PDF work, archive renewal.

Run by ``signflow rounds expire`` and ``signflow lta renew`` (hourly and
daily, from cron or the compose file's scheduler) and as RQ jobs.  Each is
idempotent, like every job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from signflow.core import messages, outbox
from signflow.core.audit import EventType, append_event, lock_round
from signflow.core.links import revoke_links
from signflow.core.models import Document, Round, Signer
from signflow.core.orders import end_open_orders
from signflow.core.ports import Services
from signflow.core.rounds import SYSTEM, forget_personal_numbers, store_document
from signflow.core.states import RoundStatus, SignerStatus, transition


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
        if all(s.status == SignerStatus.SIGNED.value for s in round_.signers):
            continue  # signed by all; only PDF work is left, which resume_stalled restarts
        transition(round_, RoundStatus.EXPIRED)
        expired.append(round_id)
        end_open_orders(session, svc, round_.signers)
        revoke_links(round_, now)
        forget_personal_numbers(round_.signers)
        unsigned = [s.name for s in round_.signers if s.status != SignerStatus.SIGNED.value]
        append_event(session, round_, EventType.ROUND_EXPIRED, SYSTEM,
                     {"unsigned": unsigned, "expires_at": round_.expires_at.isoformat()})
        mail = messages.expired(round_.language, to=round_.created_by.email,
                                title=round_.title, unsigned=unsigned,
                                link=messages.round_page(svc.base_url, round_.id))
        outbox.send_mail(session, svc, mail, round_id=round_id)
    return expired
