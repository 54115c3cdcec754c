"""BankID's XML signature (XMLDSig, exclusive c14n): made by the simulator,
checked by the service.

The service checks that the signed ``usrVisibleData``/``usrNonVisibleData``
are what it sent, that the reference digests and the signature value verify,
and that the signing certificate chains to the configured BankID root.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
BID = "http://www.bankid.com/signature/v1.0.0/types"
C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": "ecdsa",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "rsa",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          remove_blank_text=False)


def _c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)


def _sub(parent, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        el.text = text
    return el


def build_signature(
    *, visible_b64: str, non_visible_b64: str, key: ec.EllipticCurvePrivateKey,
    chain: Sequence[x509.Certificate], func: str = "Signing",
) -> bytes:
    """The XML document BankID returns as ``completionData.signature`` (decoded)."""
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={None: DS})
    signed_info = _sub(sig, f"{{{DS}}}SignedInfo")
    _sub(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N)
    _sub(signed_info, f"{{{DS}}}SignatureMethod",
         Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
    sig_value = _sub(sig, f"{{{DS}}}SignatureValue")
    key_info = _sub(sig, f"{{{DS}}}KeyInfo", Id="bidKeyInfo")
    x509_data = _sub(key_info, f"{{{DS}}}X509Data")
    for cert in chain:
        der = cert.public_bytes(serialization.Encoding.DER)
        _sub(x509_data, f"{{{DS}}}X509Certificate", base64.b64encode(der).decode())
    obj = _sub(sig, f"{{{DS}}}Object")
    data = etree.SubElement(obj, f"{{{BID}}}bankIdSignedData", nsmap={None: BID},
                            Id="bidSignedData")
    if visible_b64:
        _sub(data, f"{{{BID}}}usrVisibleData", visible_b64, charset="UTF-8", visible="wysiwys")
    if non_visible_b64:
        _sub(data, f"{{{BID}}}usrNonVisibleData", non_visible_b64)
    srv = _sub(data, f"{{{BID}}}srvInfo")
    _sub(srv, f"{{{BID}}}nonce", base64.b64encode(secrets.token_bytes(20)).decode())
    client = _sub(data, f"{{{BID}}}clientInfo")
    _sub(client, f"{{{BID}}}funcId", func)
    _sub(client, f"{{{BID}}}version", "signflow-simulator")
    for target, el in (("#bidSignedData", data), ("#bidKeyInfo", key_info)):
        ref = _sub(signed_info, f"{{{DS}}}Reference", URI=target)
        if target == "#bidSignedData":
            ref.set("Type", BID)
        transforms = _sub(ref, f"{{{DS}}}Transforms")
        _sub(transforms, f"{{{DS}}}Transform", Algorithm=C14N)
        _sub(ref, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
        _sub(ref, f"{{{DS}}}DigestValue",
             base64.b64encode(hashlib.sha256(_c14n(el)).digest()).decode())
    der_sig = key.sign(_c14n(signed_info), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der_sig)
    size = (key.curve.key_size + 7) // 8
    sig_value.text = base64.b64encode(r.to_bytes(size, "big") + s.to_bytes(size, "big")).decode()
    return etree.tostring(sig, xml_declaration=True, encoding="UTF-8", standalone=False)


@dataclass(frozen=True)
class XmlCheck:
    """What the service found in a BankID XML signature."""

    #: Digests, signature value and chain all verify.
    valid: bool
    #: The signed usrVisibleData (base64, as sent) or "".
    visible_b64: str
    #: The signed usrNonVisibleData (base64, as sent) or "".
    non_visible_b64: str
    #: Subject of the signing certificate.
    signer_subject: str
    problems: tuple[str, ...]


def _by_id(root: etree._Element, ident: str) -> etree._Element | None:
    found = root.xpath("//*[@Id=$i]", i=ident)
    return found[0] if len(found) == 1 else None


def check_signature(xml: bytes, roots: Sequence[x509.Certificate]) -> XmlCheck:
    problems: list[str] = []
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        return XmlCheck(False, "", "", "", (f"not well-formed XML: {exc}",))
    ns = {"ds": DS, "bid": BID}
    signed_info = root.find("ds:SignedInfo", ns)
    certs = [x509.load_der_x509_certificate(base64.b64decode(c.text or ""))
             for c in root.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", ns)]
    if signed_info is None or not certs:
        return XmlCheck(False, "", "", "", ("SignedInfo or certificate missing",))
    covered = set()
    for ref in signed_info.findall("ds:Reference", ns):
        uri = ref.get("URI", "")
        target = _by_id(root, uri[1:]) if uri.startswith("#") else None
        digest = ref.findtext("ds:DigestValue", namespaces=ns) or ""
        if target is None:
            problems.append(f"reference {uri} not found")
            continue
        if base64.b64encode(hashlib.sha256(_c14n(target)).digest()).decode() != digest.strip():
            problems.append(f"digest of {uri} does not match")
        covered.add(uri)
    if "#bidSignedData" not in covered:
        problems.append("the signed data is not covered by the signature")
    method = signed_info.find("ds:SignatureMethod", ns)
    alg = ALGS.get(method.get("Algorithm", "") if method is not None else "")
    value = base64.b64decode(root.findtext("ds:SignatureValue", namespaces=ns) or "")
    if not _verify_value(certs[0], alg, value, _c14n(signed_info)):
        problems.append("signature value does not verify")
    if not _chains(certs, roots):
        problems.append("the certificate does not chain to the configured BankID root")
    data = _by_id(root, "bidSignedData")
    visible = data.findtext("bid:usrVisibleData", namespaces=ns) if data is not None else ""
    non_visible = data.findtext("bid:usrNonVisibleData", namespaces=ns) if data is not None else ""
    return XmlCheck(not problems, visible or "", non_visible or "",
                    certs[0].subject.rfc4514_string(), tuple(problems))


def _verify_value(cert: x509.Certificate, alg: str | None, value: bytes, data: bytes) -> bool:
    key = cert.public_key()
    try:
        if alg == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(value) // 2
            der = encode_dss_signature(int.from_bytes(value[:half], "big"),
                                       int.from_bytes(value[half:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        elif alg == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _chains(certs: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]) -> bool:
    pool = list(certs[1:]) + list(roots)
    current = certs[0]
    for _ in range(6):
        if any(current == r for r in roots):
            return True
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None:
            return False
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
        if any(issuer == r for r in roots):
            return True
        current = issuer
    return False
