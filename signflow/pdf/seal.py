"""The service seal's signer: development PEM, operator's PEM/PKCS#12, or PKCS#11 (HSM)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    for name, path in (("SIGNFLOW_SEAL_KEY", key), ("SIGNFLOW_SEAL_CERT", settings.seal_cert)):
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"{name} {path} is not readable by this process (uid "
                              f"{os.getuid()}): give it to that user, e.g. chown it")
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


def check_seal_chain(signer: signers.Signer, anchors: Sequence[x509.Certificate]) -> None:
    """Refuse a seal whose certificate chains to none of *anchors* (the roots the
    service trusts and publishes at ``GET /api/v1/trust-anchors``): every document
    would carry a seal that no verifier, the service's own included, can judge.

    :raises ConfigError: naming ``SIGNFLOW_TRUST_ROOTS``, where its root belongs.
    """
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathError, ValidationError

    cert = signer.signing_cert
    assert cert is not None
    context = ValidationContext(trust_roots=[asn1_cert(a) for a in anchors],
                                other_certs=list(signer.cert_registry or ()),
                                allow_fetching=False, revocation_mode="soft-fail")
    def validate() -> None:
        asyncio.run(CertificateValidator(cert, validation_context=context)
                    .async_validate_usage(set()))

    try:  # in a thread of its own: the caller may be inside an event loop (a browser test)
        with ThreadPoolExecutor(max_workers=1) as apart:
            apart.submit(validate).result()
    except (PathError, ValidationError) as exc:
        raise ConfigError(
            f"the seal certificate ({cert.subject.human_friendly}, issued by "
            f"{cert.issuer.human_friendly}) chains to no trusted root ({exc}): put its "
            "root CA's certificate in SIGNFLOW_TRUST_ROOTS (PEM), which the service "
            "trusts and publishes at /api/v1/trust-anchors; otherwise no verifier can "
            "judge the seal of any document") from None

