"""The service seal's signer: development PEM, operator's PEM/PKCS#12, or PKCS#11 (HSM)."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_private_key,
)
from pyhanko.sign import signers

from signflow.config import Settings
from signflow.errors import ConfigError
from signflow.pdf.keys import asn1_cert, simple_signer
from signflow.pdf.pki import Pki

P12_SUFFIXES = (".p12", ".pfx")


def load_seal(settings: Settings, pki: Pki) -> signers.Signer:
    """The signer that certifies every prepared document, as configured."""
    if settings.seal_pkcs11_module:
        return _pkcs11(settings, pki)
    if settings.seal_key:
        return _file(settings, pki)
    return simple_signer(pki.seal, [pki.root.cert])


def _password(settings: Settings) -> bytes | None:
    return settings.seal_password.encode() if settings.seal_password else None


def _file(settings: Settings, pki: Pki) -> signers.Signer:
    key = Path(settings.seal_key)
    if not key.is_file():
        raise ConfigError(f"SIGNFLOW_SEAL_KEY {key} does not exist")
    chain = [str(pki.keys_dir / "root-ca.pem")]
    quiet = logging.getLogger("pyhanko.sign.signers.pdf_cms")
    was, quiet.disabled = quiet.disabled, True  # it logs a traceback; we say it in a line
    try:
        if key.suffix.lower() in P12_SUFFIXES:
            signer = signers.SimpleSigner.load_pkcs12(str(key), ca_chain_files=chain,
                                                      passphrase=_password(settings))
        else:
            if not settings.seal_cert:
                raise ConfigError("SIGNFLOW_SEAL_KEY (PEM) needs SIGNFLOW_SEAL_CERT")
            signer = signers.SimpleSigner.load(str(key), settings.seal_cert,
                                               ca_chain_files=chain,
                                               key_passphrase=_password(settings))
    finally:
        quiet.disabled = was
    if signer is None:
        raise ConfigError(f"cannot load the seal key from {key} or its certificate "
                          "(wrong password or format)")
    if not _pair(signer):
        raise ConfigError(f"SIGNFLOW_SEAL_KEY {key} is not the key of the seal certificate "
                          f"({settings.seal_cert or 'in the same file'}): every document "
                          "would carry a seal that does not verify")
    return signer


def _pair(signer: signers.SimpleSigner) -> bool:
    """Whether the signer's key belongs to its certificate."""
    assert signer.signing_cert is not None
    public = load_der_private_key(signer.signing_key.dump(), None).public_key()
    return public.public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == signer.signing_cert.public_key.dump()


def _pkcs11(settings: Settings, pki: Pki) -> signers.Signer:
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

    if not (settings.seal_pkcs11_token and settings.seal_pkcs11_key):
        raise ConfigError("PKCS#11 sealing needs SIGNFLOW_SEAL_PKCS11_TOKEN and _KEY")
    try:
        session = open_pkcs11_session(
            settings.seal_pkcs11_module,
            token_criteria=TokenCriteria(label=settings.seal_pkcs11_token),
            user_pin=settings.seal_pkcs11_pin or None)
    except Exception as exc:  # the module's own errors vary by vendor
        raise ConfigError(f"cannot open the PKCS#11 token: {exc}") from None
    cert = None
    if settings.seal_cert:
        cert = asn1_cert(x509.load_pem_x509_certificates(
            Path(settings.seal_cert).read_bytes())[0])
    return PKCS11Signer(session, key_label=settings.seal_pkcs11_key, signing_cert=cert,
                        cert_label=None if cert else settings.seal_pkcs11_key,
                        ca_chain=[asn1_cert(pki.root.cert)],
                        # EC: hash here and sign the digest on the token; CKM_ECDSA is
                        # what every token has (SoftHSM2 lacks CKM_ECDSA_SHA256)
                        use_raw_mechanism=cert is None or cert.public_key.algorithm == "ec")
