"""Judging the identity provider's evidence inside an approval signature.

The public summary is checked against the file (the prepared revision's
hash, the certificate's transaction ID); the sealed evidence against the
digests the signature covers, and, where the verifier holds an evidence key,
opened and checked through: the provider's own signature over our document
hash, and that the person is the one invited.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signflow.pdf.verify import _FileContext as FileContext


@dataclass(frozen=True)
class EvidenceReport:
    """The identity provider's evidence inside an approval signature, as checked."""

    provider: str | None
    order_ref: str | None
    completed_at: str | None
    #: Hash of the prepared document the person approved, per the evidence.
    document_sha256: str | None
    #: That hash is the hash of this file's prepared (certified) revision.
    matches_document: bool
    #: The provider's own signature verifies and covers that hash; None when it
    #: could not be checked here (sealed and no key given, or no provider root).
    provider_signature_valid: bool | None
    problems: tuple[str, ...] = ()
    #: What the service compared the identity with: ``personal_number``,
    #: ``name`` or ``none`` (anyone holding the link could sign); None in
    #: documents from before identity binding.
    identity_check: str | None = None
    #: The provider's evidence is sealed (encrypted to evidence certificates).
    sealed: bool = False
    #: The sealed evidence is present and is the one the signature covers.
    sealed_intact: bool | None = None
    #: The sealed evidence was opened with a key given to the verifier.
    opened: bool = False
    #: Who can open the sealed evidence (issuer and serial of each certificate).
    recipients: tuple[str, ...] = ()
    #: The person as the evidence names them (never a personal number).
    name: str | None = None


def judge_evidence(sig, context: FileContext, tx_id: str | None) -> EvidenceReport | None:
    """Check the provider evidence in *sig*: this file, its seal, the provider's signature."""
    from signflow.pdf.evidence import read_evidence, read_sealed

    ev = read_evidence(sig.signer_info)
    if ev is None:
        return None
    if ev.get("_unreadable"):
        return EvidenceReport(None, None, None, None, False, False,
                              ("the identity evidence in the signature cannot be read",))
    problems: list[str] = []
    claimed = ev.get("documentSha256")
    matches = claimed is not None and claimed == context.prepared_sha256()
    if not matches:
        problems.append("the identity evidence is for another document")
    if tx_id is not None and ev.get("orderRef") != tx_id:
        problems.append("the identity evidence names another transaction than the certificate")
    seal = ev.get("sealed") if isinstance(ev.get("sealed"), dict) else None
    opened = _SealedEvidence(None, None, (), False)
    if seal is not None:
        opened = _open_sealed(read_sealed(sig.signer_info), seal, ev, context, problems)
    # format 1 (before sealing) carried the provider's evidence in the clear
    completion = opened.completion if seal is not None else ev
    valid = _provider_signature(ev, completion, claimed, context, problems)
    user = _dict(ev.get("user"))
    return EvidenceReport(
        provider=ev.get("provider"), order_ref=ev.get("orderRef"),
        completed_at=ev.get("completedAt"), document_sha256=claimed,
        matches_document=matches, provider_signature_valid=valid, problems=tuple(problems),
        identity_check=ev.get("identityCheck"), sealed=seal is not None,
        sealed_intact=opened.intact, opened=opened.opened,
        recipients=opened.recipients, name=user.get("name"))


@dataclass(frozen=True)
class _SealedEvidence:
    #: The envelope is there and matches the digest the signature covers.
    intact: bool | None
    #: The provider's completion data, when a key opened the envelope.
    completion: dict | None
    recipients: tuple[str, ...]
    opened: bool


def _open_sealed(raw: bytes | None, seal: dict, public: dict, context: FileContext,
                 problems: list[str]) -> _SealedEvidence:
    """Check the sealed evidence against the signed summary; open it where a key fits."""
    from signflow.pdf import envelope
    from signflow.pdf.evidence import open_evidence

    if raw is None or hashlib.sha256(raw).hexdigest() != seal.get("envelopeSha256"):
        problems.append("the sealed identity evidence is missing or not the one the "
                        "signature covers")
        return _SealedEvidence(False, None, (), False)
    try:
        recipients = envelope.inspect(raw).recipients
        keys = context.private_evidence_keys
        doc = open_evidence(raw, keys) if keys else None
    except envelope.EnvelopeError as exc:
        problems.append(f"the sealed identity evidence cannot be opened: {exc}")
        return _SealedEvidence(False, None, (), False)
    if doc is None:
        doc = _from_evidence_zip(public, context)
        if doc is None:
            return _SealedEvidence(True, None, recipients, False)
    elif doc.get("_sha256") != seal.get("sha256") or any(
            doc.get(k) != public.get(k) for k in ("orderRef", "documentSha256", "providerId")):
        problems.append("the sealed identity evidence does not match its signed summary")
        return _SealedEvidence(False, None, recipients, True)
    if any(doc.get(k) != public.get(k) for k in ("orderRef", "documentSha256")):
        problems.append("the evidence from the ZIP is for another act than this signature's")
        return _SealedEvidence(True, None, recipients, False)
    completion = _dict(doc.get("completion"))
    _check_binding(doc, completion, problems)
    return _SealedEvidence(True, completion, recipients, True)


def _from_evidence_zip(public: dict, context: FileContext) -> dict | None:
    """The evidence for this signature's act from the auditors' evidence ZIP, shaped as the
    sealed document is; None when the ZIP (if any) has none for it."""
    entry = context.evidence_completions.get(str(public.get("orderRef") or ""))
    if not isinstance(entry, dict):
        return None
    return {"orderRef": entry.get("order_ref"), "documentSha256": entry.get("document_sha256"),
            "identityCheck": entry.get("identity_check"),
            "invitedName": entry.get("invited_name"),
            "invitedPersonalNumber": entry.get("invited_personal_number"),
            "completion": entry.get("completion")}


def _check_binding(doc: dict, completion: dict, problems: list[str]) -> None:
    """The identity in the opened evidence is the invited person, as the summary claims."""
    from signflow.core.identity import IdentityCheck, compare

    user = _dict(completion.get("user"))
    try:
        check = IdentityCheck(str(doc.get("identityCheck")))
    except ValueError:
        return  # evidence from before identity binding claims nothing
    if check is IdentityCheck.PERSONAL_NUMBER and not doc.get("invitedPersonalNumber"):
        return  # erased when the round ended (the evidence ZIP): the signed claim stands
    mismatch = compare(check, invited_name=str(doc.get("invitedName") or ""),
                       invited_personal_number=str(doc.get("invitedPersonalNumber") or ""),
                       user=user)
    if mismatch:
        problems.append("the person in the sealed evidence is not the invited signer")


def _provider_signature(public: dict, completion: dict | None, claimed: str | None,
                        context: FileContext, problems: list[str]) -> bool | None:
    """The provider's own signature over our document hash, where it can be checked here."""
    from signflow.adapters.evidence_checks import CHECKS

    check = CHECKS.get(str(public.get("providerId") or "bankid"))
    if not (completion and context.provider_roots and check is not None):
        return None
    found = check(completion, context.provider_roots, str(public.get("orderRef") or ""),
                  _parse_time(public.get("completedAt")))
    if not found.anchored:
        return None  # the provider's root is not known here: unchecked, like no root at all
    expected = base64.b64encode(bytes.fromhex(claimed)).decode() if claimed else None
    user = _dict(completion.get("user"))
    same_person = not (found.personal_number and user.get("personalNumber")
                       and found.personal_number != user.get("personalNumber"))
    valid = found.valid and found.non_visible_b64 == expected and same_person
    if not valid:
        problems.append("the identity provider's signature does not verify or does not "
                        "cover this document")
    return valid


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
