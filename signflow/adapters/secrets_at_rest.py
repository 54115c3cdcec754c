"""Personal numbers encrypted at rest (AES-256-GCM, key from configuration).

The key is ``SIGNFLOW_DATA_KEY``, or else derived from the secret key, so web
and workers that share their configuration read each other's values.  Each
value is bound to the row it belongs to (the associated data), so a
ciphertext copied to another signer does not open there.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from signflow.errors import ConfigError

PREFIX = "v1:"


class FieldCipher:
    """One implementation of :class:`~signflow.core.ports.FieldSealer`."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ConfigError("no key for data at rest: set SIGNFLOW_DATA_KEY or "
                              "SIGNFLOW_SECRET_KEY")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"signflow personal numbers v1").derive(secret.encode("utf-8"))
        self._aead = AESGCM(key)

    def seal(self, value: str, *, bound_to: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), bound_to.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, bound_to: str) -> str:
        if not token.startswith(PREFIX):
            raise ValueError("not a sealed value")
        raw = base64.urlsafe_b64decode(token[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode("utf-8")).decode()
        except InvalidTag:
            raise ConfigError("a personal number stored here does not open with the "
                              "configured key (was SIGNFLOW_DATA_KEY changed?)") from None
