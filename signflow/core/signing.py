"""Use cases of a signer's act: the identity-provider order, the recorded
signature with its evidence, and the PDF work that follows as a job.

Like :mod:`signflow.core.rounds`, every use case runs in the caller's
transaction, audits in it, and defers side effects until after commit.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from signflow.core import messages, notice, outbox, webhooks
from signflow.core.audit import EventType, append_event, lock_round, rfc3339
from signflow.core.identity import IdentityCheck, Mismatch, check_for, compare
from signflow.core.links import kept_token, revoke_links
from signflow.core.models import AuditEvent, BankIDEvidence, Round, Signer
from signflow.core.orders import cancel_order_quietly, end_open_orders, provider_for
from signflow.core.people import role_label
from signflow.core.ports import CollectResult, OrderStart, Services, SignRequest, TrailHead
from signflow.core.rounds import (
    SYSTEM,
    forget_personal_numbers,
    invite_current_step,
    invited_personal_number,
    require_can_sign,
    signer_block,
    store_document,
)
from signflow.core.states import RoundStatus, SignerStatus, transition
from signflow.errors import IllegalTransition


def visible_text(signer: Signer) -> str:
    r = signer.round
    if r.language == "en":
        return (f"# Sign minutes\n\n*{r.title}*\n\nRole: {role_label(signer.role, 'en')}\n\n"
                f"Document ID: {r.id}")
    return (f"# Signera protokoll\n\n*{r.title}*\n\nRoll: {role_label(signer.role, 'sv')}\n\n"
            f"Dokument-ID: {r.id}")


def start_signing(
    session: Session, svc: Services, signer: Signer, *, end_user_ip: str, return_url: str = "",
    user_agent: str = "", device_id: str = "",
) -> OrderStart:
    """Start an identity-provider sign order for *signer* over the prepared document.

    The provider is called before the round is locked, so a slow identity
    service never holds up the other signers or the PDF worker.  Starts its
    caller's transaction: when the round ended meanwhile it rolls back,
    cancels the new order and raises.
    """
    require_can_sign(signer)
    provider = provider_for(svc, signer)
    previous = signer.pending_order_ref
    if previous:
        cancel_order_quietly(provider, previous)
    order = provider.start_sign(SignRequest(
        end_user_ip=end_user_ip,
        visible_text=visible_text(signer),
        non_visible_data=bytes.fromhex(signer.round.document_sha256),
        personal_number=invited_personal_number(svc, signer),
        return_url=return_url,
        user_agent=user_agent[:256],
        referring_domain=urlsplit(svc.base_url).hostname or "",
        device_id=device_id,
    ))
    round_ = lock_round(session, signer.round_id)
    try:
        require_can_sign(signer)  # the round may have ended while the provider answered
    except IllegalTransition:
        session.rollback()  # let go of the round before calling the provider again
        cancel_order_quietly(provider, order.order_ref)
        raise
    if signer.pending_order_ref != previous:  # started meanwhile in another tab
        end_open_orders(session, svc, [signer])  # only the newest order counts
    signer.pending_order_ref = order.order_ref
    signer.pending_qr_token = order.qr_start_token
    signer.pending_qr_secret = order.qr_start_secret
    signer.pending_started_at = svc.clock.now()
    append_event(session, round_, EventType.IDENTITY_STARTED, f"signer:{signer.id}",
                 {"signer": signer.id, "provider": round_.provider,
                  "order_ref": order.order_ref})
    return order


def cancel_signing(session: Session, svc: Services, signer: Signer) -> None:
    """The signer left or pressed cancel: end the open order; they may start again."""
    order_ref = signer.pending_order_ref
    if not order_ref:
        return
    cancel_order_quietly(provider_for(svc, signer), order_ref)
    _end_order(session, signer, order_ref, "cancelled")


def _end_order(session: Session, signer: Signer, order_ref: str, hint_code: str) -> None:
    """Record that *order_ref* ended without a signature, unless it is no longer open."""
    round_ = lock_round(session, signer.round_id)
    if signer.pending_order_ref != order_ref:
        return  # replaced, recorded or ended by another request meanwhile
    signer.pending_order_ref = None
    append_event(session, round_, EventType.IDENTITY_FAILED, f"signer:{signer.id}",
                 {"signer": signer.id, "provider": round_.provider, "order_ref": order_ref,
                  "hint_code": hint_code})


def poll_signing(session: Session, svc: Services, signer: Signer) -> CollectResult:
    """Collect *signer*'s open order once; record the signature when complete."""
    order_ref = signer.pending_order_ref
    if not order_ref:
        raise IllegalTransition("no signing in progress", code="no_order")
    result = provider_for(svc, signer).collect(order_ref)
    if result.status == "failed":
        _end_order(session, signer, order_ref, result.hint_code)
    elif result.status == "complete":
        refusal = record_signature(session, svc, signer, result)
        if refusal:
            return CollectResult(order_ref=order_ref, status="failed", hint_code=refusal)
    return result


def record_signature(
    session: Session, svc: Services, signer: Signer, result: CollectResult
) -> str | None:
    """Store the provider's evidence and mark *signer* signed; PDF work follows as a job.

    Returns ``None`` when recorded (or already recorded for this order), or the
    refusal code when the completion cannot count: the provider's signature
    does not cover what we sent, or someone other than the invited person
    identified.  A refusal is audited (without any personal number), leaves
    the link valid for the right person, and a mismatch is told to the
    secretariat.
    """
    round_ = lock_round(session, signer.round_id)  # re-reads what changed while we waited
    if signer.status == SignerStatus.SIGNED.value and signer.transaction_id == result.order_ref:
        return None  # a repeated completion of the same order records one signature
    require_can_sign(signer)
    if signer.pending_order_ref != result.order_ref:
        # the place was given to someone else, or another tab started a newer order,
        # while this one was collected: it signs nothing for whoever holds the place now
        append_event(session, round_, EventType.IDENTITY_FAILED, f"signer:{signer.id}", {
            "signer": signer.id, "provider": round_.provider, "order_ref": result.order_ref,
            "hint_code": "orderSuperseded"})
        return "orderSuperseded"
    check = check_for(round_.identity_policy, signer.personal_number_given)
    if _evidence_refused(signer, result):
        signer.pending_order_ref = None
        append_event(session, round_, EventType.IDENTITY_FAILED, f"signer:{signer.id}", {
            "signer": signer.id, "provider": round_.provider, "order_ref": result.order_ref,
            "hint_code": "evidenceMismatch", "problems": list(result.signature_problems),
        })
        return "evidenceMismatch"
    mismatch = compare(check, invited_name=signer.name,
                       invited_personal_number=invited_personal_number(svc, signer),
                       user=result.user)
    if mismatch:
        _refuse_identity(session, svc, round_, signer, result, mismatch)
        return mismatch.code
    user = result.user
    now = svc.clock.now()
    transition(signer, SignerStatus.SIGNED)
    signer.signed_at = now
    signer.transaction_id = result.order_ref
    signer.method = provider_for(svc, signer).method_name
    signer.verified_name = str(user.get("name") or signer.name)
    signer.identity_check = check.value
    signer.pending_order_ref = None
    session.add(BankIDEvidence(
        signer_id=signer.id, order_ref=result.order_ref, provider=signer.method,
        document_sha256=round_.document_sha256,
        # it names the person by personal number: encrypted at rest, like the invitation's
        completion_json=svc.sealer.seal(json.dumps(dict(result.completion), sort_keys=True),
                                        bound_to=signer.id),
        signature_verified=result.signature_valid, completed_at=now,
    ))
    append_event(session, round_, EventType.SIGNER_SIGNED, f"signer:{signer.id}", {
        "signer": signer.id, "name": signer.verified_name, "order_ref": result.order_ref,
        "method": signer.method, "document_sha256": round_.document_sha256,
        "identity_check": check.value,
    }, at=now)
    webhooks.emit(session, svc, round_, "signer.signed", {
        "signer": {"id": signer.id, "name": signer.verified_name or signer.name,
                   "role": signer.role, "position": signer.position},
        "transaction_id": result.order_ref, "signed_at": rfc3339(now)})
    invite_current_step(session, svc, round_, actor=SYSTEM)  # the next step, if this one is done
    round_id = round_.id
    outbox.enqueue_job(session, svc, "apply_signatures", round_id, round_id=round_id)
    return None


def _evidence_refused(signer: Signer, result: CollectResult) -> bool:
    """The provider's signature does not verify, or covers something we did not send."""
    if result.signature_valid is None:
        return False  # no provider root configured: kept, marked unverified
    sent_visible = base64.b64encode(visible_text(signer).encode("utf-8")).decode()
    sent_hidden = base64.b64encode(bytes.fromhex(signer.round.document_sha256)).decode()
    return (not result.signature_valid or result.signed_visible != sent_visible
            or result.signed_non_visible != sent_hidden)


def _refuse_identity(session: Session, svc: Services, round_: Round, signer: Signer,
                     result: CollectResult, mismatch: Mismatch) -> None:
    """Record that another person identified on *signer*'s link, and tell the secretariat."""
    signer.pending_order_ref = None
    reported = str(result.user.get("name") or "").strip()
    append_event(session, round_, EventType.IDENTITY_MISMATCH, f"signer:{signer.id}", {
        "signer": signer.id, "provider": round_.provider, "order_ref": result.order_ref,
        "check": mismatch.check.value, "reported_name": reported,
    })
    mail = messages.identity_mismatch(
        round_.language, to=round_.created_by.email, title=round_.title, name=signer.name,
        role=role_label(signer.role, round_.language), reported=reported or "?",
        by_personal_number=mismatch.check is IdentityCheck.PERSONAL_NUMBER,
        link=messages.round_page(svc.base_url, round_.id))
    outbox.send_mail(session, svc, mail, round_id=round_.id)


def evidence_for(session: Session, svc: Services, signer: Signer) -> dict[str, Any]:
    """What the provider returned for *signer*, with what it was checked against.

    Holds the personal number (the provider's, and the invited one while the
    round runs): it goes into the PDF only sealed, and out of the service only
    in the auditors' evidence ZIP.
    """
    ev = session.scalar(select(BankIDEvidence).where(BankIDEvidence.signer_id == signer.id))
    if ev is None:
        return {}
    return {
        "provider": ev.provider, "provider_id": signer.round.provider,
        "order_ref": ev.order_ref,
        "document_sha256": ev.document_sha256,
        "completed_at": ev.completed_at.isoformat(),
        "signature_verified": ev.signature_verified,
        "identity_check": signer.identity_check,  # None: signed before identity binding
        "invited_name": signer.name,
        "invited_personal_number": invited_personal_number(svc, signer),
        "completion": json.loads(_opened(svc, signer, ev.completion_json)),
    }


def _opened(svc: Services, signer: Signer, stored: str) -> str:
    """Stored evidence in clear (written in clear before it was encrypted at rest)."""
    return stored if stored.startswith("{") else svc.sealer.open(stored, bound_to=signer.id)


#: How often a job builds its PDF again when another job stored one first.
APPLY_ATTEMPTS = 3


def apply_signatures(session: Session, svc: Services, round_id: str) -> None:
    """Job: write each recorded signature into the PDF; seal once all are in.

    The PDF work (and, with an outside TSA, its HTTP timestamps) happens
    without the round's lock, so signers finishing meanwhile never wait for
    it; the result is stored under the lock only if the document it was built
    on is still the current one, else the job builds again on the new one.

    Idempotent: signatures already applied are skipped, and a sealed round is
    left alone, so a retried or duplicated job changes nothing.  Needs a
    session of its own (as jobs get): it rolls back its reads.
    """
    for _ in range(APPLY_ATTEMPTS):
        round_ = session.get(Round, round_id)
        if round_ is None or round_.status != RoundStatus.PENDING.value:
            return
        base = round_.current_document
        assert base is not None
        todo = [s for s in round_.signers
                if s.status == SignerStatus.SIGNED.value and s.applied_at is None]
        if not todo:
            return
        language, base_id = round_.language, base.id
        sealed_for = round_.organisation.evidence_certs_pem
        plan = [(s.id, s.field_name, signer_block(s, language), evidence_for(session, svc, s))
                for s in todo]
        complete = len(todo) == sum(s.applied_at is None for s in round_.signers)
        trail = trail_head(session, round_id) if complete else None
        data = svc.blobs.get(base.storage_key)
        session.rollback()  # hold no transaction open through the slow part

        steps = []
        for signer_id, field_name, block, evidence in plan:
            data = svc.pdf.sign_field(data, block=block, language=language, evidence=evidence,
                                      sealed_for=sealed_for)
            steps.append((signer_id, field_name, data))
        sealed = svc.pdf.seal(data, trail=trail) if complete else None

        round_ = lock_round(session, round_id)
        if round_.status != RoundStatus.PENDING.value:
            return
        if round_.current_document_id != base_id:
            session.rollback()  # another job stored first: build on its document
            continue
        signers = {s.id: s for s in round_.signers}
        for signer_id, field_name, signed in steps:
            doc = store_document(session, svc, round_, "signed", signed)
            round_.current_document_id = doc.id
            signers[signer_id].applied_at = svc.clock.now()
            append_event(session, round_, EventType.SIGNATURE_APPLIED, SYSTEM,
                         {"signer": signer_id, "field": field_name, "sha256": doc.sha256})
        if sealed is not None:
            assert trail is not None
            _complete(session, svc, round_, sealed, trail)
        session.flush()
        return
    raise RuntimeError(f"round {round_id} kept changing while its signatures were applied")


def trail_head(session: Session, round_id: str) -> TrailHead:
    """The round's audit trail as it stands: its newest event's number and hash."""
    seq, head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.round_id == round_id)
        .order_by(AuditEvent.seq.desc()).limit(1)).one()
    return TrailHead(seq, head)


def _complete(session: Session, svc: Services, round_: Round, sealed: bytes,
              trail: TrailHead) -> None:
    final = store_document(session, svc, round_, "final", sealed)
    round_.current_document_id = final.id
    transition(round_, RoundStatus.COMPLETED)
    round_.completed_at = now = svc.clock.now()
    forget_personal_numbers(round_.signers)
    copies = _signed_copies(svc, round_)  # before the links' sealed tokens are dropped
    revoke_links(round_, now)  # the signers' pages now say it is done
    append_event(session, round_, EventType.ROUND_COMPLETED, SYSTEM,
                 {"sha256": final.sha256, "size": final.size,
                  # the trail up to this event is timestamped inside the final PDF
                  "trail_seq": trail.seq, "trail_head": trail.hash})
    webhooks.emit(session, svc, round_, "round.completed", {
        "sha256": final.sha256, "completed_at": rfc3339(now),
        "document": f"{svc.base_url}/api/v1/rounds/{round_.id}/document"})
    if notice.wants_notice(svc, round_):
        notice.prepare_notice(session, svc, round_)
    told = round_.notify.split()  # as the workflow said when the round started
    mails = [messages.completed(round_.language, to=round_.created_by.email,
                                title=round_.title,
                                link=messages.round_page(svc.base_url, round_.id))] * (
        "secretariat" in told) + copies * ("signers" in told)
    # the PDF itself too, unless it is too big for people's mailboxes (the link serves it)
    attach = ((final.storage_key, signed_file_name(round_.title, round_.language))
              if final.size <= ATTACH_MAX_BYTES else None)
    for mail in mails:
        outbox.send_mail(session, svc, mail, round_id=round_.id, attach=attach)


#: The largest signed PDF sent as an attachment with the completion mails.
ATTACH_MAX_BYTES = 8 * 1024 * 1024


def signed_file_name(title: str, language: str = "sv") -> str:
    """The signed protocol's file name wherever it is handed out (the mail's
    attachment, the secretariat's and the signer's downloads): the title's
    letters and digits, in the round's language, so all three are one file."""
    words = re.findall(r"[0-9A-Za-zÅÄÖåäöÉéÜü]+", title)
    if language == "sv":
        return ("-".join(words)[:80] or "protokoll") + "-signerat.pdf"
    return ("-".join(words)[:80] or "minutes") + "-signed.pdf"


def _signed_copies(svc: Services, round_: Round) -> list[messages.Mail]:
    """Each signer's mail with the way to the signed protocol: their own link,
    which after completion offers the signed PDF (links.may_fetch_signed_copy)."""
    mails = []
    # the verify page speaks Swedish unless asked: an English mail asks for English
    verify = f"{svc.base_url}/verify" + ("?lang=en" if round_.language == "en" else "")
    for s in round_.signers:
        token = kept_token(svc, s)
        if token:  # links from before tokens were kept sealed cannot be resent
            mails.append(messages.signed_copy(
                round_.language, to=s.email, name=s.name, title=round_.title,
                link=f"{svc.base_url}/sign/{token}/signed.pdf", verify=verify,
                reply_to=round_.created_by.email))
    return mails
