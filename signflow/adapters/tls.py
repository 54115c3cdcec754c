"""TLS for the identity-provider clients: client certificate (PEM or PKCS#12) and a
pinned server CA, plus the simulator's server side.

requests takes no PKCS#12 and no password-protected key, so the client gets
an :class:`ssl.SSLContext` of its own; a PKCS#12 key is re-written, still
encrypted with its password, into a private temporary directory.
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import tempfile
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from requests.adapters import HTTPAdapter

from signflow.errors import ConfigError


class _ContextAdapter(HTTPAdapter):
    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)


def _pem_from_p12(path: str, password: str) -> tuple[str, str]:
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(
            Path(path).read_bytes(), password.encode() if password else None)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot open the PKCS#12 file {path}: {exc}") from None
    if key is None or cert is None:
        raise ConfigError(f"{path} holds no key and certificate")
    folder = Path(tempfile.mkdtemp(prefix="signflow-tls-"))
    folder.chmod(0o700)
    atexit.register(shutil.rmtree, folder, True)
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    (folder / "cert.pem").write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in [cert, *(chain or [])]))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return str(folder / "cert.pem"), str(folder / "key.pem")


def client_session(*, cert: str = "", key: str = "", password: str = "",
                   ca: str = "") -> requests.Session:
    """A session presenting *cert* and trusting only *ca* (when given)."""
    session = requests.Session()
    if not (cert or ca):
        return session
    context = ssl.create_default_context(cafile=ca or None)
    if ca:
        context.load_verify_locations(cafile=ca)  # pinned: only this CA
    if cert:
        if cert.lower().endswith((".p12", ".pfx")):
            cert, key = _pem_from_p12(cert, password)
        elif not key:
            raise ConfigError("a PEM client certificate needs its key file")
        try:
            context.load_cert_chain(cert, key, password=password or None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load the client certificate {cert}: {exc}") from None
    session.mount("https://", _ContextAdapter(context))
    return session


def server_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """TLS for a simulator: ask for a client certificate issued by *client_ca*."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL  # absent: the app answers 401, as BankID does
    return context
