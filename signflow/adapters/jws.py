"""Compact JWS (RFC 7515) with ES256 and RS256: made by the Freja stand-in,
checked by the Freja client."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_es256(payload: dict[str, Any], key: ec.EllipticCurvePrivateKey,
               cert: x509.Certificate) -> str:
    header = {"alg": "ES256",
              "x5t": b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - JWS x5t is SHA-1
              "x5t#S256": b64url(cert.fingerprint(hashes.SHA256()))}
    signing_input = (b64url(json.dumps(header).encode()) + "."
                     + b64url(json.dumps(payload, separators=(",", ":")).encode()))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def verify(token: str, certs: Sequence[x509.Certificate]) -> dict[str, Any] | None:
    """The payload if *token* verifies with one of *certs*; otherwise None."""
    try:
        head_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(unb64url(head_b64))
        signature = unb64url(sig_b64)
        payload = json.loads(unb64url(payload_b64))
    except (ValueError, TypeError):
        return None
    data = f"{head_b64}.{payload_b64}".encode()
    for cert in certs:
        key = cert.public_key()
        try:
            if header.get("alg") == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                           int.from_bytes(signature[32:], "big"))
                key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            elif header.get("alg") == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                continue
        except (InvalidSignature, ValueError):
            continue
        return payload if isinstance(payload, dict) else None
    return None
