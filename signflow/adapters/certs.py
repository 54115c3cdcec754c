"""Reading certificate files named in the configuration."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from signflow.errors import ConfigError


def read_pem_certs(path: str | Path, hint: str = "") -> list[x509.Certificate]:
    """The certificates in the PEM file *path*; :class:`ConfigError` naming it (and
    *hint*, what to do about it) when it cannot be read."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read certificates from {path}: {reason}{hint}") from None


#: BankID's public roots for users' signatures, shipped with signflow.
BANKID_PRODUCTION_ROOT = "bankid-production-root.pem"
BANKID_TEST_ROOT = "bankid-test-root.pem"


def shipped_certs(name: str) -> list[x509.Certificate]:
    """Certificates signflow ships in ``signflow/certs`` (public roots)."""
    from importlib.resources import files

    return x509.load_pem_x509_certificates(files("signflow").joinpath("certs", name).read_bytes())
