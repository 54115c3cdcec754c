"""The signer's identity-provider evidence, carried inside their PDF signature.

Two *signed* CMS attributes of the signer's own PAdES signature, so the
signature covers both and neither can be swapped:

- the public summary (JSON): provider, orderRef, completion time, the
  prepared document's hash, what the identity was checked against, the
  person's name, and the SHA-256 of the sealed evidence and of its envelope;
- the sealed evidence: everything the provider returned (BankID's signature
  XML and OCSP response, which name the person by personal number), as CMS
  EnvelopedData to the organisation's evidence certificates
  (:mod:`signflow.pdf.envelope`).

Nothing in the public part can carry a personal number: it is built from a
fixed list of fields.  Documents signed before sealing (format 1) carried
the provider's signature in the public part; :func:`read_evidence` still
reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from asn1crypto import cms, core
from cryptography import x509

from signflow.pdf import der, envelope

#: Our attribute types: UUID-based OIDs (ITU-T X.667, arc 2.25), needing no registry.
OID_EVIDENCE = "2.25.327386542474370140082130654273375371535"
OID_SEALED_EVIDENCE = "2.25.179713533190365340272280240595934872381"
#: Name fields of the provider's user object that may be public.
USER_FIELDS = ("name", "givenName", "surname")
FORMAT = 2


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _summary(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """What both parts say: the act, the document and what the identity was checked against."""
    return {
        "provider": evidence.get("provider"),
        "providerId": evidence.get("provider_id"),
        "orderRef": evidence.get("order_ref"),
        "completedAt": evidence.get("completed_at"),
        "documentSha256": evidence.get("document_sha256"),
        "signatureVerified": evidence.get("signature_verified"),
        "identityCheck": evidence.get("identity_check"),
    }


def sealed_document(evidence: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the whole evidence, as it goes into the envelope."""
    return _canonical({
        **_summary(evidence),
        "invitedName": evidence.get("invited_name"),
        "invitedPersonalNumber": evidence.get("invited_personal_number") or None,
        "completion": evidence.get("completion", {}),
    })


def public_document(evidence: Mapping[str, Any], *, sealed: bytes, sealed_envelope: bytes,
                    recipients: Sequence[str]) -> bytes:
    """Canonical JSON of the public summary (never a personal number)."""
    user = evidence.get("completion", {}).get("user", {})
    return _canonical({
        "format": FORMAT,
        **_summary(evidence),
        "user": {k: user.get(k) for k in USER_FIELDS},
        "sealed": {"sha256": hashlib.sha256(sealed).hexdigest(),
                   "envelopeSha256": hashlib.sha256(sealed_envelope).hexdigest(),
                   "recipients": list(recipients)},
    })


def evidence_attributes(evidence: Mapping[str, Any],
                        recipients: Sequence[x509.Certificate]) -> list[bytes]:
    """The two signed CMS attributes (DER) carrying *evidence*, sealed to *recipients*."""
    sealed = sealed_document(evidence)
    sealed_envelope = envelope.seal(sealed, recipients)
    names = [envelope.recipient_label(cert) for cert in recipients]
    public = public_document(evidence, sealed=sealed, sealed_envelope=sealed_envelope,
                             recipients=names)
    return [der.attribute(OID_EVIDENCE, der.octets(public)),
            der.attribute(OID_SEALED_EVIDENCE, der.octets(sealed_envelope))]


def _attribute(signer_info: cms.SignerInfo, oid: str) -> bytes | None:
    attrs = signer_info["signed_attrs"]
    for attr in attrs or ():
        if attr["type"].dotted == oid:
            return core.OctetString.load(attr["values"][0].dump()).native
    return None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"_unreadable": True}
    return value if isinstance(value, dict) else {"_unreadable": True}


def read_evidence(signer_info: cms.SignerInfo) -> dict[str, Any] | None:
    """The public evidence JSON from a signature's signed attributes, or None."""
    raw = _attribute(signer_info, OID_EVIDENCE)
    return None if raw is None else _json_object(raw)


def read_sealed(signer_info: cms.SignerInfo) -> bytes | None:
    """The sealed evidence (DER EnvelopedData) from a signature's signed attributes."""
    return _attribute(signer_info, OID_SEALED_EVIDENCE)


def open_evidence(sealed_envelope: bytes, keys: Sequence[Any]) -> dict[str, Any] | None:
    """The sealed evidence as JSON with its SHA-256 under ``_sha256``; None if no key fits."""
    plain = envelope.open_sealed(sealed_envelope, keys)
    if plain is None:
        return None
    doc = _json_object(plain)
    doc["_sha256"] = hashlib.sha256(plain).hexdigest()
    return doc
