"""Use cases of a signing round, as verbs.

Every use case runs inside the caller's transaction, writes its audit events
in that same transaction, and registers side effects (mail, jobs) to run only
after commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from signflow.core import messages, outbox, webhooks
from signflow.core.audit import GENESIS, EventType, append_event, claim_new_round, lock_round
from signflow.core.identity import IdentityCheck, IdentityPolicy
from signflow.core.links import (  # noqa: F401  (hash_token, signer_for_token: public here too)
    hash_token,
    issue_link,
    revoke_links,
    signer_for_token,
)
from signflow.core.models import AuditEvent, Document, Round, Signer, User, new_id
from signflow.core.orders import end_open_orders
from signflow.core.people import (
    canonical_role,
    in_a_sentence,
    method_in,
    normalize_personal_number,
    role_label,
)
from signflow.core.ports import Services, SignerBlock
from signflow.core.states import RoundStatus, SignerStatus, transition
from signflow.core.workflows import workflow_named
from signflow.errors import (
    ConfigError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
)

MAX_SIGNERS = 20
SYSTEM = "system"


@dataclass(frozen=True)
class SignerSpec:
    name: str
    email: str
    role: str
    organisation: str = ""
    title: str = ""
    personal_number: str = ""


@dataclass(frozen=True)
class RoundSpec:
    title: str
    signers: tuple[SignerSpec, ...]
    language: str = "sv"
    #: ``parallel``/``sequential``; empty: the workflow's.
    order: str = ""
    workflow: str = "standard"
    message: str = ""
    #: The body whose meeting it records, its day and where the protocol is
    #: kept: what the notice of justering says (a ``notice`` workflow needs
    #: the first two).
    body: str = ""
    meeting_date: date | None = None
    kept_at: str = ""


#: Characters no field may hold: controls (a CR or LF in a title would end a mail's
#: Subject header, which no SMTP server then takes), and lone UTF-16 surrogates.
_NEVER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: ... and the line breaks and tabs a one-line field may not hold either.
_NEVER_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _text(obj: Mapping[str, Any], key: str, *, required: bool, limit: int,
          lines: bool = False) -> str:
    value = obj.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=key)
    value = value.strip()
    if (_NEVER if lines else _NEVER_IN_A_LINE).search(value):
        raise InvalidInput(f"{key} holds a control character"
                           + ("" if lines else " or a line break"), field=key)
    if required and not value:
        raise InvalidInput(f"{key} is required", field=key)
    if len(value) > limit:
        raise InvalidInput(f"{key} is longer than {limit} characters", field=key)
    return value


def _email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value) or len(value) > 320:
        raise InvalidInput(f"{value!r} is not an e-mail address", field="email")
    return value


def parse_round_spec(raw: Any) -> RoundSpec:
    """Validate the ``round`` JSON of the API; raise :class:`InvalidInput` on any flaw."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("round must be a JSON object", field="round")
    language = raw.get("language", "sv") or "sv"
    if language not in ("sv", "en"):
        raise InvalidInput("language must be 'sv' or 'en'", field="language")
    order = raw.get("order") or ""
    if order not in ("", "parallel", "sequential"):
        raise InvalidInput("order must be 'parallel' or 'sequential'", field="order")
    signers_raw = raw.get("signers")
    if not isinstance(signers_raw, list) or not signers_raw:
        raise InvalidInput("signers must be a non-empty list", field="signers")
    if len(signers_raw) > MAX_SIGNERS:
        raise InvalidInput(f"at most {MAX_SIGNERS} signers", field="signers")
    signers: list[SignerSpec] = []
    for item in signers_raw:
        if not isinstance(item, Mapping):
            raise InvalidInput("each signer must be an object", field="signers")
        pnr = _text(item, "personal_number", required=False, limit=13)
        signers.append(
            SignerSpec(
                name=_text(item, "name", required=True, limit=200),
                email=_email(_text(item, "email", required=True, limit=320)),
                role=canonical_role(_text(item, "role", required=True, limit=50)),
                organisation=_text(item, "organisation", required=False, limit=200),
                title=_text(item, "title", required=False, limit=200),
                personal_number=normalize_personal_number(pnr) if pnr else "",
            )
        )
        refuse_twice(signers[-1], signers[:-1])
    return RoundSpec(
        title=_text(raw, "title", required=True, limit=300),
        signers=tuple(signers),
        language=language,
        order=order,
        workflow=_text(raw, "workflow", required=False, limit=100) or "standard",
        message=_text(raw, "message", required=False, limit=4000, lines=True),
        body=_text(raw, "body", required=False, limit=200),
        meeting_date=_date(raw, "meeting_date"),
        kept_at=_text(raw, "kept_at", required=False, limit=300),
    )


def refuse_twice(person: SignerSpec, others: Sequence[SignerSpec]) -> None:
    """One person signs once: :class:`InvalidInput` when *person*'s e-mail address or
    personal number is already one of *others*' (a chair cannot be their own justerare)."""
    for other in others:
        if person.email.lower() == other.email.lower():
            raise InvalidInput(f"{person.email} is named for two places; one person signs "
                               "once", code="signer_twice", field="email")
        if person.personal_number and person.personal_number == other.personal_number:
            raise InvalidInput("the same personal number is given for two places; one "
                               "person signs once", code="signer_twice",
                               field="personal_number")


def _date(obj: Mapping[str, Any], key: str) -> date | None:
    value = _text(obj, key, required=False, limit=10)
    if not value:
        return None
    wrong = InvalidInput(f"{key} must be a date, YYYY-MM-DD", field=key)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise wrong
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise wrong from None


def store_document(
    session: Session, svc: Services, round_: Round, kind: str, data: bytes
) -> Document:
    """Store *data* as a new document of *round_* (*kind*: ``original``, ``prepared``,
    ``signed`` or ``final``); the caller makes it the current one if it is."""
    doc = Document(
        round_id=round_.id,
        kind=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        storage_key=svc.blobs.put(data),
    )
    session.add(doc)
    session.flush()
    return doc


def start_round(session: Session, svc: Services, user: User, spec: RoundSpec, pdf: bytes,
                *, expires_at: datetime | None = None) -> Round:
    """Create a round: check and prepare the PDF, certify it, invite the signers.

    Its links end at *expires_at*, by default after the service's invitation days."""
    if user.role not in ("secretariat", "admin"):
        raise Forbidden("only the secretariat can start a round")
    workflow = workflow_named(dict(svc.workflows), spec.workflow)
    order = spec.order or workflow.order
    workflow.check_signers([s.role for s in spec.signers])
    workflow.check_notice_facts(spec.body, spec.meeting_date, spec.kept_at)
    provider = workflow.provider
    policy = IdentityPolicy(workflow.identity)
    if policy is IdentityPolicy.PERSONAL_NUMBER:
        for s in spec.signers:
            if not s.personal_number:
                raise InvalidInput(
                    f"workflow {workflow.name!r} binds signers by personal number: give "
                    f"{s.name}'s personal_number", code="personal_number_required",
                    field="personal_number")
    try:
        svc.providers[provider]  # an unknown or unconfigured provider fails before any work
    except ConfigError as exc:
        raise InvalidInput(f"workflow {workflow.name!r} signs with {provider!r}, which is not "
                           f"available here: {exc.message}", code="provider_unavailable",
                           field="workflow") from None
    now = svc.clock.now()
    round_ = Round(
        id=new_id(),
        organisation_id=user.organisation_id,
        created_by_id=user.id,
        title=spec.title,
        workflow=workflow.name,
        provider=provider,
        language=spec.language,
        order=order,
        identity_policy=policy.value,
        message=spec.message,
        status=RoundStatus.PENDING.value,
        created_at=now,
        expires_at=expires_at or now + timedelta(
            days=workflow.deadline_days or svc.invitation_days),
        reminder_plan=(json.dumps(dataclasses.asdict(workflow.reminders))
                       if workflow.reminders.at_most else None),
        on_decline=workflow.on_decline,
        notify=" ".join(workflow.notify),
        notice=workflow.notice,
        body=spec.body, meeting_date=spec.meeting_date, kept_at=spec.kept_at,
    )
    for pos, s in enumerate(spec.signers, start=1):
        signer_id = new_id()
        step = {"parallel": 1, "sequential": pos}.get(order) or workflow.step_of(s.role)
        round_.signers.append(
            Signer(
                id=signer_id, position=pos, step=step, name=s.name, email=s.email, role=s.role,
                organisation=s.organisation, title=s.title,
                personal_number_given=bool(s.personal_number),
                personal_number_sealed=(svc.sealer.seal(s.personal_number, bound_to=signer_id)
                                        if s.personal_number else None),
                status=SignerStatus.WAITING.value, field_name=f"Underskrift{pos}",
            )
        )
    prepared = svc.pdf.prepare(
        pdf, round_id=round_.id, title=spec.title, language=spec.language,
        blocks=[signer_block(s, spec.language) for s in round_.signers],
    )
    session.add(round_)
    session.flush()
    claim_new_round(session, round_)
    original = store_document(session, svc, round_, "original", pdf)
    doc = store_document(session, svc, round_, "prepared", prepared.data)
    round_.current_document_id = doc.id
    round_.document_sha256 = doc.sha256
    actor = f"user:{user.email}"
    append_event(session, round_, EventType.ROUND_CREATED, actor, {
        "title": spec.title, "language": spec.language, "order": order,
        "workflow": workflow.name, "provider": provider, "original_sha256": original.sha256,
        "identity_policy": policy.value,
        "pages": prepared.page_count,
        "signers": [{"id": s.id, "name": s.name, "role": s.role, "email": s.email}
                    for s in round_.signers],
    }, at=now)
    append_event(session, round_, EventType.DOCUMENT_PREPARED, SYSTEM, {
        "sha256": doc.sha256, "size": doc.size,
    })
    invite_current_step(session, svc, round_, actor=actor)
    return round_


def invite_current_step(session: Session, svc: Services, round_: Round, *, actor: str) -> None:
    """Invite the signers whose turn it is: those not yet invited in the lowest
    step that still has a signer to sign (the steps run in turn)."""
    open_steps = [s.step for s in round_.signers
                  if s.status in (SignerStatus.WAITING.value, SignerStatus.INVITED.value)]
    if not open_steps:
        return
    now_step = min(open_steps)
    for signer in round_.signers:
        if signer.step == now_step and signer.status == SignerStatus.WAITING.value:
            invite(session, svc, signer, actor=actor)


def signer_block(signer: Signer, language: str) -> SignerBlock:
    """*signer*'s block on the signature page, in *language*: who, and once signed, how."""
    return SignerBlock(
        position=signer.position,
        field_name=signer.field_name,
        role_label=role_label(signer.role, language),
        name=signer.verified_name or signer.name,
        organisation=signer.organisation,
        title=signer.title,
        method=method_in(signer.method or "", language),
        signed_at=signer.signed_at,
        transaction_id=signer.transaction_id or "",
        identity_checked=signer.identity_check != IdentityCheck.NONE.value,
    )


def invited_personal_number(svc: Services, signer: Signer) -> str:
    """The personnummer the secretariat gave for *signer*, decrypted; "" when none."""
    if not signer.personal_number_sealed:
        return ""
    return svc.sealer.open(signer.personal_number_sealed, bound_to=signer.id)


def forget_personal_numbers(signers: list[Signer]) -> None:
    """Erase the invited personal numbers once the round has ended (completed or not)."""
    for s in signers:
        s.personal_number_sealed = None


def invite(
    session: Session, svc: Services, signer: Signer, *, actor: str, reminder: bool = False
) -> None:
    """E-mail *signer* their personal link (through the outbox, after commit).

    A reminder resends the link the signer already has (kept sealed), so an
    earlier e-mail keeps working; only a link issued before links were kept
    is replaced by a new one.
    """
    round_ = signer.round
    if reminder:
        if signer.status != SignerStatus.INVITED.value:
            return
    else:
        transition(signer, SignerStatus.INVITED)
    before = signer.token_hash
    token = issue_link(svc, signer, round_, resend=reminder)
    now = svc.clock.now()
    signer.invited_at = signer.invited_at or now
    data: dict[str, Any] = {"signer": signer.id, "email": signer.email}
    if reminder:
        data["same_link"] = signer.token_hash == before
    append_event(
        session, round_,
        EventType.SIGNER_REMINDED if reminder else EventType.SIGNER_INVITED, actor, data,
    )
    mail = messages.invitation(
        round_.language, to=signer.email, name=signer.name,
        org=round_.organisation.name, title=round_.title,
        role=in_a_sentence(role_label(signer.role, round_.language)), message=round_.message,
        link=f"{svc.base_url}/sign/{token}",
        expires=messages.deadline(round_.expires_at, round_.language), reminder=reminder,
        reply_to=round_.created_by.email,  # a signer's answer reaches the secretariat
    )
    outbox.send_mail(session, svc, mail, round_id=round_.id, on_sent={
        "signer": signer.id, "kind": "reminder" if reminder else "invitation"})


def visible_round(session: Session, user: User, round_id: str) -> Round:
    """The round if *user*'s organisation owns it; otherwise :class:`NotFound`."""
    round_ = session.get(Round, round_id) if isinstance(round_id, str) else None
    if round_ is None or round_.organisation_id != user.organisation_id:
        raise NotFound("no such round")
    return round_


def require_can_sign(signer: Signer) -> None:
    """Let *signer* act (sign, decline) only while they are invited to a pending round.

    :raises IllegalTransition: ``round_closed`` or ``signer_done``.
    """
    if signer.round.status != RoundStatus.PENDING.value:
        raise IllegalTransition(f"the round is {signer.round.status}", code="round_closed")
    if signer.status != SignerStatus.INVITED.value:
        raise IllegalTransition(f"you have already {signer.status}", code="signer_done")


def decline(session: Session, svc: Services, signer: Signer, reason: object) -> None:
    """The signer refuses, giving a reason, and the secretariat is told.  The round
    ends as declined, unless its workflow lets the secretariat name another
    person in the place (``on_decline = "replace"``): then it goes on."""
    reason = _reason(reason)
    if not reason:
        raise InvalidInput("say why you decline", code="reason_required", field="reason")
    round_ = lock_round(session, signer.round_id)
    require_can_sign(signer)
    goes_on = round_.on_decline == "replace"
    # the round ends: nobody's open order may go on (BankID would refuse the
    # person's next order elsewhere as alreadyInProgress)
    end_open_orders(session, svc, [signer] if goes_on else round_.signers)
    transition(signer, SignerStatus.DECLINED)
    signer.decline_reason = reason
    data: dict[str, Any] = {"signer": signer.id, "reason": reason}
    if goes_on:
        data["round_continues"] = True
        signer.personal_number_sealed = None  # the place gets another person, or none
    else:
        transition(round_, RoundStatus.DECLINED)
        forget_personal_numbers(round_.signers)
    append_event(session, round_, EventType.SIGNER_DECLINED, f"signer:{signer.id}", data)
    told = {"signer": {"id": signer.id, "name": signer.name, "role": signer.role},
            "reason": reason}
    webhooks.emit(session, svc, round_, "signer.declined", {**told, "round_continues": goes_on})
    if not goes_on:
        revoke_links(round_, svc.clock.now())
        webhooks.emit(session, svc, round_, "round.declined", told)
    mail = messages.declined(round_.language, to=round_.created_by.email, title=round_.title,
                             name=signer.name, role=role_label(signer.role, round_.language),
                             reason=reason, link=messages.round_page(svc.base_url, round_.id),
                             replace=goes_on)
    outbox.send_mail(session, svc, mail, round_id=round_.id)


def _reason(value: object) -> str:
    """A reason someone typed (several lines allowed), trimmed; :class:`InvalidInput`
    for anything but text of at most 2000 characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("the reason must be text", field="reason")
    if _NEVER.search(value):
        raise InvalidInput("the reason holds a control character", field="reason")
    if len(value.strip()) > 2000:
        raise InvalidInput("the reason is at most 2000 characters", field="reason")
    return value.strip()


def cancel(session: Session, svc: Services, user: User, round_id: str,
           reason: object = "") -> Round:
    """End the round: nobody can sign any more.  Everyone who was sent a link
    (and has not declined) is told, with *reason* when one is given."""
    round_ = visible_round(session, user, round_id)
    require_manager(user)
    reason = _reason(reason)
    round_ = lock_round(session, round_.id)
    if round_.status == RoundStatus.PENDING.value and signed_by_all(round_):
        # only the sealing is left (a job): cancelling now would throw away signatures
        # all of them gave, and tell them their signature will not be used
        raise IllegalTransition("everyone has signed; the protocol is being sealed",
                                code="all_signed")
    if not transition(round_, RoundStatus.CANCELLED):
        return round_  # cancelled already: nothing more to do or record
    told = [s for s in round_.signers
            if s.invited_at is not None and s.status != SignerStatus.DECLINED.value]
    end_open_orders(session, svc, round_.signers)
    revoke_links(round_, svc.clock.now())
    forget_personal_numbers(round_.signers)
    append_event(session, round_, EventType.ROUND_CANCELLED, f"user:{user.email}",
                 {"reason": reason} if reason else {})
    webhooks.emit(session, svc, round_, "round.cancelled", {"reason": reason})
    for s in told:
        outbox.send_mail(session, svc, messages.cancelled(
            round_.language, to=s.email, name=s.name, org=round_.organisation.name,
            title=round_.title, reason=reason, signed=s.status == SignerStatus.SIGNED.value,
            reply_to=round_.created_by.email),
            round_id=round_.id, on_sent={"signer": s.id, "kind": "cancellation"})
    return round_


def signed_by_all(round_: Round) -> bool:
    """Whether every place of *round_* is signed: only the PDF work is left."""
    return all(s.status == SignerStatus.SIGNED.value for s in round_.signers)


def remind(session: Session, svc: Services, user: User, round_id: str) -> list[Signer]:
    """E-mail every invited, unsigned signer their link again."""
    round_ = visible_round(session, user, round_id)
    require_manager(user)
    round_ = lock_round(session, round_.id)
    if round_.status != RoundStatus.PENDING.value:
        raise IllegalTransition(f"the round is {round_.status}", code="round_closed")
    reminded = [s for s in round_.signers if s.status == SignerStatus.INVITED.value]
    for s in reminded:
        invite(session, svc, s, actor=f"user:{user.email}", reminder=True)
    return reminded


def evidence_round(session: Session, user: User, round_id: str) -> Round:
    """The round whose evidence *user* may take: auditors and administrators of its
    organisation (it holds personal numbers)."""
    round_ = visible_round(session, user, round_id)
    if user.role not in ("auditor", "admin"):
        raise Forbidden("the evidence is for auditors and administrators")
    return round_


def evidence_download_event(user: User) -> tuple[EventType, str, dict[str, Any]]:
    """The audit event of *user* taking a round's evidence: type, actor, data."""
    return EventType.EVIDENCE_DOWNLOADED, f"user:{user.email}", {"role": user.role}


def record_evidence_download(session: Session, user: User, round_id: str, *,
                             at: datetime, after: str) -> Round | None:
    """Audit that *user* took the round's evidence at *at*, if its trail's head is
    still *after* (what the evidence was made from); None if it has moved on."""
    round_ = lock_round(session, evidence_round(session, user, round_id).id)
    head = session.scalar(select(AuditEvent.hash).where(AuditEvent.round_id == round_.id)
                          .order_by(AuditEvent.seq.desc()).limit(1))
    if (head or GENESIS) != after:
        return None
    append_event(session, round_, *evidence_download_event(user), at=at)
    return round_


def require_manager(user: User) -> None:
    if user.role not in ("secretariat", "admin"):
        raise Forbidden("only the secretariat can change a round")
