"""Personal numbers encrypted at rest (AES-256-GCM, key from configuration).

The key is ``SIGNFLOW_DATA_KEY``, or else derived from the secret key, so web
and workers that share their configuration read each other's values.  Each
value is bound to the row it belongs to (the associated data), so a
ciphertext copied to another signer does not open there.

The same secret also keys the lookup hashes of values that are searched for
but never read back (a staff member's personal number): HMAC-SHA256 under a
key of its own, so a leaked table cannot be matched against the ~10^10
possible personal numbers without the key.  Changing the key orphans them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
        self._lookup_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                info=b"signflow lookup hashes v1").derive(secret.encode("utf-8"))

    def lookup_hash(self, value: str) -> str:
        """A keyed hash of *value* (64 hex digits) to find it by; not reversible."""
        return hmac.new(self._lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

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
