"""Checking a provider's own signature inside carried evidence, per provider.

Each check takes the evidence's ``signature`` (base64, as the provider gave
it), the provider's roots and the order reference, and answers what the
provider's signature covers, or that it does not verify.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509


@dataclass(frozen=True)
class ProviderSignature:
    valid: bool
    #: What the person approved without seeing (base64): our document hash.
    non_visible_b64: str
    #: What the person was shown (base64, as sent).
    visible_b64: str = ""
    problems: tuple[str, ...] = ()


def _bankid(signature_b64: str, roots: Sequence[x509.Certificate], order_ref: str
            ) -> ProviderSignature:
    from signflow.adapters.bankid_xml import check_signature

    try:
        xml = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return ProviderSignature(False, "")
    check = check_signature(xml, roots)
    return ProviderSignature(check.valid, check.non_visible_b64, check.visible_b64,
                             check.problems)


def _freja(signature_b64: str, roots: Sequence[x509.Certificate], order_ref: str
           ) -> ProviderSignature:
    from signflow.adapters import jws

    try:
        token = base64.b64decode(signature_b64, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return ProviderSignature(False, "")
    outer = jws.verify(token, roots) or {}
    inner = jws.verify(str((outer.get("signatureData") or {}).get("userSignature", "")),
                       roots) or {}
    valid = bool(outer and inner) and outer.get("signRef") == order_ref
    return ProviderSignature(valid, str(inner.get("binaryData", "")),
                             str(inner.get("text", "")),
                             () if valid else ("Freja's signed result does not verify",))


CHECKS: dict[str, Callable[[str, Sequence[x509.Certificate], str], ProviderSignature]] = {
    "bankid": _bankid,
    "freja": _freja,
}
