"""``POST /api/v1/verify``: public verification, and what our records add for
the round's own organisation (on the API's blueprint)."""

from __future__ import annotations

from flask import Response, jsonify, request
from sqlalchemy import select

from signflow.core.audit import round_events, verify_chain
from signflow.core.models import Document, Round, Signer, User
from signflow.errors import UnsupportedDocument
from signflow.pdf.etsi_report import verify_isolated_etsi
from signflow.pdf.verify import VerificationReport, verify_isolated
from signflow.web import db, read_upload, runtime
from signflow.web.api import READERS, bp
from signflow.web.auth import current_user
from signflow.web.limits import bounds, verification_slot


@bp.post("/verify")
def verify():
    """The verdict on an uploaded PDF, judged as ``signflow verify`` judges it.

    Anyone may ask.  That this service issued the file is public
    (``known_to_service``); what its records say of the round (id, title,
    status, signers and the cross-check against them) goes only to a token of
    the round's organisation.  A token that is sent must be valid (401).
    ``format=pdf`` answers with the one-page report, ``format=etsi`` with the
    ETSI TS 119 102-2 validation report (XML).

    Bounded (:mod:`signflow.web.limits`): 413 too large, 422 ``too_costly``
    (pages × signatures), 429 ``rate_limited``, 503 ``busy``; the last two with
    ``Retry-After``.
    """
    caller = _optional_caller()
    data = read_upload(max_bytes=bounds().max_bytes)
    if request.args.get("format") == "etsi":
        with verification_slot(data):
            return _etsi_response(data)
    trust = runtime().trust_settings()
    with verification_slot(data) as workers:
        report = verify_isolated(data, trust.anchors, trust.provider_roots,
                                 evidence_keys=runtime().evidence_keys, workers=workers)
    records, report = _records_of(report, caller)
    if request.args.get("format") == "pdf":
        from signflow.pdf.report import report_pdf

        lang = "en" if request.args.get("language") == "en" else "sv"
        sealed = runtime().services.pdf.seal_report(report_pdf(report, lang), lang)
        return Response(sealed, mimetype="application/pdf", headers={
            "Content-Disposition": 'attachment; filename="verifiering.pdf"'})
    return jsonify(report.to_dict() | records)


def _etsi_response(data: bytes) -> Response:
    trust = runtime().trust_settings()
    verified = verify_isolated_etsi(data, trust.anchors, trust.provider_roots,
                                    evidence_keys=runtime().evidence_keys)
    if verified.xml is None:
        raise UnsupportedDocument("the file has no signatures to report on", code="no_signatures")
    name = f"verifiering-{verified.report.sha256[:12]}.xml"
    return Response(verified.xml, mimetype="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def _optional_caller() -> User | None:
    """The user of the request's token, or None for an anonymous caller."""
    if "Authorization" not in request.headers:
        return None
    user = current_user()
    return user if user.role in READERS else None


def _records_of(report: VerificationReport, caller: User | None
                ) -> tuple[dict, VerificationReport]:
    """What this service's records add to *report* for *caller*, and the report
    with its audit-trail head held to the round's trail where the caller may see it."""
    issued = select(Document.round_id).where(Document.sha256 == report.sha256)
    known = db().scalar(issued.limit(1)) is not None
    if not known or caller is None:
        return {"known_to_service": known}, report
    round_ = db().scalar(select(Round).where(Round.id.in_(issued),
                                             Round.organisation_id == caller.organisation_id)
                         .order_by(Round.created_at.desc()).limit(1))
    if round_ is None:
        return {"known_to_service": True}, report
    events = round_events(db(), round_.id)
    held = report.held_to(events)
    return {"known_to_service": True, "round": _cross_check(round_, held, events)}, held


def _cross_check(round_: Round, report: VerificationReport, events: list[dict]) -> dict:
    """Compare a file we issued with our records: signers, transactions, times, chain."""
    from datetime import datetime

    signed_at = {e["data"].get("order_ref"): e["at"] for e in events
                 if e["type"] == "signer.signed"}
    in_pdf = {s.transaction_id: s for s in report.signatures if s.transaction_id}
    signers: list[Signer] = list(round_.signers)

    def same_time(a: str | None, b: str | None) -> bool:
        if not a or not b:
            return False
        parse = datetime.fromisoformat
        return abs((parse(a.replace("Z", "+00:00")) - parse(b.replace("Z", "+00:00")))
                   .total_seconds()) < 1

    missing = [s.id for s in signers if s.transaction_id not in in_pdf]
    def completed_at(transaction_id: str) -> str | None:
        evidence = in_pdf[transaction_id].evidence
        return evidence.completed_at if evidence else None

    times_ok = all(same_time(signed_at.get(s.transaction_id), completed_at(s.transaction_id))
                   for s in signers if s.transaction_id in in_pdf)
    return {"id": round_.id, "title": round_.title, "status": round_.status,
            "signers_required": len(signers), "signers_in_document": len(in_pdf),
            "all_required_signers_present": not missing,
            "transaction_ids_match": set(in_pdf) <= set(signed_at),
            "times_match_audit_trail": times_ok,
            "chain_intact": verify_chain(events).intact,
            # the head the file's document timestamp covers is this round's trail
            "audit_trail_matches": report.audit_trail.matches_trail
            if report.audit_trail else None}
