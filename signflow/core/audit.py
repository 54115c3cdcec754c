"""The append-only, hash-chained audit trail of a round.

Each event's ``hash`` is the SHA-256 of its canonical JSON without the
``hash`` key (keys sorted, separators ``,`` and ``:``, UTF-8), and its
``prev_hash`` is the previous event's ``hash`` (64 zeros for the first), as
CONTRACT.md specifies, so anyone can recompute the chain from the API output.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, select, update
from sqlalchemy.orm import Session

from signflow.core.models import AuditEvent, Round
from signflow.db import held, hold, holds
from signflow.errors import NotFound

GENESIS = "0" * 64


class EventType(enum.StrEnum):
    """The closed set of audit event types; a type is never re-meant."""

    #: Round created from an upload; data: title, signers, original hash.
    ROUND_CREATED = "round.created"
    #: Signature page added and certified by the seal; data: prepared hash.
    DOCUMENT_PREPARED = "document.prepared"
    #: A signer was invited: their link is to be e-mailed (``mail.sent`` says when it was).
    SIGNER_INVITED = "signer.invited"
    #: A reminder was e-mailed.
    SIGNER_REMINDED = "signer.reminded"
    #: An invitation or reminder was handed to the mail server (after the
    #: decision above, once delivery succeeded); data: signer, kind
    #: (``invitation``/``reminder``); never the body or the link.
    MAIL_SENT = "mail.sent"
    #: The secretariat put another person in an unsigned signer's place; the
    #: old link stopped working.  data: signer, old_name, old_email, name, email
    #: (never a personal number).
    SIGNER_REPLACED = "signer.replaced"
    #: The secretariat moved the deadline later; data: from, to (ISO 8601).
    DEADLINE_EXTENDED = "round.deadline_extended"
    #: An identity-provider order was started; data: signer, provider, order_ref.
    IDENTITY_STARTED = "identity.started"
    #: An identity-provider order failed or was cancelled, or its completion
    #: could not count; data: signer, provider, order_ref, hint_code.
    IDENTITY_FAILED = "identity.failed"
    #: Someone other than the invited person completed the identification;
    #: nothing was signed and the link stays valid.  data: signer, order_ref,
    #: check (``personal_number``/``name``), reported_name; never a personal number.
    IDENTITY_MISMATCH = "signer.identity_mismatch"
    #: The evidence ZIP (the provider's evidence in clear) was downloaded; data: by whom.
    EVIDENCE_DOWNLOADED = "evidence.downloaded"
    #: Before 2026-12 (BankID only): what ``identity.started`` and
    #: ``identity.failed`` record now.  Kept so old chains stay readable.
    BANKID_STARTED = "bankid.started"
    BANKID_FAILED = "bankid.failed"
    #: BankID completed; the evidence is stored; data: orderRef, time, name.
    SIGNER_SIGNED = "signer.signed"
    #: The signer's PAdES signature was written into the PDF.
    SIGNATURE_APPLIED = "signature.applied"
    #: A signer declined; data: reason.
    SIGNER_DECLINED = "signer.declined"
    #: Validation data and document timestamp added; data: final hash.
    ROUND_COMPLETED = "round.completed"
    #: The archived document got a new document timestamp (LTA renewal).
    DOCUMENT_RENEWED = "document.renewed"
    ROUND_CANCELLED = "round.cancelled"
    ROUND_EXPIRED = "round.expired"
    #: The notice of justering (anslag) got its dates at completion; data:
    #: justering_date, posting_date, takedown_date (YYYY-MM-DD).
    NOTICE_PREPARED = "notice.prepared"
    #: The secretariat moved the notice's posting date; data: from, to,
    #: takedown_date.
    NOTICE_ADJUSTED = "notice.adjusted"
    #: The notice went to the organisation's notice board (``notice.ready``);
    #: data: posting_date, takedown_date.
    NOTICE_PUBLISHED = "notice.published"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_hash(event: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of *event* without its ``hash`` key, canonically serialized."""
    body = {k: v for k, v in event.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_dict(event: AuditEvent) -> dict[str, Any]:
    """The event as the API returns it (and as its hash covers)."""
    return {
        "seq": event.seq,
        "type": event.type,
        "at": event.at,
        "actor": event.actor,
        "data": json.loads(event.data_json),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def lock_round(session: Session, round_id: str) -> Round:
    """Load *round_id* row-locked until the transaction ends.

    Every change to a round, its signers or its chain starts here, before it
    writes anything: one lock order (round, then its rows) keeps two writers
    from deadlocking, and the chain's next sequence number from racing.

    Whatever the session read before the lock may be stale by the time it is
    granted (the round cancelled, completed or expired meanwhile), so
    everything loaded is expired and read again under the lock.

    SQLite has no row locks: there an empty write takes the database's single
    writer lock first, which serializes writers just as well.
    """
    session.flush()
    session.expire_all()
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Round).where(false()).values(id=Round.id)
                        .execution_options(synchronize_session=False))
    stmt = select(Round).where(Round.id == round_id).with_for_update()
    round_ = session.execute(stmt).scalar_one_or_none()
    if round_ is None:
        raise NotFound("no such round")
    hold(session, _lock_key(round_.id))
    return round_


def claim_new_round(session: Session, round_: Round) -> None:
    """A round inserted in this transaction is ours alone until it commits."""
    hold(session, _lock_key(round_.id))


def _lock_key(round_id: str) -> str:
    return f"round:{round_id}"


def append_event(
    session: Session,
    round_: Round,
    type_: EventType,
    actor: str,
    data: Mapping[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> AuditEvent:
    """Append an event to *round_*'s chain in the caller's transaction.

    The caller must hold the round (:func:`lock_round`), so the sequence
    number and previous hash cannot race; appending without it is a
    programming error and raises.  The unique ``(round_id, seq)`` constraint
    is the backstop.
    """
    if not holds(session, _lock_key(round_.id)):
        raise RuntimeError(f"audit event {type_} appended without holding round {round_.id}")
    # the chain's head is read once per hold: nobody else appends while we hold it
    notes = held(session, _lock_key(round_.id))
    head = notes.get("head")
    if head is None:
        head = session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.round_id == round_.id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first() or (0, GENESIS)
    seq, prev = head[0] + 1, head[1]
    body, data_json = _event_body(seq, prev, type_, actor, data, at or datetime.now(UTC))
    event = AuditEvent(
        round_id=round_.id,
        seq=seq,
        type=body["type"],
        at=body["at"],
        actor=actor,
        data_json=data_json,
        prev_hash=prev,
        hash=canonical_hash(body),
    )
    session.add(event)
    session.flush()
    notes["head"] = (seq, event.hash)
    return event


def _event_body(seq: int, prev: str, type_: EventType, actor: str,
                data: Mapping[str, Any] | None, at: datetime) -> tuple[dict[str, Any], str]:
    """An event as it is hashed (without ``hash``), and its data as stored."""
    body = {"seq": seq, "type": EventType(type_).value, "at": rfc3339(at), "actor": actor,
            "data": dict(data or {}), "prev_hash": prev}
    data_json = json.dumps(body["data"], sort_keys=True, ensure_ascii=False)
    # Hash what will be read back, so the stored text and the hash agree.
    body["data"] = json.loads(data_json)
    return body, data_json


def next_event(events: Sequence[Mapping[str, Any]], type_: EventType, actor: str,
               data: Mapping[str, Any] | None, at: datetime) -> dict[str, Any]:
    """The event :func:`append_event` will append after *events* (as the API gives
    them) with the same arguments, hash and all: for a document that must show the
    event that records it, made before the round is held."""
    seq, prev = (events[-1]["seq"] + 1, events[-1]["hash"]) if events else (1, GENESIS)
    body, _ = _event_body(seq, prev, type_, actor, data, at)
    return body | {"hash": canonical_hash(body)}


@dataclass(frozen=True)
class ChainReport:
    """Outcome of re-checking a chain."""

    #: True when every hash and link checks out.
    intact: bool
    #: Number of events checked.
    count: int
    #: Hash of the last event (the chain's head), or the genesis value.
    head: str
    #: Human-readable findings, one per broken link.
    problems: tuple[str, ...]


def verify_chain(events: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Recompute every hash and link of *events* (as the API returns them)."""
    problems: list[str] = []
    prev = GENESIS
    count = 0
    expected_seq = 1
    for event in events:
        count += 1
        seq = event.get("seq")
        if seq != expected_seq:
            problems.append(f"event {seq}: expected sequence number {expected_seq}")
        if event.get("prev_hash") != prev:
            problems.append(f"event {seq}: prev_hash does not match the previous event's hash")
        recomputed = canonical_hash(event)
        if event.get("hash") != recomputed:
            problems.append(f"event {seq}: hash does not match its content")
        prev = str(event.get("hash"))
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    return ChainReport(intact=not problems, count=count, head=prev, problems=tuple(problems))


def commits_to(events: Sequence[Mapping[str, Any]], seq: int, head: str) -> bool:
    """Whether *events* (a round's trail, as the API returns it) hold, intact from
    the first event, an event *seq* whose hash is *head*: what a document that
    names that head (:mod:`signflow.pdf.trail_mark`) commits to."""
    if not 1 <= seq <= len(events):
        return False
    upto = list(events[:seq])
    return verify_chain(upto).intact and upto[-1].get("hash") == head


def round_events(session: Session, round_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.round_id == round_id).order_by(AuditEvent.seq)
    )
    return [event_dict(e) for e in rows]
