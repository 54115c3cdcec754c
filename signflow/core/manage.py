"""What the secretariat does with its rounds besides starting, reminding and cancelling.

- :func:`start_round_until`: :func:`~signflow.core.rounds.start_round` with a
  deadline the secretariat chose instead of the service's default.
- :func:`replace_signer`: put another person in the place of a signer who has
  not signed; the old link stops working and the new person is invited.
- :func:`find_rounds`: one page of an organisation's rounds, searched and filtered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from signflow.core import orders, rounds
from signflow.core.audit import EventType, append_event, lock_round
from signflow.core.identity import IdentityPolicy
from signflow.core.models import Document, RetiredLink, Round, Signer, User
from signflow.core.ports import Services
from signflow.core.states import RoundStatus, SignerStatus, transition
from signflow.errors import IllegalTransition, InvalidInput, NotFound

STOCKHOLM = ZoneInfo("Europe/Stockholm")
#: The latest deadline a round may have, in days from today.
MAX_DEADLINE_DAYS = 365


def deadline_from_date(day: date, now: datetime) -> datetime:
    """The end of *day* in Stockholm, if it is between today and a year from now."""
    today = now.astimezone(STOCKHOLM).date()
    if day < today:
        raise InvalidInput("the deadline has passed", code="deadline_past", field="deadline")
    if day > today + timedelta(days=MAX_DEADLINE_DAYS):
        raise InvalidInput(f"the deadline is more than {MAX_DEADLINE_DAYS} days away",
                           code="deadline_far", field="deadline")
    return datetime.combine(day, time(23, 59, 59), tzinfo=STOCKHOLM)


def extend_deadline(session: Session, svc: Services, user: User, round_id: str,
                    day: date) -> Round:
    """Move a pending round's deadline to the end of *day* (later than now, within
    a year); the links that are live stay live until then."""
    round_ = rounds.visible_round(session, user, round_id)
    rounds.require_manager(user)
    round_ = lock_round(session, round_.id)
    if round_.status != RoundStatus.PENDING.value:
        raise IllegalTransition(f"the round is {round_.status}", code="round_closed")
    new = deadline_from_date(day, svc.clock.now())
    if new <= round_.expires_at:
        raise InvalidInput("the new deadline must be later than the current one",
                           code="deadline_not_later", field="deadline")
    before, round_.expires_at = round_.expires_at, new
    for signer in round_.signers:
        if signer.status == SignerStatus.INVITED.value and signer.token_hash:
            signer.token_expires_at = new
    append_event(session, round_, EventType.DEADLINE_EXTENDED, f"user:{user.email}",
                 {"from": before.isoformat(), "to": new.isoformat()})
    return round_


def start_round_until(
    session: Session, svc: Services, user: User, spec: rounds.RoundSpec, pdf: bytes,
    deadline: datetime | None = None,
) -> Round:
    """Start a round whose links end at *deadline* (default: the service's invitation days)."""
    return rounds.start_round(session, svc, user, spec, pdf, expires_at=deadline)


def replace_signer(
    session: Session, svc: Services, user: User, round_id: str, signer_id: str,
    raw: Mapping[str, Any],
) -> Signer:
    """Put the person described by *raw* (name, email, personal_number, organisation,
    title) in *signer_id*'s place.

    The place keeps its position, role and step; the organisation and title on the
    signature page are the new person's (empty when not given).  An open identity order is
    ended, the old link stops working at once and, if it is the place's turn,
    the new person is e-mailed a link of their own.  A place whose signer
    declined can be given to another person when the round's workflow says so
    (``on_decline = "replace"``).
    """
    round_ = rounds.visible_round(session, user, round_id)
    rounds.require_manager(user)
    new = _replacement(round_, signer_id, raw)
    round_ = lock_round(session, round_.id)
    if round_.status != RoundStatus.PENDING.value:
        raise IllegalTransition(f"the round is {round_.status}", code="round_closed")
    signer = next((s for s in round_.signers if s.id == signer_id), None)
    if signer is None:
        raise NotFound("no such signer")
    if signer.status not in replaceable_states(round_):
        raise IllegalTransition(f"the signer has already {signer.status}", code="signer_done")
    rounds.refuse_twice(new, [  # the others as they stand: one person signs once
        rounds.SignerSpec(name=s.name, email=s.email, role=s.role,
                          personal_number=rounds.invited_personal_number(svc, s))
        for s in round_.signers if s.id != signer.id])
    if round_.identity_policy == IdentityPolicy.PERSONAL_NUMBER.value and not new.personal_number:
        raise InvalidInput("this round binds signers by personal number: give one",
                           code="personal_number_required", field="personal_number")
    orders.end_open_orders(session, svc, [signer])
    append_event(session, round_, EventType.SIGNER_REPLACED, f"user:{user.email}", {
        "signer": signer.id, "old_name": signer.name, "old_email": signer.email,
        "name": new.name, "email": new.email,
        "organisation": new.organisation, "title": new.title,
    })
    if signer.token_hash:  # following the old link says the place went to another
        session.add(RetiredLink(token_hash=signer.token_hash, round_id=round_.id,
                                role=signer.role, retired_at=svc.clock.now()))
    _put_in_place(svc, signer, new)
    if signer.status == SignerStatus.DECLINED.value:
        transition(signer, SignerStatus.WAITING)
        signer.decline_reason = ""
        rounds.invite_current_step(session, svc, round_, actor=f"user:{user.email}")
    elif signer.status == SignerStatus.INVITED.value:
        rounds.invite(session, svc, signer, actor=f"user:{user.email}")
    return signer


def replaceable_states(round_: Round) -> tuple[str, ...]:
    """The states in which a signer of *round_* can be replaced by another person."""
    states: tuple[str, ...] = (SignerStatus.WAITING.value, SignerStatus.INVITED.value)
    if round_.on_decline == "replace":
        states += (SignerStatus.DECLINED.value,)
    return states


def _replacement(round_: Round, signer_id: str, raw: Mapping[str, Any]) -> rounds.SignerSpec:
    """The new person, checked exactly as the round API checks a signer."""
    role = next((s.role for s in round_.signers if s.id == signer_id), None)
    if role is None:
        raise NotFound("no such signer")
    person = {k: raw.get(k) or "" for k in ("name", "email", "personal_number", "organisation",
                                            "title")}
    spec = rounds.parse_round_spec({"title": round_.title, "signers": [{**person, "role": role}]})
    return spec.signers[0]


def _put_in_place(svc: Services, signer: Signer, new: rounds.SignerSpec) -> None:
    signer.name, signer.email = new.name, new.email
    signer.organisation, signer.title = new.organisation, new.title
    signer.personal_number_given = bool(new.personal_number)
    signer.personal_number_sealed = (svc.sealer.seal(new.personal_number, bound_to=signer.id)
                                     if new.personal_number else None)
    # the old person's link: gone, and nothing left from which to resend it
    signer.token_hash = None
    signer.token_expires_at = None
    signer.link_token_sealed = None
    signer.invited_at = None
    signer.reminders_sent = 0  # the new person gets the whole reminder plan
    signer.pending_qr_token = signer.pending_qr_secret = None
    signer.pending_started_at = None


@dataclass(frozen=True)
class RoundsPage:
    """One page of the rounds list."""

    #: The rounds on this page, newest first, signers loaded.
    rounds: list[Round]
    #: How many rounds match in all.
    total: int
    #: This page's number, from 1.
    page: int
    #: How many pages there are (at least 1).
    pages: int


def find_rounds(
    session: Session, user: User, *, query: str = "", status: str = "", page: int = 1,
    per_page: int = 20, past_the_end: bool = False,
) -> RoundsPage:
    """*user*'s organisation's rounds whose title or a signer's name holds *query*,
    whatever the case of its letters (Å and å too).  A *page* past the last is the
    last one, or with *past_the_end* an empty one (the API: a client paging on
    stops there)."""
    where = [Round.organisation_id == user.organisation_id]
    query = query.strip()[:200].lower()
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        named = select(Signer.round_id).where(
            func.lower(Signer.name).like(pattern, escape="\\"))
        where.append(or_(func.lower(Round.title).like(pattern, escape="\\"),
                         Round.id.in_(named)))
    if status in {s.value for s in RoundStatus}:
        where.append(Round.status == status)
    total = session.scalar(select(func.count()).select_from(Round).where(*where)) or 0
    pages = max(1, -(-total // per_page))
    page = max(page, 1) if past_the_end else min(max(page, 1), pages)
    rows = session.scalars(
        select(Round).where(*where).options(selectinload(Round.signers))
        .order_by(Round.created_at.desc(), Round.id).limit(per_page)
        .offset((page - 1) * per_page))
    return RoundsPage(list(rows), total, page, pages)


def prepared_document(session: Session, round_id: str) -> Document | None:
    """The PDF every signer approves (signature page, fields, certification), unsigned:
    the round's current document until the first signature, kept after completion."""
    return session.scalar(select(Document).where(Document.round_id == round_id,
                                                 Document.kind == "prepared")
                          .order_by(Document.id.desc()).limit(1))
