"""BankID's XML signature (XMLDSig): made by the simulator, checked by the service.

The shape follows BankID's signature profile and what its servers return: an
enveloping ``Signature`` whose ``SignedInfo`` references exactly the
``bankIdSignedData`` (``Id="bidSignedData"``) and the ``KeyInfo``
(``Id="bidKeyInfo"``), both canonicalized with inclusive C14N 1.0, signed
``rsa-sha256`` by the person's certificate, the leaf and the two CAs above it
in ``KeyInfo`` (the root is not sent).

The service checks that the signed ``usrVisibleData``/``usrNonVisibleData``
are what it sent, that the reference digests and the signature value verify,
each canonicalized with the algorithm the signature names, and that the
signing certificate chains to the configured BankID root.
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
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
BID = "http://www.bankid.com/signature/v1.0.0/types"
C14N_INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
#: Canonicalizations a signature may name → exclusive?  Anything else is refused:
#: a checker that guesses the algorithm digests other bytes than the signer did.
C14N = {C14N_INCLUSIVE: False, C14N_EXCLUSIVE: True}
DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashlib.sha256,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashlib.sha512,
}
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": "ecdsa",
    RSA_SHA256: "rsa",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          remove_blank_text=False)


XML_NS = "http://www.w3.org/XML/1998/namespace"


def canonicalize(el: etree._Element, algorithm: str) -> bytes:
    """*el*'s subtree in the canonical form *algorithm* names (C14N 1.0, no comments).

    lxml canonicalizes a subtree of a larger document wrongly in inclusive
    mode (grandchildren of a redeclared default namespace come out with
    ``xmlns=""``), so the subtree is first made a document of its own:
    serializing an element declares every namespace in scope on it, which is
    what inclusive C14N puts on the apex, and the ``xml:`` attributes it
    inherits are copied over as C14N 1.0 asks.
    """
    if algorithm not in C14N:
        raise ValueError(f"unsupported canonicalization {algorithm!r}")
    alone = etree.fromstring(etree.tostring(el), _PARSER)
    if not C14N[algorithm]:
        for ancestor in el.iterancestors():
            for attr, value in ancestor.attrib.items():
                if attr.startswith(f"{{{XML_NS}}}") and attr not in alone.attrib:
                    alone.set(attr, value)
    return etree.tostring(alone, method="c14n", exclusive=C14N[algorithm],
                          with_comments=False)


def _sub(parent, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        el.text = text
    return el


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class SignedData:
    """What the person's app puts in ``bankIdSignedData``."""

    visible_b64: str
    non_visible_b64: str
    #: ``userVisibleDataFormat`` as the RP sent it ("" when not sent).
    visible_format: str = ""
    #: ``Signing`` or ``Identification``.
    func: str = "Signing"
    #: The relying party's name as BankID's server knows it (from its certificate).
    rp_name: str = "cn=signflow BankID simulator RP,o=signflow,c=SE"
    rp_display_name: str = "signflow"


def _signed_data(parent: etree._Element, data: SignedData) -> etree._Element:
    el = etree.SubElement(parent, f"{{{BID}}}bankIdSignedData", nsmap={None: BID},
                          Id="bidSignedData")
    if data.visible_b64:
        attrs = {"charset": "UTF-8"}
        if data.visible_format:
            # BankID marks formatted text; the content stays exactly what the RP sent
            attrs["format"] = data.visible_format
        _sub(el, f"{{{BID}}}usrVisibleData", data.visible_b64, **attrs, visible="wysiwys")
    if data.non_visible_b64:
        _sub(el, f"{{{BID}}}usrNonVisibleData", data.non_visible_b64)
    srv = _sub(el, f"{{{BID}}}srvInfo")
    _sub(srv, f"{{{BID}}}name", _b64(data.rp_name.encode()))
    _sub(srv, f"{{{BID}}}nonce", _b64(secrets.token_bytes(20)))
    _sub(srv, f"{{{BID}}}displayName", _b64(data.rp_display_name.encode()))
    client = _sub(el, f"{{{BID}}}clientInfo")
    _sub(client, f"{{{BID}}}funcId", data.func)
    _sub(client, f"{{{BID}}}version", _b64(b"signflow-simulator"))
    ai = _sub(_sub(client, f"{{{BID}}}env"), f"{{{BID}}}ai")
    _sub(ai, f"{{{BID}}}type", _b64(b"SIMULATOR"))
    _sub(ai, f"{{{BID}}}deviceInfo", _b64(b"signflow"))
    _sub(ai, f"{{{BID}}}uhi", _b64(secrets.token_bytes(21)))
    return el


def _reference(signed_info: etree._Element, target: etree._Element, uri: str) -> None:
    ref = _sub(signed_info, f"{{{DS}}}Reference", URI=uri)
    if uri == "#bidSignedData":
        ref.set("Type", BID)
    _sub(_sub(ref, f"{{{DS}}}Transforms"), f"{{{DS}}}Transform", Algorithm=C14N_INCLUSIVE)
    _sub(ref, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
    digest = hashlib.sha256(canonicalize(target, C14N_INCLUSIVE)).digest()
    _sub(ref, f"{{{DS}}}DigestValue", _b64(digest))


def build_signature(*, data: SignedData, key: rsa.RSAPrivateKey,
                    chain: Sequence[x509.Certificate]) -> bytes:
    """The XML document BankID returns as ``completionData.signature`` (decoded).

    *chain* is the person's certificate first, then its CAs up to (not
    including) the root.
    """
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={None: DS})
    signed_info = _sub(sig, f"{{{DS}}}SignedInfo")
    _sub(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N_INCLUSIVE)
    _sub(signed_info, f"{{{DS}}}SignatureMethod", Algorithm=RSA_SHA256)
    sig_value = _sub(sig, f"{{{DS}}}SignatureValue")
    key_info = _sub(sig, f"{{{DS}}}KeyInfo", Id="bidKeyInfo")
    x509_data = _sub(key_info, f"{{{DS}}}X509Data")
    for cert in chain:
        _sub(x509_data, f"{{{DS}}}X509Certificate",
             _b64(cert.public_bytes(serialization.Encoding.DER)))
    signed_data = _signed_data(_sub(sig, f"{{{DS}}}Object"), data)
    _reference(signed_info, signed_data, "#bidSignedData")
    _reference(signed_info, key_info, "#bidKeyInfo")
    value = key.sign(canonicalize(signed_info, C14N_INCLUSIVE), padding.PKCS1v15(),
                     hashes.SHA256())
    sig_value.text = _b64(value)
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
    #: The certificates in ``KeyInfo``, the person's first (empty when unreadable).
    certificates: tuple[x509.Certificate, ...] = ()
    #: The root the chain ends at (one of the configured roots), if it does.
    root: x509.Certificate | None = None


def _by_id(root: etree._Element, ident: str) -> etree._Element | None:
    found = root.xpath("//*[@Id=$i]", i=ident)
    return found[0] if len(found) == 1 else None


NS = {"ds": DS, "bid": BID}


def _certificates(root: etree._Element) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c.text or ""))
                for c in root.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    except ValueError:
        return []


def _transform(ref: etree._Element) -> str:
    """The one canonicalization a reference names ("" when it names anything else)."""
    transforms = ref.findall("ds:Transforms/ds:Transform", NS)
    if not transforms:
        return C14N_INCLUSIVE  # XMLDSig: a same-document node-set becomes octets this way
    if len(transforms) != 1 or transforms[0].get("Algorithm") not in C14N:
        return ""
    return str(transforms[0].get("Algorithm"))


def _check_reference(root: etree._Element, ref: etree._Element) -> str | None:
    """A problem with one ``Reference``, or None when its digest matches."""
    uri = ref.get("URI", "")
    target = _by_id(root, uri[1:]) if uri.startswith("#") else None
    if target is None:
        return f"reference {uri} not found"
    algorithm = _transform(ref)
    if not algorithm:
        return f"reference {uri} uses an unsupported transform"
    method = ref.find("ds:DigestMethod", NS)
    digest = DIGESTS.get(method.get("Algorithm", "") if method is not None else "")
    if digest is None:
        return f"reference {uri} uses an unsupported digest"
    expected = (ref.findtext("ds:DigestValue", namespaces=NS) or "").strip()
    if _b64(digest(canonicalize(target, algorithm)).digest()) != expected:
        return f"digest of {uri} does not match"
    return None


def _check_signed_info(root: etree._Element, signed_info: etree._Element,
                       leaf: x509.Certificate) -> list[str]:
    problems, covered = [], set()
    for ref in signed_info.findall("ds:Reference", NS):
        problem = _check_reference(root, ref)
        if problem:
            problems.append(problem)
        else:
            covered.add(ref.get("URI"))
    if "#bidSignedData" not in covered:
        problems.append("the signed data is not covered by the signature")
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    c14n_alg = c14n.get("Algorithm", "") if c14n is not None else ""
    if c14n_alg not in C14N:
        return problems + ["SignedInfo uses an unsupported canonicalization"]
    method = signed_info.find("ds:SignatureMethod", NS)
    alg = ALGS.get(method.get("Algorithm", "") if method is not None else "")
    value = base64.b64decode(root.findtext("ds:SignatureValue", namespaces=NS) or "")
    if not _verify_value(leaf, alg, value, canonicalize(signed_info, c14n_alg)):
        problems.append("signature value does not verify")
    return problems


def check_signature(xml: bytes, roots: Sequence[x509.Certificate]) -> XmlCheck:
    """Check BankID's XML signature *xml* against *roots*."""
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        return XmlCheck(False, "", "", "", (f"not well-formed XML: {exc}",))
    signed_info = root.find("ds:SignedInfo", NS)
    certs = _certificates(root)
    if signed_info is None or not certs:
        return XmlCheck(False, "", "", "", ("SignedInfo or certificate missing",))
    problems = _check_signed_info(root, signed_info, certs[0])
    anchor = chain_root(certs, roots)
    if anchor is None:
        problems.append("the certificate does not chain to the configured BankID root")
    data = _by_id(root, "bidSignedData")
    visible = data.findtext("bid:usrVisibleData", namespaces=NS) if data is not None else ""
    non_visible = data.findtext("bid:usrNonVisibleData", namespaces=NS) if data is not None else ""
    return XmlCheck(not problems, visible or "", non_visible or "",
                    certs[0].subject.rfc4514_string(), tuple(problems), tuple(certs), anchor)


def _verify_value(cert: x509.Certificate, alg: str | None, value: bytes, data: bytes) -> bool:
    key = cert.public_key()
    try:
        if alg == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(value) // 2  # XMLDSig's ECDSA value is r || s, not DER
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


def chain_root(certs: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
               ) -> x509.Certificate | None:
    """The root in *roots* that ``certs[0]`` chains to through ``certs[1:]``, or None."""
    pool = list(certs[1:]) + list(roots)
    current = certs[0]
    for _ in range(6):
        if current in roots:
            return current
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None:
            return None
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return None
        current = issuer
    return None
