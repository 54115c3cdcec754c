"""Bridges from :mod:`cryptography` key material to pyHanko signers and TSAs."""

from __future__ import annotations

from datetime import datetime

from asn1crypto import cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signflow.pdf.pki import KeyPair, Pki


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def asn1_key(pair: KeyPair) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(pair.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))


def simple_signer(pair: KeyPair, chain: list[x509.Certificate],
                  cls: type[SimpleSigner] = SimpleSigner, **extra) -> SimpleSigner:
    """A pyHanko signer holding an already parsed key (no re-parse per signature)."""
    return cls(
        **extra,
        signing_cert=asn1_cert(pair.cert),
        signing_key=asn1_key(pair),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(c) for c in chain]),
    )


class DevTimeStamper(DummyTimeStamper):
    """The built-in development TSA, signing with a key object parsed once.

    pyHanko's in-process TSA re-parses its RSA key for every token (~40 ms,
    most of a signature's cost); the token itself is unchanged.
    """

    def __init__(self, pki: Pki) -> None:
        super().__init__(
            tsa_cert=asn1_cert(pki.tsa.cert), tsa_key=asn1_key(pki.tsa),
            certs_to_embed=SimpleCertificateStore.from_certs([asn1_cert(pki.root.cert)]))
        self._key = pki.tsa.key

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime):
        hash_cls = {"sha256": hashes.SHA256, "sha384": hashes.SHA384,
                    "sha512": hashes.SHA512}[md_algorithm.lower()]
        digest = hashes.Hash(hash_cls())
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
            simple_cms_attribute("signing_certificate",
                                 as_signing_certificate(self.tsa_cert)),
            simple_cms_attribute("message_digest", digest.finalize()),
        ])
        key = self._key
        if not isinstance(key, rsa.RSAPrivateKey):
            raise NotImplementedError("the development TSA key must be RSA")
        return key.sign(signed_attrs.dump(), padding.PKCS1v15(), hash_cls()), signed_attrs


def dev_timestamper(pki: Pki) -> DevTimeStamper:
    """The built-in development TSA: RFC 3161 tokens signed by the dev TSA key."""
    return DevTimeStamper(pki)


def make_timestamper(pki: Pki, tsa_url: str) -> TimeStamper:
    if tsa_url:
        return HTTPTimeStamper(tsa_url, timeout=10)
    return dev_timestamper(pki)
