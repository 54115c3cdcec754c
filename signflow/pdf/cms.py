"""CMS signatures for PDFs, written directly in DER (see :mod:`signflow.pdf.der`).

Two shapes: a signer's detached PAdES signature (CAdES baseline attributes,
our evidence attribute, a signature timestamp as unsigned attribute), and the
development TSA's RFC 3161 token. Both are read back by pyHanko, asn1crypto,
Poppler and our verifier in the tests.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from signflow.pdf import der

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
OID_TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"
SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"


@dataclass(frozen=True)
class CertRef:
    """A certificate as the DER pieces a CMS structure refers to it by."""

    der: bytes
    issuer: bytes
    subject: bytes
    serial: int

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertRef:
        return _cert_ref(cert.public_bytes(serialization.Encoding.DER))

    def issuer_and_serial(self) -> bytes:
        return der.seq(self.issuer, der.integer(self.serial))

    def _issuer_serial(self) -> bytes:
        # GeneralNames with one directoryName ([4], explicit because Name is a CHOICE)
        return der.seq(der.seq(der.explicit(4, self.issuer)), der.integer(self.serial))

    def signing_certificate_v2(self) -> bytes:
        """ESS SigningCertificateV2 (RFC 5035); SHA-256 is the default, so omitted."""
        cert_id = der.seq(der.octets(hashlib.sha256(self.der).digest()), self._issuer_serial())
        return der.seq(der.seq(cert_id))

    def signing_certificate(self) -> bytes:
        """ESS SigningCertificate (RFC 2634, SHA-1), as RFC 3161 tokens carry it."""
        cert_id = der.seq(der.octets(hashlib.sha1(self.der).digest()),  # noqa: S324 - mandated
                          self._issuer_serial())
        return der.seq(der.seq(cert_id))


@functools.lru_cache(maxsize=64)
def _cert_ref(data: bytes) -> CertRef:
    # asn1crypto keeps the original encodings of what it parses lazily
    tbs = asn1_x509.Certificate.load(data)["tbs_certificate"]
    return CertRef(data, tbs["issuer"].dump(), tbs["subject"].dump(),
                   tbs["serial_number"].native)


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _sign(key: PrivateKey, data: bytes) -> tuple[bytes, bytes]:
    """The signature over *data* and the DER of its algorithm identifier."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), der.algorithm(ECDSA_SHA256)
    if isinstance(key, rsa.RSAPrivateKey):
        return (key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
                der.algorithm_null(RSA_SHA256))
    raise TypeError(f"unsupported key type {type(key).__name__}")


def _signed_data(*, version: int, encap: bytes, certs: Sequence[CertRef],
                 signer_info: bytes) -> bytes:
    body = der.seq(
        der.integer(version),
        der.set_of(der.algorithm(SHA256)),
        encap,
        der.implicit_set(0, *(c.der for c in certs)),
        der.set_of(signer_info),
    )
    return der.seq(der.oid(OID_SIGNED_DATA), der.explicit(0, body))


def _signer_info(cert: CertRef, signed: bytes, algorithm: bytes, signature: bytes,
                 unsigned: Sequence[bytes] = ()) -> bytes:
    parts = [der.integer(1), cert.issuer_and_serial(), der.algorithm(SHA256),
             b"\xa0" + signed[1:],  # the signed SET OF, re-tagged [0] IMPLICIT
             algorithm, der.octets(signature)]
    if unsigned:
        parts.append(der.implicit_set(1, *unsigned))
    return der.seq(*parts)


def pades_signature(
    *, digest: bytes, cert: CertRef, key: PrivateKey, chain: Sequence[CertRef],
    extra_attributes: Sequence[bytes] = (), timestamp: Callable[[bytes], bytes],
) -> bytes:
    """A detached CAdES signature over *digest* (SHA-256 of the byte ranges), B-T.

    No signing-time attribute: PAdES takes the claimed time from the /M entry.
    *timestamp* turns the SHA-256 of the signature value into a TST token.
    """
    signed = der.set_of(
        der.attribute(OID_CONTENT_TYPE, der.oid(OID_DATA)),
        der.attribute(OID_MESSAGE_DIGEST, der.octets(digest)),
        der.attribute(OID_SIGNING_CERTIFICATE_V2, cert.signing_certificate_v2()),
        *extra_attributes,
    )
    signature, algorithm = _sign(key, signed)
    token = timestamp(hashlib.sha256(signature).digest())
    info = _signer_info(cert, signed, algorithm, signature,
                        [der.attribute(OID_TIMESTAMP_TOKEN, token)])
    return _signed_data(version=1, encap=der.seq(der.oid(OID_DATA)), certs=[cert, *chain],
                        signer_info=info)


def timestamp_token(
    *, digest: bytes, tsa: CertRef, key: PrivateKey, embed: Sequence[CertRef], serial: int,
    policy: str, when: datetime, nonce: int | None = None,
) -> bytes:
    """An RFC 3161 TimeStampToken over a SHA-256 *digest*, signed by *tsa*."""
    fields = [der.integer(1), der.oid(policy),
              der.seq(der.algorithm(SHA256), der.octets(digest)),
              der.integer(serial), der.generalized_time(when)]
    if nonce is not None:
        fields.append(der.integer(nonce))
    fields.append(der.explicit(0, der.explicit(4, tsa.subject)))  # tsa: directoryName
    tst_info = der.seq(*fields)
    signed = der.set_of(
        der.attribute(OID_CONTENT_TYPE, der.oid(OID_TST_INFO)),
        der.attribute(OID_SIGNING_TIME, der.utc_time(when)),
        der.attribute(OID_MESSAGE_DIGEST, der.octets(hashlib.sha256(tst_info).digest())),
        der.attribute(OID_SIGNING_CERTIFICATE, tsa.signing_certificate()),
    )
    signature, algorithm = _sign(key, signed)
    encap = der.seq(der.oid(OID_TST_INFO), der.explicit(0, der.octets(tst_info)))
    return _signed_data(version=3, encap=encap, certs=[tsa, *embed],
                        signer_info=_signer_info(tsa, signed, algorithm, signature))
