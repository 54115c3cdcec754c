"""Sealed evidence: CMS EnvelopedData (RFC 5652) to the organisation's evidence certificates.

The identity provider's evidence names the person by personal number (the
user certificate inside BankID's signature XML carries it), and a signed
protocol is a public document.  So the evidence travels in the PDF sealed:
AES-256-CBC content encryption, its key wrapped with RSAES-OAEP (SHA-256)
once per recipient certificate, so that any of them (the municipality's
archive, the service) can open it.  OpenSSL's ``cms -decrypt`` opens it too;
the tests check that.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from signflow.pdf import der
from signflow.pdf.cms import OID_DATA, SHA256, CertRef


class EnvelopeError(ValueError):
    """The envelope cannot be made or opened."""


OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
#: RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 4055), as an AlgorithmIdentifier.
_OAEP_SHA256 = der.seq(der.oid(OID_RSAES_OAEP), der.seq(
    der.explicit(0, der.algorithm(SHA256)),
    der.explicit(1, der.seq(der.oid(OID_MGF1), der.algorithm(SHA256)))))


def _oaep() -> OAEP:
    return OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _recipient(cert: x509.Certificate, content_key: bytes) -> bytes:
    """A KeyTransRecipientInfo (DER): the content key wrapped for *cert*."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise EnvelopeError(f"evidence certificate {cert.subject.rfc4514_string()} has no "
                            "RSA key; sealing needs RSA recipients")
    rid = CertRef.of(cert).issuer_and_serial()
    return der.seq(der.integer(0), rid, _OAEP_SHA256,
                   der.octets(public.encrypt(content_key, _oaep())))


def seal(plaintext: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """*plaintext* as a DER ContentInfo(EnvelopedData) any of *recipients* can open.

    Written directly in DER (as :mod:`signflow.pdf.cms` writes signatures):
    building it with asn1crypto's classes cost some 20 ms per signature.
    """
    if not recipients:
        raise EnvelopeError("no evidence certificate to seal to")
    key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    content = der.seq(der.oid(OID_DATA), der.seq(der.oid(OID_AES256_CBC), der.octets(iv)),
                      der.tlv(0x80, ciphertext))  # [0] IMPLICIT OCTET STRING
    enveloped = der.seq(der.integer(0),
                        der.set_of(*(_recipient(cert, key) for cert in recipients)), content)
    return der.seq(der.oid(OID_ENVELOPED_DATA), der.explicit(0, enveloped))


def recipient_label(cert: x509.Certificate) -> str:
    """How a recipient is named: its issuer and serial number, as :func:`inspect` names it."""
    return _label(cert.public_bytes(serialization.Encoding.DER))


@functools.lru_cache(maxsize=32)
def _label(cert_der: bytes) -> str:
    tbs = asn1_x509.Certificate.load(cert_der)["tbs_certificate"]
    return f"{tbs['issuer'].human_friendly} #{tbs['serial_number'].native:x}"


@dataclass(frozen=True)
class EnvelopeInfo:
    """What anyone can see of an envelope without a key."""

    #: Issuer and serial number of each recipient certificate, as text.
    recipients: tuple[str, ...]
    #: Bytes of encrypted content.
    size: int


def _enveloped(data: bytes) -> cms.EnvelopedData:
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "enveloped_data":
            raise EnvelopeError("not CMS EnvelopedData")
        enveloped = info["content"]
        enveloped.native  # noqa: B018 - parse it whole now, not lazily later
        return enveloped
    except (ValueError, TypeError, KeyError) as exc:
        raise EnvelopeError(f"the sealed evidence is malformed: {exc}") from None


def inspect(data: bytes) -> EnvelopeInfo:
    """Recipients and size of a sealed envelope; raises :class:`EnvelopeError` if malformed."""
    enveloped = _enveloped(data)
    names = []
    for ri in enveloped["recipient_infos"]:
        rid = ri.chosen["rid"].chosen if ri.name == "ktri" else None
        if isinstance(rid, cms.IssuerAndSerialNumber):
            names.append(f"{rid['issuer'].human_friendly} #{rid['serial_number'].native:x}")
        else:
            names.append(ri.name)
    encrypted = enveloped["encrypted_content_info"]["encrypted_content"].native or b""
    return EnvelopeInfo(tuple(names), len(encrypted))


def load_key(pem: bytes, password: bytes | None = None, *,
             checked: bool = False) -> rsa.RSAPrivateKey:
    """An evidence private key from PEM; raises :class:`EnvelopeError` if unusable.

    *checked*: these bytes come from :func:`unlocked_key_pem`, which checked the
    key's consistency when it read the file, so the check (about 0.1 s for an
    RSA key, again in every verification child) is not repeated.
    """
    try:
        key = serialization.load_pem_private_key(pem, password,
                                                 unsafe_skip_rsa_key_validation=checked)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"the evidence key cannot be read: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EnvelopeError("the evidence key is not an RSA key")
    return key


def unlocked_key_pem(path: Path, password: str = "") -> bytes:
    """The evidence key in the PEM file *path*, decrypted, as unencrypted PKCS#8 PEM.

    Opened here so that a wrong path or password is said at once, and the
    password goes no further (the verifying child process gets the key).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EnvelopeError(f"cannot read the evidence key {path}: {exc.strerror}") from None
    try:
        key = load_key(data, password.encode() or None)
    except EnvelopeError as exc:
        raise EnvelopeError(f"cannot read the evidence key {path}: {exc}") from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def open_sealed(data: bytes, keys: Sequence[rsa.RSAPrivateKey]) -> bytes | None:
    """The plaintext, if one of *keys* is a recipient's; ``None`` when none is."""
    enveloped = _enveloped(data)
    content = enveloped["encrypted_content_info"]
    if content["content_encryption_algorithm"]["algorithm"].native != "aes256_cbc":
        raise EnvelopeError("the sealed evidence uses an unknown cipher")
    for ri in enveloped["recipient_infos"]:
        if ri.name != "ktri":
            continue
        wrapped = ri.chosen["encrypted_key"].native
        for key in keys:
            try:
                content_key = key.decrypt(wrapped, _oaep())
            except ValueError:
                continue  # not this recipient's key
            return _decrypt(content, content_key)
    return None


def _decrypt(content: cms.EncryptedContentInfo, key: bytes) -> bytes:
    iv = content["content_encryption_algorithm"]["parameters"].native
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(content["encrypted_content"].native) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise EnvelopeError("the sealed evidence does not decrypt cleanly") from None
