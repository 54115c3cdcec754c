"""The signer's identity-provider evidence, carried inside their PDF signature.

The evidence (BankID's XML signature, OCSP response, orderRef, completion
time, the prepared document's hash) travels as a *signed* CMS attribute of
the signer's own PAdES signature, so it is covered by that signature and
survives wherever the PDF goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from asn1crypto import cms, core

from signflow.pdf import der

#: Our attribute type: a UUID-based OID (ITU-T X.667, arc 2.25), needing no registry.
OID_EVIDENCE = "2.25.327386542474370140082130654273375371535"
#: Evidence fields carried; the device's IP address stays out of the document.
COMPLETION_FIELDS = ("signature", "ocspResponse", "bankIdIssueDate", "stepUp")
USER_FIELDS = ("name", "givenName", "surname")


def evidence_document(evidence: Mapping[str, Any]) -> bytes:
    """Canonical JSON of what goes into the PDF (stable key order, UTF-8)."""
    completion = evidence.get("completion", {})
    doc = {
        "provider": evidence.get("provider"),
        "providerId": evidence.get("provider_id"),
        "orderRef": evidence.get("order_ref"),
        "completedAt": evidence.get("completed_at"),
        "documentSha256": evidence.get("document_sha256"),
        "signatureVerified": evidence.get("signature_verified"),
        "user": {k: completion.get("user", {}).get(k) for k in USER_FIELDS},
        **{k: completion.get(k) for k in COMPLETION_FIELDS},
    }
    return json.dumps(doc, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def evidence_attribute(evidence: bytes) -> bytes:
    """The signed CMS attribute (DER) carrying *evidence* as an OCTET STRING."""
    return der.attribute(OID_EVIDENCE, der.octets(evidence))


def read_evidence(signer_info: cms.SignerInfo) -> dict[str, Any] | None:
    """The evidence JSON from a signature's signed attributes, or None."""
    attrs = signer_info["signed_attrs"]
    if not attrs:
        return None
    for attr in attrs:
        if attr["type"].dotted == OID_EVIDENCE:
            raw = core.OctetString.load(attr["values"][0].dump()).native
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return {"_unreadable": True}
            return value if isinstance(value, dict) else {"_unreadable": True}
    return None
