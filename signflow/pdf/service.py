"""The :class:`~signflow.core.ports.PdfService` implementation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyhanko.sign.signers import Signer
from pyhanko.sign.timestamps import TimeStamper

from signflow.core.ports import PreparedDocument, SignerBlock
from signflow.errors import UnsupportedDocument
from signflow.pdf import isolate
from signflow.pdf import prepare as _prepare
from signflow.pdf import sign as _sign
from signflow.pdf.evidence import EvidenceSigner, evidence_document
from signflow.pdf.keys import simple_signer
from signflow.pdf.pki import Pki, issue_signer_certificate, ocsp_good

REASONS = {
    "certify": {"sv": "Certifierat av signflow", "en": "Certified by signflow"},
    "approve": {"sv": "Justerat och signerat", "en": "Approved and signed"},
}


class PdfWorks:
    """Prepares, signs and seals protocols with the service's keys."""

    def __init__(
        self, pki: Pki, timestamper: TimeStamper, *, base_url: str,
        max_bytes: int, max_pages: int, seal: Signer | None = None,
    ) -> None:
        self.pki = pki
        self.timestamper = timestamper
        self.base_url = base_url
        self.max_bytes = max_bytes
        self.max_pages = max_pages
        # Parsed once: pyHanko's stock path re-parses the key on every signature.
        self._seal = seal or simple_signer(pki.seal, [pki.root.cert])

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
        certified = _sign.certify(
            clean.data, clean.fields, seal=self._seal, timestamper=self.timestamper,
            reason=REASONS["certify"][language],
        )
        return PreparedDocument(certified, clean.page_count)

    def sign_field(
        self, data: bytes, *, block: SignerBlock, language: str, evidence: Mapping[str, Any]
    ) -> bytes:
        pair = issue_signer_certificate(
            self.pki, name=block.name, organisation=block.organisation, title=block.title,
            transaction_id=block.transaction_id, base_url=self.base_url,
        )
        carried = evidence_document(evidence)
        signer = simple_signer(pair, [self.pki.signer_ca.cert, self.pki.root.cert],
                               cls=EvidenceSigner, evidence=carried)
        return _sign.approve(data, block, signer=signer, timestamper=self.timestamper,
                             language=language, reason=REASONS["approve"][language],
                             validation=_sign.validation_context(
                                 self.pki, ocsps=[ocsp_good(self.pki.signer_ca, pair.cert)]),
                             extra_bytes=len(carried))

    def seal(self, data: bytes) -> bytes:
        return _sign.seal(data, pki=self.pki, timestamper=self.timestamper)

    def renew(self, data: bytes) -> bytes:
        return _sign.renew(data, pki=self.pki, timestamper=self.timestamper)
