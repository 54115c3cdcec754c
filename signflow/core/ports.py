"""Small protocols the domain talks through; adapters implement them.

Each has a real and a development implementation, chosen in one place
(:func:`signflow.adapters.build_services`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SignRequest:
    """What we ask an identity provider to have the person sign."""

    #: IP address of the signer's browser, as the provider requires.
    end_user_ip: str
    #: Markdown shown in the BankID app (document title, role, document ID).
    visible_text: str
    #: Bytes signed but not shown: the SHA-256 of the prepared document.
    non_visible_data: bytes
    #: Personnummer the person must have; empty: anyone.
    personal_number: str = ""
    #: Where the app should send the person back (same-device flow).
    return_url: str = ""
    #: The browser's User-Agent, the site's domain and a stable device id
    #: (BankID's ``web`` parameters, which help it spot fraud).
    user_agent: str = ""
    referring_domain: str = ""
    device_id: str = ""


@dataclass(frozen=True)
class OrderStart:
    """A started order, as the provider answered."""

    order_ref: str
    auto_start_token: str = ""
    qr_start_token: str = ""
    #: Secret for the animated QR code; stays on the server.
    qr_start_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class CollectResult:
    """One poll of an order."""

    order_ref: str
    #: ``pending``, ``failed`` or ``complete``.
    status: str
    hint_code: str = ""
    #: On ``complete``: the provider's completion data, verbatim.
    completion: Mapping[str, Any] = field(default_factory=dict)
    #: On ``complete``: did the provider's own signature verify against its
    #: configured root? ``None`` when no root is configured (kept, unverified).
    signature_valid: bool | None = None
    #: What the provider's signature says was shown to the person (as sent, base64).
    signed_visible: str = ""
    #: What the provider's signature says was signed unseen (as sent, base64).
    signed_non_visible: str = ""
    #: Findings when the provider's signature did not verify.
    signature_problems: tuple[str, ...] = ()

    @property
    def user(self) -> Mapping[str, Any]:
        return self.completion.get("user", {})


class IdentityProvider(Protocol):
    """An e-identification provider that can sign (BankID RP API v6, …)."""

    #: Shown on the signature page as Identifieringsmetod.
    method_name: str

    def start_sign(self, request: SignRequest) -> OrderStart: ...

    def collect(self, order_ref: str) -> CollectResult: ...

    def cancel(self, order_ref: str) -> None: ...

    def qr_payload(self, qr_start_token: str, qr_start_secret: str, seconds: int) -> str:
        """What the QR code shows *seconds* after the order started."""
        ...

    def app_link(self, auto_start_token: str, *, mobile: bool = True) -> str:
        """The link that opens the provider's app on this device for the order
        (the same-device flow); "" when the provider has no app to open."""
        ...


@runtime_checkable
class Authenticator(Protocol):
    """A provider that can also identify a person without a signature (RP ``auth``):
    staff sign-in.  Optional: a provider without it is for signing only."""

    def start_auth(self, end_user_ip: str, personal_number: str = "",
                   visible_text: str = "", *, return_url: str = "") -> OrderStart:
        """Start an identification; collect, cancel and the QR code work as for signing."""
        ...


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    #: The text; the mailers add an HTML part made from it.
    body: str
    attachments: tuple[Attachment, ...] = ()
    #: Where an answer goes (the secretariat, not the service's own address).
    reply_to: str = ""
    #: ``sv`` or ``en``: the mail's Content-Language and its HTML part's lang.
    language: str = ""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class WebhookSender(Protocol):
    """POSTs a webhook's body; returns the HTTP status (raises if nothing answered)."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class BlobStore(Protocol):
    """Immutable, content-addressed storage of documents.

    A blob is durable once :meth:`put` returns, before the transaction that
    refers to it commits; one whose transaction never commits is an orphan
    until :func:`signflow.core.blob_gc.sweep_orphans` removes it.
    """

    def put(self, data: bytes) -> str:
        """Store *data* and return its key (SHA-256, hex).  Putting bytes that are
        already stored is harmless, and counts as writing them now."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under *key*; :class:`~signflow.errors.NotFound` if none."""
        ...

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        """Keys of the blobs last written before *cutoff*: the orphan sweep's candidates."""
        ...

    def delete(self, key: str, *, written_before: datetime) -> bool:
        """Remove *key* if it was last written before *written_before*; say whether it was.

        A put since then keeps the blob: the commit that refers to it may be under way.
        """
        ...


class JobQueue(Protocol):
    """Runs named jobs from :mod:`signflow.jobs`, after the current commit."""

    def enqueue(self, job: str, *args: str) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class FieldSealer(Protocol):
    """Encrypts personal numbers at rest, each bound to the row that holds it."""

    def seal(self, value: str, *, bound_to: str) -> str: ...

    def open(self, token: str, *, bound_to: str) -> str: ...

    def lookup_hash(self, value: str) -> str:
        """A keyed hash (64 hex digits) to look *value* up by without storing it."""
        ...


@dataclass(frozen=True)
class SignerBlock:
    """One block of the signature page, and what fills its field when signed."""

    position: int
    field_name: str
    role_label: str
    name: str = ""
    organisation: str = ""
    title: str = ""
    method: str = ""
    signed_at: datetime | None = None
    transaction_id: str = ""
    #: False when the round's policy compared nothing with the invitation
    #: (said on the signature block).
    identity_checked: bool = True


@dataclass(frozen=True)
class TrailHead:
    """The head of a round's audit trail: the hash of its event *seq*."""

    seq: int
    hash: str


@dataclass(frozen=True)
class PreparedDocument:
    data: bytes
    page_count: int


class PdfService(Protocol):
    """The PDF work, implemented with pyHanko in :mod:`signflow.pdf`."""

    def prepare(
        self, data: bytes, *, round_id: str, title: str, language: str, blocks: list[SignerBlock]
    ) -> PreparedDocument:
        """Add the signature page, fields and footer; certify with the seal."""
        ...

    def sign_field(
        self, data: bytes, *, block: SignerBlock, language: str, evidence: Mapping[str, Any],
        sealed_for: str = "",
    ) -> bytes:
        """Fill one signer's field with a PAdES signature in that signer's name.

        The provider's evidence is sealed to the service's evidence
        certificates and to those in *sealed_for* (PEM: the organisation's).
        """
        ...

    def seal(self, data: bytes, *, trail: TrailHead | None = None) -> bytes:
        """Add validation data and a document timestamp (PAdES B-LTA).

        With *trail*, the head is timestamped and written into the document
        first, so the document timestamp covers it (:mod:`signflow.pdf.trail_mark`).
        """
        ...

    def renew(self, data: bytes) -> bytes:
        """Add validation data for the last timestamp and a new document timestamp."""
        ...

    def seal_report(self, data: bytes, language: str = "sv", *, kind: str = "report") -> bytes:
        """Certify a document the service issues (*kind*: ``report``, ``event_log`` or
        ``notice``) with the service's seal (no change after it), timestamped, with
        its validation data (PAdES B-LTA); the seal's reason names the kind."""
        ...


class Clockwork:
    """The real clock."""

    def now(self) -> datetime:
        from signflow.core.models import utcnow

        return utcnow()


@dataclass
class Services:
    """The adapters a use case may call, built once per process."""

    blobs: BlobStore
    pdf: PdfService
    mailer: Mailer
    jobs: JobQueue
    webhooks: WebhookSender
    #: Identity providers by name (a round uses its workflow's provider).
    providers: Mapping[str, IdentityProvider]
    #: Workflow templates by name.
    workflows: Mapping[str, Any]
    clock: Clock
    base_url: str
    #: Encrypts the personal numbers the secretariat enters.
    sealer: FieldSealer
    invitation_days: int = 30
