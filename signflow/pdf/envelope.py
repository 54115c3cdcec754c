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

import os
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class EnvelopeError(ValueError):
    """The envelope cannot be made or opened."""


def _oaep() -> OAEP:
    return OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _recipient(cert: x509.Certificate, content_key: bytes) -> cms.RecipientInfo:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise EnvelopeError(f"evidence certificate {cert.subject.rfc4514_string()} has no "
                            "RSA key; sealing needs RSA recipients")
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    params = algos.RSAESOAEPParams({
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
    })
    return cms.RecipientInfo(name="ktri", value=cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": cms.RecipientIdentifier(name="issuer_and_serial_number", value={
            "issuer": parsed.issuer, "serial_number": parsed.serial_number}),
        "key_encryption_algorithm": {"algorithm": "rsaes_oaep", "parameters": params},
        "encrypted_key": public.encrypt(content_key, _oaep()),
    }))


def seal(plaintext: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """*plaintext* as a DER ContentInfo(EnvelopedData) any of *recipients* can open."""
    if not recipients:
        raise EnvelopeError("no evidence certificate to seal to")
    key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    enveloped = cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [_recipient(cert, key) for cert in recipients],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
            "encrypted_content": ciphertext,
        },
    })
    return cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()


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


def load_key(pem: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """An evidence private key from PEM; raises :class:`EnvelopeError` if unusable."""
    try:
        key = serialization.load_pem_private_key(pem, password)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"the evidence key cannot be read: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EnvelopeError("the evidence key is not an RSA key")
    return key


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
