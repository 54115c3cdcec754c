"""What a verifier trusts: one answer for the command line, the API and the web page.

``signflow verify``, ``POST /api/v1/verify`` and the ``/verify`` page all judge
a file with :func:`trust_settings`, so the same file and the same settings get
the same verdict wherever it is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signflow.adapters.certs import (
    BANKID_PRODUCTION_ROOT,
    BANKID_TEST_ROOT,
    read_pem_certs,
    shipped_certs,
)
from signflow.config import Settings
from signflow.pdf.pki import FILES, load_root_certificate


@dataclass(frozen=True)
class TrustSettings:
    """The certificates verification trusts."""

    #: Roots the service's signatures (seal, signers, TSA) must chain to: the
    #: service's own root from the keys dir and ``SIGNFLOW_TRUST_ROOTS``; these
    #: are also what ``GET /api/v1/trust-anchors`` publishes.
    anchors: tuple[x509.Certificate, ...]
    #: Roots the identity providers' own signatures chain to: BankID's
    #: (``SIGNFLOW_BANKID_ROOT``, else the simulator's in development mode only)
    #: and Freja's JWS certificates (``SIGNFLOW_FREJA_JWS_CERT``).
    provider_roots: tuple[x509.Certificate, ...]


def trust_settings(settings: Settings, extra_anchors: Sequence[str] = (), *,
                   keys_dir: bool = True) -> TrustSettings:
    """The trust settings of *settings*, plus the roots in the PEM files *extra_anchors*.

    *keys_dir* False leaves out the keys dir's roots (the service's own and the
    simulator's): ``signflow verify`` with the keys dir only at its default,
    ``./keys``, where whoever handed over a folder with the PDF could have put
    a root of their own.

    :raises ConfigError: a configured or given certificate file cannot be read.
    """
    root = load_root_certificate(settings.keys_dir) if keys_dir else None
    anchors = [root] if root is not None else []
    for path in [settings.trust_roots, *extra_anchors]:
        if path:
            anchors.extend(read_pem_certs(path))
    return TrustSettings(_unique(anchors), _unique(_provider_roots(settings, keys_dir)))


def _provider_roots(settings: Settings, keys_dir: bool = True) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    if settings.bankid_root:
        roots.extend(read_pem_certs(settings.bankid_root))
    else:  # BankID's public production and test roots, shipped with signflow
        roots.extend(shipped_certs(BANKID_PRODUCTION_ROOT) + shipped_certs(BANKID_TEST_ROOT))
        simulator = settings.keys_dir / f"{FILES['bankid_sim']}.pem"
        if keys_dir and settings.dev_mode and simulator.exists():
            roots.extend(read_pem_certs(str(simulator)))
    if settings.freja_jws_cert:
        roots.extend(read_pem_certs(settings.freja_jws_cert))
    return roots


def _unique(certs: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    seen: dict[bytes, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.public_bytes(Encoding.DER), cert)
    return tuple(seen.values())
