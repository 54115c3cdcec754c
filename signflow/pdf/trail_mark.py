"""The audit trail's head, timestamped and written into the signed PDF.

When a round completes, the head of its hash-chained audit trail (the hash of
its newest event, which commits to every event before it) is timestamped by
the TSA (RFC 3161, the imprint being the head's own SHA-256 value) and written
into the document's XMP metadata, in the same revision as the validation data,
just before the closing document timestamp covers both.  So the published PDF
commits to the whole trail as it stood when the last signature was recorded:
anyone holding the trail (the API's ``/audit``, the auditors' evidence ZIP) can
recompute it to that event and compare, and nobody can rewrite the trail's
past afterwards without the PDF showing it.

XMP is the carrier because validators allow a metadata update after a
signature (pyHanko's ``MetadataUpdateRule``): the earlier signatures stay at
their modification level.  Only the head, its sequence number and the token go
in; the trail itself (names, e-mail addresses) stays with the service, and not
even the round's ID is added (an anonymous verifier learns only that the file
is ours).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from lxml import etree
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata import model
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from signflow.core.ports import TrailHead

#: Our XMP namespace (a UUID OID, like the CMS attributes in :mod:`signflow.pdf.evidence`).
NS = "urn:oid:2.25.263462986969600253743556797205322566521#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
FIELDS = ("Seq", "Head", "HeadTimestamp")
#: The most XMP we read back; ours is about 6 KB, a document's own rarely 100 KB.
MAX_XMP = 4 * 1024 * 1024


@dataclass(frozen=True)
class TrailMark:
    """What a PDF says of the audit trail it commits to."""

    seq: int
    #: The head: lower-case hex SHA-256 of event *seq*.
    head: str
    #: The TSA's RFC 3161 token over the head (DER).
    token: bytes


@dataclass(frozen=True)
class TrailReport:
    """The verifier's finding on a PDF's audit-trail mark."""

    seq: int
    head: str
    #: When the TSA saw the head (RFC 3339, UTC), as its token says.
    timestamped_at: str | None
    #: The token is intact, over this head, from a TSA chaining to a trusted root, and
    #: the mark is in a revision an intact document timestamp covers.
    timestamp_valid: bool
    problems: tuple[str, ...] = ()
    #: Whether a trail the verifier was given (the auditors' ZIP, the service's
    #: records) holds this head as event *seq*, intact; None: no trail was given.
    matches_trail: bool | None = None


def write(writer: IncrementalPdfFileWriter, head: TrailHead, token: bytes) -> None:
    """Have *writer* put the mark into the XMP metadata it writes with its revision.

    pyHanko rewrites the XMP on every write from the writer's document metadata,
    so the mark goes in as pyHanko's "extra XMP"; a later revision (an LTA
    renewal) writes XMP without it, which is why :func:`read` looks in the
    revision a document timestamp covers, not in the newest one.
    """
    # not the round's ID: the file tells an anonymous reader only that it is ours
    values = (str(head.seq), head.hash, base64.b64encode(token).decode("ascii"))
    writer.document_meta.xmp_extra.append(model.XmpStructure.of(*(
        (model.ExpandedName(ns=NS, local_name=name), model.XmpValue(value))
        for name, value in zip(FIELDS, values, strict=True))))


def _parse(data: bytes) -> etree._Element | None:
    """XMP without entities, DTDs or the network (a document's own may be hostile)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_pis=True)
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError:
        return None


def _bounded(stream: generic.StreamObject) -> bytes | None:
    """The stream's data if it is plain or Flate and at most :data:`MAX_XMP` decoded
    (ours is plain; a hostile file's metadata must not take the verifier's memory)."""
    filters = stream.get("/Filter")
    if filters is None:
        data = stream.encoded_data
    elif filters in ("/FlateDecode", generic.ArrayObject(["/FlateDecode"])):
        inflate = zlib.decompressobj()
        data = inflate.decompress(stream.encoded_data, MAX_XMP + 1)
    else:
        return None
    return data if len(data) <= MAX_XMP else None


def read(reader: PdfFileReader, revision: int) -> TrailMark | None:
    """The mark in the XMP metadata of the file as it was at *revision*, if any."""
    try:
        root = reader.get_historical_resolver(revision).root
        if "/Metadata" not in root:
            return None
        ref = root.raw_get("/Metadata")
        if not isinstance(ref, generic.IndirectObject):
            return None
        # (read at that revision: the historical resolver cannot subsume the
        # metadata stream pyHanko's writer rewrote in place)
        stream = reader.get_object(ref.reference, revision=revision)
        if not isinstance(stream, generic.StreamObject):
            return None
        data = _bounded(stream)
        if data is None:
            return None
        xmp = _parse(data)
    except Exception:  # noqa: BLE001 - a broken metadata stream carries no mark
        return None
    if xmp is None:
        return None
    for desc in xmp.iter(f"{{{RDF}}}Description"):
        # pyHanko writes simple values as attributes; XMP allows elements as well
        found = {name: desc.get(f"{{{NS}}}{name}") or desc.findtext(f"{{{NS}}}{name}")
                 for name in FIELDS}
        if not all(found.values()):
            continue
        try:
            return TrailMark(seq=int(str(found["Seq"])),
                             head=str(found["Head"]).lower(),
                             token=base64.b64decode(str(found["HeadTimestamp"]), validate=True))
        except (ValueError, binascii.Error):
            return None
    return None


def unproven(mark: TrailMark, problem: str) -> TrailReport:
    """The mark as found, not judged: *problem* says why it proves nothing."""
    return TrailReport(seq=mark.seq, head=mark.head, timestamped_at=None, timestamp_valid=False,
                       problems=(problem,))


def judge(mark: TrailMark, context: ValidationContext) -> TrailReport:
    """Check the mark's token: intact, over the head, from a trusted TSA."""
    problems: list[str] = []
    moment: datetime | None = None
    valid = False
    try:
        head = bytes.fromhex(mark.head)
        if len(head) != 32:
            raise ValueError("not a SHA-256 value")
        content = cms.ContentInfo.load(mark.token)
        signed = content["content"]
        status = asyncio.run(validate_tst_signed_data(
            signed, context, lambda algorithm: head if algorithm == "sha256" else b""))
        moment = status.get("timestamp")
        valid = bool(status.get("intact") and status.get("valid")
                     and status.get("trust_problem_indic") is None)
        if not status.get("intact"):
            problems.append("the audit trail's timestamp is not over the head the file names")
        elif not valid:
            problems.append("the audit trail's timestamp is not from a trusted "
                            "timestamping service")
    except Exception as exc:  # noqa: BLE001 - any malformed token is a finding, not a crash
        problems.append(f"the audit trail's timestamp cannot be read: {exc}")
    return TrailReport(
        seq=mark.seq, head=mark.head,
        timestamped_at=moment.isoformat().replace("+00:00", "Z") if moment else None,
        timestamp_valid=valid, problems=tuple(problems))
