"""Checking a provider's own signature inside carried evidence, per provider.

Each check takes the provider's completion data as carried (``signature``,
for BankID also ``ocspResponse``), the provider's roots, the order reference
and, when known, the completion time; it answers what the provider's
signature covers and whom its certificate names, or that it does not verify.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How far BankID's OCSP answer may be from the completion time.
OCSP_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class ProviderSignature:
    valid: bool
    #: What the person approved without seeing (base64): our document hash.
    non_visible_b64: str
    #: What the person was shown (base64, as sent).
    visible_b64: str = ""
    problems: tuple[str, ...] = ()
    #: The personal number in the provider's signing certificate or signed
    #: result ("" when none is found), to compare with ``completionData.user``.
    personal_number: str = ""
    #: The person's name there ("" when none is found).
    name: str = ""
    #: The provider's certificate chains to one of the roots given; False
    #: when it chains to none (an unknown root: not checkable here, not forged).
    anchored: bool = True


class EvidenceCheck(Protocol):
    def __call__(self, completion: Mapping[str, Any], roots: Sequence[x509.Certificate],
                 order_ref: str, completed_at: datetime | None = None
                 ) -> ProviderSignature: ...


def same_person(found: ProviderSignature, completion: Mapping[str, Any]) -> ProviderSignature:
    """*found*, invalid when ``completionData.user`` names another person than
    the provider's signature does: the signature, not the JSON, is the proof."""
    user = completion.get("user") or {}
    claimed = str(user.get("personalNumber") or "")
    if not found.personal_number or claimed == found.personal_number:
        return found
    return ProviderSignature(False, found.non_visible_b64, found.visible_b64,
                             (*found.problems, "completionData.user is not the person in "
                              "the provider's signature"), found.personal_number, found.name)


def _decoded(completion: Mapping[str, Any], key: str) -> bytes | None:
    try:
        return base64.b64decode(str(completion.get(key) or ""), validate=True) or None
    except ValueError:
        return None


def _bankid(completion: Mapping[str, Any], roots: Sequence[x509.Certificate], order_ref: str,
            completed_at: datetime | None = None) -> ProviderSignature:
    from signflow.adapters.bankid_xml import check_signature

    xml = _decoded(completion, "signature")
    if xml is None:
        return ProviderSignature(False, "", problems=("no readable XML signature",))
    check = check_signature(xml, roots)
    problems = list(check.problems)
    if check.certificates:
        problems += check_ocsp(_decoded(completion, "ocspResponse"), check.certificates,
                               [check.root] if check.root else roots, completed_at)
    number, name = _person_in(check.certificates[0]) if check.certificates else ("", "")
    return ProviderSignature(not problems, check.non_visible_b64, check.visible_b64,
                             tuple(problems), number, name, anchored=check.root is not None)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _person_in(cert: x509.Certificate) -> tuple[str, str]:
    """BankID's user certificate: serialNumber is the personal number; the name."""
    subject = cert.subject
    given, surname = _attr(subject, NameOID.GIVEN_NAME), _attr(subject, NameOID.SURNAME)
    name = f"{given} {surname}" if given and surname else _attr(subject, NameOID.COMMON_NAME)
    return _attr(subject, NameOID.SERIAL_NUMBER), name


def check_ocsp(der: bytes | None, chain: Sequence[x509.Certificate],
               roots: Sequence[x509.Certificate], completed_at: datetime | None
               ) -> list[str]:
    """Problems with BankID's OCSP answer for ``chain[0]`` (empty: it proves "good").

    *chain* is the person's certificate and its CAs as the XML signature
    carried them; the responder must be the issuing CA itself or an OCSP
    signer that chains to one of *roots*.
    """
    if der is None:
        return ["no OCSP response"]
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError:
        return ["the OCSP response cannot be read"]
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return [f"the OCSP response is {resp.response_status.name.lower()}"]
    leaf = chain[0]
    issuer = next((c for c in chain[1:] if c.subject == leaf.issuer), None)
    problems = _single_response(resp, leaf, issuer)
    problems += _responder_problems(resp, issuer, chain, roots)
    produced = resp.produced_at_utc
    if completed_at is not None and abs(produced - _aware(completed_at)) > OCSP_WINDOW:
        problems.append("the OCSP response was not produced at the completion time")
    return problems


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _single_response(resp: ocsp.OCSPResponse, leaf: x509.Certificate,
                     issuer: x509.Certificate | None) -> list[str]:
    """One answer, about *leaf* as issued by *issuer*, saying good."""
    answers = list(resp.responses)
    if len(answers) != 1:
        return ["the OCSP response does not hold exactly one answer"]
    answer = answers[0]
    if issuer is None:
        return ["the person's certificate comes without its issuer"]
    try:
        # a request for the same certificate hashes the issuer the way the answer must
        asked = ocsp.OCSPRequestBuilder().add_certificate(
            leaf, issuer, answer.hash_algorithm).build()
    except ValueError:
        return ["the OCSP answer uses an unsupported hash"]
    if (answer.serial_number != leaf.serial_number
            or answer.issuer_name_hash != asked.issuer_name_hash
            or answer.issuer_key_hash != asked.issuer_key_hash):
        return ["the OCSP answer is about another certificate"]
    if answer.certificate_status is not ocsp.OCSPCertStatus.GOOD:
        return [f"the OCSP status is {answer.certificate_status.name.lower()}, not good"]
    return []


def _responder(resp: ocsp.OCSPResponse, candidates: Sequence[x509.Certificate]
               ) -> x509.Certificate | None:
    for cert in candidates:
        if resp.responder_key_hash is not None:
            key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
            if key_id == resp.responder_key_hash:
                return cert
        elif resp.responder_name == cert.subject:
            return cert
    return None


def _responder_problems(resp: ocsp.OCSPResponse, issuer: x509.Certificate | None,
                        chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
                        ) -> list[str]:
    from signflow.adapters.bankid_xml import chain_root

    responder = _responder(resp, list(resp.certificates) + list(chain))
    if responder is None:
        return ["the OCSP responder's certificate is missing"]
    if not _signed_by(responder, resp):
        return ["the OCSP response's signature does not verify"]
    if responder == issuer:
        return []
    try:
        usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
        return ["the OCSP responder is not authorised to sign OCSP responses"]
    if chain_root([responder, *resp.certificates, *chain[1:]], roots) is None:
        return ["the OCSP responder does not chain to the BankID root"]
    return []


def _signed_by(cert: x509.Certificate, resp: ocsp.OCSPResponse) -> bool:
    key, algorithm = cert.public_key(), resp.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _freja(completion: Mapping[str, Any], roots: Sequence[x509.Certificate], order_ref: str,
           completed_at: datetime | None = None) -> ProviderSignature:
    raw = _decoded(completion, "signature")
    try:
        token = raw.decode("ascii") if raw else ""
    except UnicodeDecodeError:
        token = ""
    outer = verify_jws(token, roots) or {}
    inner = verify_jws(str((outer.get("signatureData") or {}).get("userSignature", "")),
                       roots) or {}
    valid = bool(outer and inner) and outer.get("signRef") == order_ref
    number, name = _person_in_freja(outer)
    return ProviderSignature(valid, str(inner.get("binaryData", "")),
                             str(inner.get("text", "")),
                             () if valid else ("Freja's signed result does not verify",),
                             number, name)


def verify_jws(token: str, certs: Sequence[x509.Certificate]) -> dict[str, Any] | None:
    """The payload of Freja's JWS *token*, checked with the certificate its
    ``x5t`` names among *certs*; None when none is named or it does not verify.

    Freja rotates its signing certificates and names the one used; trying
    every configured certificate would accept a key the header does not claim.
    """
    from signflow.adapters import jws

    try:
        header = json.loads(jws.unb64url(token.split(".")[0]))
        thumbprint = jws.unb64url(str(header["x5t"]))
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    named = [c for c in certs if c.fingerprint(hashes.SHA1()) == thumbprint]  # noqa: S303
    return jws.verify(token, named) if named else None


def _person_in_freja(result: Mapping[str, Any]) -> tuple[str, str]:
    """The personal number and name Freja's signed result names."""
    attrs = result.get("requestedAttributes") or {}
    basic = attrs.get("basicUserInfo") or {}
    number = str((attrs.get("ssn") or {}).get("ssn") or "")
    if not number and result.get("userInfoType") == "SSN":
        number = _ssn_of(str(result.get("userInfo") or ""))
    name = f"{basic.get('name', '')} {basic.get('surname', '')}".strip()
    return number, name


def _ssn_of(user_info: str) -> str:
    """``userInfo`` for an SSN request: JSON ``{"country", "ssn"}``, or the bare number."""
    try:
        info = json.loads(user_info)
    except ValueError:
        return user_info
    return str(info.get("ssn") or "") if isinstance(info, dict) else user_info


CHECKS: dict[str, EvidenceCheck] = {
    "bankid": _bankid,
    "freja": _freja,
}
