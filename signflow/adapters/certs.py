"""Reading certificate files named in the configuration."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from signflow.errors import ConfigError


def read_pem_certs(path: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read certificates from {path}: {exc}") from None
