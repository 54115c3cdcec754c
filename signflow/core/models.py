"""Persistent objects of the domain (SQLAlchemy 2, typed mappings)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: PEM of the organisation's own evidence certificates (e.g. its archive's):
    #: the identity evidence in its signed PDFs is sealed to these as well as
    #: to the service-wide ones.  Empty: the service-wide ones only.
    evidence_certs_pem: Mapped[str] = mapped_column(Text, default="", server_default="")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    #: ``secretariat``, ``auditor`` or ``admin``.
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Keyed hash (HMAC-SHA256) of the personal number staff sign in with; never the number.
    personal_number_hash: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True)
    #: Raised at sign-out: every session cookie issued before then stops working.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    organisation: Mapped[Organisation] = relationship()


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: What the user called it on the tokens page ("Ärendesystemet").
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship()


class Document(Base):
    """One stored version of a round's PDF (original, prepared, signed, final)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"), index=True)
    #: ``original``, ``prepared``, ``signed`` or ``final``.
    kind: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int]
    #: Key in the blob store.
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Round(Base):
    """A signing round (signeringsomgång) for one protocol."""

    __tablename__ = "rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(300))
    workflow: Mapped[str] = mapped_column(String(100), default="standard")
    #: Identity provider the signers use (from the workflow): ``bankid``, ``freja``…
    provider: Mapped[str] = mapped_column(String(50), default="bankid",
                                          server_default="bankid")
    #: ``sv`` or ``en``: the signature page, e-mails and signing page.
    language: Mapped[str] = mapped_column(String(2), default="sv")
    #: ``parallel``, ``sequential`` or ``steps``: who is invited when is
    #: :attr:`Signer.step` (the lowest step with an unsigned signer signs now).
    order: Mapped[str] = mapped_column(String(12), default="parallel")
    #: The workflow's reminder plan, copied at the start so that editing the file
    #: never changes a running round: ``{"first_after_days", "every_days",
    #: "at_most"}`` as JSON; None: no scheduled reminders.
    reminder_plan: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: What a decline does: ``end`` the round, or ``replace`` (the secretariat
    #: names another signer and the round goes on).
    on_decline: Mapped[str] = mapped_column(String(10), default="end", server_default="end")
    #: Who gets the signed protocol (the workflow's ``notify``, copied at the start):
    #: ``secretariat`` and/or ``signers``, space-separated.
    notify: Mapped[str] = mapped_column(String(50), default="secretariat signers",
                                        server_default="secretariat signers")
    #: Whether completion prepares the notice of justering (the workflow's
    #: ``notice``, copied at the start); None for rounds started before it was
    #: copied, whose workflow file still decides.
    notice: Mapped[bool | None] = mapped_column(nullable=True)
    #: How signers are bound to their invitations: an
    #: :class:`~signflow.core.identity.IdentityPolicy` value, from the workflow.
    identity_policy: Mapped[str] = mapped_column(String(20), default="auto",
                                                 server_default="auto")
    message: Mapped[str] = mapped_column(Text, default="")
    #: A :class:`~signflow.core.states.RoundStatus` value.
    status: Mapped[str] = mapped_column(String(12), default="pending")
    #: SHA-256 of the prepared (certified) PDF: what every signer approves.
    document_sha256: Mapped[str] = mapped_column(String(64), default="")
    current_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", use_alter=True, name="fk_rounds_current_document"),
        nullable=True,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The body whose meeting the protocol records (*nämnd*, *styrelse*), e.g.
    #: "Kommunstyrelsen"; the notice of justering names it.
    body: Mapped[str] = mapped_column(String(200), default="", server_default="")
    #: The day of the meeting (*sammanträdesdatum*).
    meeting_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: Where the protocol is kept (*förvaringsplats*), e.g. "Kommunkansliet, Stadshuset".
    kept_at: Mapped[str] = mapped_column(String(300), default="", server_default="")

    organisation: Mapped[Organisation] = relationship()
    created_by: Mapped[User] = relationship()
    signers: Mapped[list[Signer]] = relationship(
        back_populates="round", order_by="Signer.position", cascade="all, delete-orphan"
    )
    current_document: Mapped[Document | None] = relationship(
        foreign_keys=[current_document_id], post_update=True
    )


class Signer(Base):
    """A required signer (undertecknare) of a round."""

    __tablename__ = "signers"
    __table_args__ = (UniqueConstraint("round_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"), index=True)
    #: 1-based; "Underskrift N" on the signature page.
    position: Mapped[int]
    #: 1-based step of the signing order: signers of one step sign side by side,
    #: the next step is invited once they all have.
    step: Mapped[int] = mapped_column(default=1, server_default="1")
    #: Scheduled reminders sent so far (the workflow's plan bounds them).
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(50))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    #: Personnummer the identity must match, encrypted at rest (see
    #: :class:`~signflow.core.ports.FieldSealer`); None when none was given,
    #: and again once the signer is done or the round has ended.
    personal_number_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Whether a personnummer was given: it stays known after the value is erased.
    personal_number_given: Mapped[bool] = mapped_column(default=False, server_default="0")
    #: What the signature was checked against: an
    #: :class:`~signflow.core.identity.IdentityCheck` value, once signed.
    identity_check: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: A :class:`~signflow.core.states.SignerStatus` value.
    status: Mapped[str] = mapped_column(String(12), default="waiting")
    #: SHA-256 of the signer's link token (the token itself is never stored).
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The link token itself, sealed (AES-GCM, bound to this signer), so that a
    #: reminder can resend the link the signer already has instead of killing it.
    link_token_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The BankID ``orderRef`` of the completed signature (Transaktions-ID).
    transaction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Identification method shown on the signature page.
    method: Mapped[str | None] = mapped_column(String(50), nullable=True)
    #: Name as BankID reported it.
    verified_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: The open BankID order, while one is running.
    pending_order_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The open order's QR start token and secret (the secret never leaves the server).
    pending_qr_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pending_qr_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pending_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    #: When the PAdES signature went into the PDF (after the BankID act).
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    field_name: Mapped[str] = mapped_column(String(50))

    round: Mapped[Round] = relationship(back_populates="signers")


class BankIDEvidence(Base):
    """What BankID returned when a signer completed: kept verbatim."""

    __tablename__ = "bankid_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    signer_id: Mapped[str] = mapped_column(ForeignKey("signers.id"), unique=True)
    order_ref: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(50), default="bankid",
                                          server_default="bankid")
    #: SHA-256 of the prepared document the signer approved.
    document_sha256: Mapped[str] = mapped_column(String(64))
    #: The ``completionData`` object as JSON, encrypted at rest (it names the
    #: person by personal number; see :class:`~signflow.core.ports.FieldSealer`).
    completion_json: Mapped[str] = mapped_column(Text)
    #: Provider's XML signature checked against its root: True/False; None = no root set.
    signature_verified: Mapped[bool | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One link of a round's hash-chained audit trail. Never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("round_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(50))
    #: RFC 3339 UTC, stored as the exact string that was hashed.
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(400))
    #: JSON object, stored as the exact text that was hashed.
    data_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Blob(Base):
    """A stored document's bytes, when documents live in the database
    (``SIGNFLOW_BLOB_STORE=database``): content addressed, never changed."""

    __tablename__ = "blobs"

    #: SHA-256 of the data, hex: the key :class:`~signflow.core.models.Document` stores.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    #: When the bytes were last put (a put of stored bytes moves it on): the
    #: orphan sweep's grace period counts from here.
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RetiredLink(Base):
    """The link of a signer the secretariat replaced: kept (its hash only) so that
    following it says what happened and whom to ask, never to read or act."""

    __tablename__ = "retired_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"))
    #: The place's role, for the page ("Justerare").
    role: Mapped[str] = mapped_column(String(50))
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    round: Mapped[Round] = relationship()


class OutboxMessage(Base):
    """Work the database promised (a mail, a job), recorded in the transaction that
    promised it and delivered after commit by the dispatcher until it succeeds
    (:mod:`signflow.core.outbox`)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    #: Random, 32 hex: the sealed payload is bound to ``outbox:<ref>``.
    ref: Mapped[str] = mapped_column(String(32), default=new_id, unique=True)
    #: ``mail`` or ``job``.
    kind: Mapped[str] = mapped_column(String(10))
    #: The JSON payload, sealed (a mail carries a signing link: never in clear).
    payload_sealed: Mapped[str] = mapped_column(Text)
    round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Failed deliveries so far.
    attempts: Mapped[int] = mapped_column(default=0)
    #: Not to be tried before this moment (backoff after a failure).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: When it was delivered; None while it waits.
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The last failure: exception class and a short, redacted message.
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


class SimulatorOrder(Base):
    """An order of a development stand-in (the BankID simulator, the Freja fake),
    kept here so that every process of a deployment sees it
    (:mod:`signflow.adapters.sim_store`)."""

    __tablename__ = "simulator_orders"

    #: The stand-in: ``bankid`` or ``freja``.
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    #: BankID's ``orderRef``, Freja's ``signRef``.
    order_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The order's fields as JSON, sealed (it holds personal numbers).
    state: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the order may be forgotten (finished or timed out, and no longer
    #: collectable): the stand-in deletes it after this.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdempotencyKey(Base):
    """A round-creating request's ``Idempotency-Key``: the same key again within a
    day returns the same round instead of making another."""

    __tablename__ = "idempotency_keys"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"),
                                                 primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: SHA-256 of the request (the round's JSON and the document): a key sent
    #: again with another request is refused, not silently answered.
    fingerprint: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Webhook(Base):
    """Where an organisation's own systems hear about its rounds
    (:mod:`signflow.core.webhooks`)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: The HMAC key, sealed (bound to the webhook's id); shown once, when made.
    secret_sealed: Mapped[str] = mapped_column(Text)
    #: The event types it wants, space-separated.
    events: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook; its progress is its outbox row's (by ``outbox_ref``)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(50))
    round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id"), nullable=True)
    outbox_ref: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The HTTP status of the last answer, if any.
    last_status: Mapped[int | None] = mapped_column(nullable=True)


class Notice(Base):
    """The notice of justering (*anslag*, KL 8 kap. 12 §) of a completed
    municipal protocol: its dates and whether it is on the notice board yet
    (:mod:`signflow.core.notice`)."""

    __tablename__ = "notices"

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id"), primary_key=True)
    #: A :class:`~signflow.core.states.NoticeStatus` value.
    status: Mapped[str] = mapped_column(String(12))
    #: The day the protocol was justerat: the round's completion, in Sweden.
    justering_date: Mapped[date] = mapped_column(Date)
    #: The day the notice goes up; the appeal period runs from it.
    posting_date: Mapped[date] = mapped_column(Date, index=True)
    #: The last day of the appeal period; the notice stays up through it.
    takedown_date: Mapped[date] = mapped_column(Date)
    prepared_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    round: Mapped[Round] = relationship()
