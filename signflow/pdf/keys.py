"""Bridges from :mod:`cryptography` key material to pyHanko signers and TSAs."""

from __future__ import annotations

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
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


def dev_timestamper(pki: Pki) -> DummyTimeStamper:
    """The built-in development TSA: RFC 3161 tokens signed by the dev TSA key."""
    return DummyTimeStamper(
        tsa_cert=asn1_cert(pki.tsa.cert),
        tsa_key=asn1_key(pki.tsa),
        certs_to_embed=SimpleCertificateStore.from_certs([asn1_cert(pki.root.cert)]),
    )


def make_timestamper(pki: Pki, tsa_url: str) -> TimeStamper:
    if tsa_url:
        return HTTPTimeStamper(tsa_url, timeout=10)
    return dev_timestamper(pki)
