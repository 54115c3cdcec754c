"""The OCSP responder (RFC 6960) for the service's own CAs.

Anyone on the internet may ask it anything, so every request it cannot answer
gets an OCSP error response, as real responders send, and never an exception:
``malformedRequest`` for what is not a single-certificate request it can read
(garbage, several certificates at once, a CertID hashed with an algorithm it
does not take), ``unauthorized`` for an issuer that is not one of its CAs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from signflow.pdf.pki import KeyPair

#: The CertID hash algorithms answered: SHA-1 (RFC 5019's default, still what
#: most clients send) and the SHA-2 family.  MD5 and anything else that
#: :mod:`cryptography` cannot name (SHA-3, unknown OIDs) is refused while reading.
CERT_ID_HASHES = (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
#: What reading an attacker's request may raise: bad DER (ValueError), more than
#: one certificate (NotImplementedError), an unknown hash OID, a repeated extension.
_UNREADABLE = (ValueError, NotImplementedError, UnsupportedAlgorithm, x509.DuplicateExtension)


def answer_ocsp(request_der: bytes, cas: list[KeyPair]) -> bytes:
    """Answer an OCSP request for a certificate of one of *cas*, as DER.

    signflow never revokes: its CAs issue one-day certificates for single
    signing acts and keep the seal, TSA and signer CA until they expire, so
    the answer is "good" (RFC 6960 2.2) for any serial of a known issuer, and
    "unauthorized" for any other issuer.  Certificates do not name this
    responder (no AIA): with it, Poppler 22.12's pdfsig judged some signatures
    "Unknown issue" although every answer was good; the responses are embedded
    in the PDF instead.
    """
    req = read_request(request_der)
    if req is None:
        return refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    ca = _issuer_of(req, cas)
    if ca is None:
        return refusal(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    return _good(req, ca)


def refusal(status: ocsp.OCSPResponseStatus) -> bytes:
    """An OCSP error response (no signature, no certificate status) with *status*."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


def read_request(request_der: bytes) -> ocsp.OCSPRequest | None:
    """The request, every field read once, or None if it is not one this responder takes."""
    try:
        req = ocsp.load_der_ocsp_request(request_der)
        algorithm, serial, _ = req.hash_algorithm, req.serial_number, req.extensions
    except _UNREADABLE:
        return None
    if not isinstance(algorithm, CERT_ID_HASHES) or serial < 0:
        return None
    return req


def _issuer_of(req: ocsp.OCSPRequest, cas: list[KeyPair]) -> KeyPair | None:
    """The CA the CertID names by both its name hash and its key hash (RFC 6960 4.1.1)."""
    for ca in cas:
        subject, key_bits = _cert_id_inputs(ca.cert)
        if (_digest(req.hash_algorithm, subject) == req.issuer_name_hash
                and _digest(req.hash_algorithm, key_bits) == req.issuer_key_hash):
            return ca
    return None


def _good(req: ocsp.OCSPRequest, ca: KeyPair) -> bytes:
    now = datetime.now(UTC) - timedelta(minutes=1)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=req.issuer_name_hash, issuer_key_hash=req.issuer_key_hash,
        serial_number=req.serial_number, algorithm=req.hash_algorithm,
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
        next_update=now + timedelta(days=7), revocation_time=None,
        revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
    for ext in req.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            builder = builder.add_extension(ext.value, critical=False)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _cert_id_inputs(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """The issuer's subject as encoded in its certificate, and its subjectPublicKey
    BIT STRING's value without the unused-bits octet: what a CertID hashes."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return parsed.subject.dump(), parsed.public_key["public_key"].contents[1:]
