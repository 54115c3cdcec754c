"""The :class:`~signflow.core.ports.PdfService` implementation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers import Signer
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from signflow.core.ports import PreparedDocument, SignerBlock, TrailHead
from signflow.errors import Busy, UnsupportedDocument
from signflow.pdf import isolate
from signflow.pdf import prepare as _prepare
from signflow.pdf import sign as _sign
from signflow.pdf.approval import Dss, fill_signature_field
from signflow.pdf.cms import CertRef, pades_signature
from signflow.pdf.evidence import evidence_attributes
from signflow.pdf.keys import (
    parsed_for_threads,
    simple_signer,
    timestamp_token_for,
    warm_timestamper,
)
from signflow.pdf.pages import font_data
from signflow.pdf.pki import (
    Pki,
    issue_signer_certificate,
    load_evidence_certificates,
    ocsp_good,
)

#: Room for the CMS besides the evidence: ours is about 3.5 KB (three
#: certificates, a token carrying two); an outside TSA's token with a longer
#: RSA chain can take several KB more.
RESERVED = 16384

REASONS = {
    "certify": {"sv": "Certifierat av signflow", "en": "Certified by signflow"},
    "approve": {"sv": "Justerat och signerat", "en": "Approved and signed"},
    # what the service itself issues, by kind (:meth:`PdfWorks.seal_report`)
    "report": {"sv": "Verifieringsrapport utfärdad av signflow",
               "en": "Verification report issued by signflow"},
    "event_log": {"sv": "Händelselogg utfärdad av signflow",
                  "en": "Event log issued by signflow"},
    "notice": {"sv": "Anslag om justering utfärdat av signflow",
               "en": "Notice of justering issued by signflow"},
}


@contextlib.contextmanager
def _timestamp_or_busy(consequence: str) -> Iterator[None]:
    """A TSA that cannot be reached, as :class:`Busy` (503, Retry-After) for the caller."""
    try:
        yield
    except (TimestampRequestError, requests.RequestException) as exc:
        raise Busy(f"the timestamp service cannot be reached just now, {consequence}; "
                   f"try again in a minute ({type(exc).__name__})",
                   code="timestamp_unavailable", retry_after=60) from None


class PdfWorks:
    """Prepares, signs and seals protocols with the service's keys."""

    def __init__(
        self, pki: Pki, timestamper: TimeStamper, *, base_url: str,
        max_bytes: int, max_pages: int,
        evidence_recipients: Sequence[x509.Certificate] | None = None,
        seal: Signer | None = None,
    ) -> None:
        self.pki = pki
        self.timestamper = timestamper
        self.base_url = base_url
        self.max_bytes = max_bytes
        self.max_pages = max_pages
        #: Certificates the identity evidence in each signature is sealed to
        #: (by default the development one in the keys dir).
        self.evidence_recipients = list(
            evidence_recipients or load_evidence_certificates(pki.keys_dir, ""))
        # Parsed once: pyHanko's stock path re-parses the key on every signature; and
        # wholly, now, since every request thread of the process uses this one
        self._seal = parsed_for_threads(seal or simple_signer(pki.seal, [pki.root.cert]))
        self._chain = [CertRef.of(pki.signer_ca.cert), CertRef.of(pki.root.cert)]
        self._tsa_cert = CertRef.of(pki.tsa.cert).der

    def warm(self) -> None:
        """Do now, at a worker's start, what its first job would otherwise wait for:
        fetch the TSA's sample token and read the signature font's metrics
        (fontTools loads its tables lazily)."""
        warm_timestamper(self.timestamper)
        font_data(False)
        font_data(True)

    def prepare(
        self, data: bytes, *, round_id: str, title: str, language: str, blocks: list[SignerBlock]
    ) -> PreparedDocument:
        if len(data) > self.max_bytes:  # refuse before paying for a child process
            raise UnsupportedDocument(
                f"the file is larger than {self.max_bytes // (1024 * 1024)} MB", code="too_large")
        clean = isolate.run(
            "prepare_clean", data, round_id=round_id, title=title, language=language,
            blocks=blocks, verify_url=f"{self.base_url}/verify", max_bytes=self.max_bytes,
            max_pages=self.max_pages,
        )
        assert isinstance(clean, _prepare.CleanDocument)
        # the document cannot be sealed without its timestamp: nothing is stored
        with _timestamp_or_busy("so the round was not started"):
            certified = _sign.certify(
                clean.data, clean.fields, seal=self._seal, timestamper=self.timestamper,
                reason=REASONS["certify"][language],
            )
        return PreparedDocument(certified, clean.page_count)

    def sign_field(
        self, data: bytes, *, block: SignerBlock, language: str, evidence: Mapping[str, Any],
        sealed_for: str = "",
    ) -> bytes:
        """The signer's PAdES signature (B-LT) in their field, as one incremental update.

        Per signature: a certificate for this act, the evidence as signed
        attributes (a public summary, and the provider's evidence sealed to the
        evidence certificates), a signature timestamp, and in the same revision
        the chain, CRLs and an OCSP response for the new certificate.
        """
        pair = issue_signer_certificate(
            self.pki, name=block.name, organisation=block.organisation, title=block.title,
            transaction_id=block.transaction_id, base_url=self.base_url,
        )
        cert = CertRef.of(pair.cert)
        own = x509.load_pem_x509_certificates(sealed_for.encode()) if sealed_for else []
        carried = evidence_attributes(evidence, [*self.evidence_recipients,
                                                 *(c for c in own
                                                   if c not in self.evidence_recipients)])

        def sign(digest: bytes) -> bytes:
            return pades_signature(
                digest=digest, cert=cert, key=pair.key, chain=self._chain,
                extra_attributes=carried,
                timestamp=lambda imprint: timestamp_token_for(self.timestamper, imprint))

        dss = Dss(certs=[cert.der, *(c.der for c in self._chain), self._tsa_cert],
                  ocsps=[ocsp_good(self.pki.signer_ca, pair.cert)],
                  crls=_sign.revocation_data(self.pki))
        return fill_signature_field(
            data, field_name=block.field_name, lines=_sign.stamp_lines(block, language),
            signer_name=block.name, reason=REASONS["approve"][language],
            signed_at=datetime.now(UTC), dss=dss, reserved=RESERVED + sum(map(len, carried)),
            sign=sign, font_name=font_data(False).name)

    def seal(self, data: bytes, *, trail: TrailHead | None = None) -> bytes:
        return _sign.seal(data, pki=self.pki, timestamper=self.timestamper, trail=trail)

    def seal_report(self, data: bytes, language: str = "sv", *, kind: str = "report") -> bytes:
        """Certify a document the service issues (*kind*: ``report``, ``event_log``,
        ``notice``) with its seal, no change allowed after it, timestamped and with
        its validation data (B-LTA): what the service found or recorded, and when,
        becomes evidence itself.  The seal's reason names the kind."""
        if kind not in ("report", "event_log", "notice"):
            raise ValueError(f"no sealed document of kind {kind!r}")
        with _timestamp_or_busy("so the document cannot be issued sealed"):
            certified = _sign.certify(data, [], seal=self._seal, timestamper=self.timestamper,
                                      reason=REASONS[kind][language],
                                      permissions=MDPPerm.NO_CHANGES)
            return self.seal(certified)

    def renew(self, data: bytes) -> bytes:
        return _sign.renew(data, pki=self.pki, timestamper=self.timestamper)
