"""The JSON API for the secretariat, auditors and integrators (/api/v1)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

from flask import Blueprint, Response, g, jsonify, request, send_file
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from signflow.core import idempotency, manage, rounds, signing
from signflow.core.audit import round_events, verify_chain
from signflow.core.models import Document, Round, Signer, User
from signflow.errors import InvalidInput, NotFound, UnsupportedDocument
from signflow.pdf.etsi_report import verify_isolated_etsi
from signflow.pdf.verify import verify_isolated
from signflow.web import db, read_upload, runtime
from signflow.web.auth import current_user, require
from signflow.web.limits import bounds, verification_slot
from signflow.web.serialize import round_dict

bp = Blueprint("api", __name__, url_prefix="/api/v1")
READERS = ("secretariat", "auditor", "admin")


@bp.post("/rounds")
@require("secretariat", "admin")
def create_round():
    """Start a round.  With ``Idempotency-Key``, a retry of the same request (within
    a day) answers with the round the first one made (``Idempotent-Replayed: true``)."""
    raw = request.form.get("round")
    if raw is None:
        raise InvalidInput("multipart field 'round' (JSON) is required", field="round")
    try:
        spec = rounds.parse_round_spec(json.loads(raw))
    except json.JSONDecodeError:
        raise InvalidInput("round is not valid JSON", field="round") from None
    key = request.headers.get("Idempotency-Key")
    pdf = read_upload()
    session, svc = db(), runtime().services
    if key is None:
        round_ = rounds.start_round(session, svc, g.user, spec, pdf)
        session.commit()
        return _created(round_)
    print_ = idempotency.fingerprint(raw, pdf)
    earlier = idempotency.earlier_round(session, g.user, idempotency.check_key(key), print_,
                                        svc.clock.now())
    if earlier is not None:
        return _created(earlier, replayed=True)
    round_ = rounds.start_round(session, svc, g.user, spec, pdf)
    idempotency.remember(session, g.user, key, print_, round_, svc.clock.now())
    try:
        session.commit()
    except IntegrityError:  # the same key, committed a moment ago by a twin request
        session.rollback()
        earlier = idempotency.earlier_round(session, g.user, key, print_, svc.clock.now())
        if earlier is None:
            raise
        return _created(earlier, replayed=True)
    return _created(round_)


def _created(round_: Round, *, replayed: bool = False):
    headers = {"Location": f"/api/v1/rounds/{round_.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return jsonify(round_dict(round_)), 201, headers


@bp.get("/rounds")
@require(*READERS)
def list_rounds():
    rows = db().scalars(select(Round).where(Round.organisation_id == g.user.organisation_id)
                        .order_by(Round.created_at.desc()).limit(500))
    return jsonify(rounds=[round_dict(r) for r in rows])


@bp.get("/rounds/<round_id>")
@require(*READERS)
def get_round(round_id: str):
    return jsonify(round_dict(rounds.visible_round(db(), g.user, round_id)))


@bp.get("/rounds/<round_id>/document")
@require(*READERS)
def get_document(round_id: str):
    return document_response(rounds.visible_round(db(), g.user, round_id))


def document_response(round_: Round) -> Response:
    """The round's current PDF (prepared, or signed once complete): the API's and the page's."""
    doc = round_.current_document
    if doc is None:
        raise NotFound("the round has no document")
    data = runtime().services.blobs.get(doc.storage_key)
    suffix = "signerad" if round_.status == "completed" else doc.kind
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{round_.id}-{suffix}.pdf", etag=doc.sha256)


@bp.get("/rounds/<round_id>/audit")
@require(*READERS)
def get_audit(round_id: str):
    round_ = rounds.visible_round(db(), g.user, round_id)
    events = round_events(db(), round_.id)
    report = verify_chain(events)
    return jsonify(events=events, head=report.head, intact=report.intact)


@bp.get("/rounds/<round_id>/evidence")
@require(*READERS)  # the use case answers 404 for other organisations, 403 for the secretariat
def get_evidence(round_id: str):
    """The evidence ZIP: the provider's evidence in the clear, personal numbers and all."""
    session = db()
    round_ = rounds.record_evidence_download(session, g.user, round_id)
    session.commit()
    return evidence_response(session, round_)


def evidence_response(session, round_: Round) -> Response:
    """The evidence ZIP of *round_* (download already recorded): the API's and the page's."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        doc = round_.current_document
        if doc is not None:
            zf.writestr(f"{round_.id}.pdf", runtime().services.blobs.get(doc.storage_key))
        events = round_events(session, round_.id)
        zf.writestr("audit.json", json.dumps(
            {"round": round_dict(round_), "events": events,
             "head": verify_chain(events).head}, ensure_ascii=False, indent=1))
        for signer in round_.signers:
            evidence = signing.evidence_for(session, runtime().services, signer)
            if evidence:
                zf.writestr(f"bankid/{signer.position}-{signer.id}.json",
                            json.dumps(evidence, ensure_ascii=False, indent=1))
    return Response(buf.getvalue(), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{round_.id}-evidence.zip"'})


@bp.post("/rounds/<round_id>/remind")
@require("secretariat", "admin")
def remind(round_id: str):
    session = db()
    reminded = rounds.remind(session, runtime().services, g.user, round_id)
    session.commit()
    return jsonify(reminded=[s.id for s in reminded])


@bp.post("/rounds/<round_id>/signers/<signer_id>/replace")
@require("secretariat", "admin")
def replace_signer(round_id: str, signer_id: str):
    """Another person in a signer's place: ``{"name", "email", "personal_number"}``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send the new person as a JSON object: name, email, personal_number")
    session = db()
    manage.replace_signer(session, runtime().services, g.user, round_id, signer_id, body)
    session.commit()
    return jsonify(round_dict(rounds.visible_round(session, g.user, round_id)))


@bp.post("/rounds/<round_id>/deadline")
@require("secretariat", "admin")
def extend_deadline(round_id: str):
    """A later deadline: ``{"deadline": "YYYY-MM-DD"}`` (the end of that day, Swedish time)."""
    body = request.get_json(silent=True)
    raw = body.get("deadline") if isinstance(body, dict) else None
    try:
        day = date.fromisoformat(str(raw))
    except ValueError:
        raise InvalidInput("deadline must be a date: YYYY-MM-DD", field="deadline") from None
    session = db()
    round_ = manage.extend_deadline(session, runtime().services, g.user, round_id, day)
    session.commit()
    return jsonify(round_dict(round_))


@bp.post("/rounds/<round_id>/cancel")
@require("secretariat", "admin")
def cancel(round_id: str):
    session = db()
    round_ = rounds.cancel(session, runtime().services, g.user, round_id)
    session.commit()
    return jsonify(round_dict(round_))


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
    with verification_slot(data):
        report = verify_isolated(data, trust.anchors, trust.provider_roots,
                                 evidence_keys=runtime().evidence_keys)
    if request.args.get("format") == "pdf":
        from signflow.pdf.report import report_pdf

        lang = "en" if request.args.get("language") == "en" else "sv"
        sealed = runtime().services.pdf.seal_report(report_pdf(report, lang), lang)
        return Response(sealed, mimetype="application/pdf", headers={
            "Content-Disposition": 'attachment; filename="verifiering.pdf"'})
    body = report.to_dict()
    body.update(_records_of(report, caller))
    return jsonify(body)


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


def _records_of(report, caller: User | None) -> dict:
    """What this service's records add to *report* for *caller*."""
    issued = select(Document.round_id).where(Document.sha256 == report.sha256)
    known = db().scalar(issued.limit(1)) is not None
    if not known or caller is None:
        return {"known_to_service": known}
    round_ = db().scalar(select(Round).where(Round.id.in_(issued),
                                             Round.organisation_id == caller.organisation_id)
                         .order_by(Round.created_at.desc()).limit(1))
    if round_ is None:
        return {"known_to_service": True}
    return {"known_to_service": True, "round": _cross_check(round_, report)}


def _cross_check(round_: Round, report) -> dict:
    """Compare a file we issued with our records: signers, transactions, times, chain."""
    from datetime import datetime

    events = round_events(db(), round_.id)
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
    times_ok = all(
        same_time(signed_at.get(s.transaction_id),
                  in_pdf[s.transaction_id].evidence.completed_at
                  if in_pdf[s.transaction_id].evidence else None)
        for s in signers if s.transaction_id in in_pdf)
    return {"id": round_.id, "title": round_.title, "status": round_.status,
            "signers_required": len(signers), "signers_in_document": len(in_pdf),
            "all_required_signers_present": not missing,
            "transaction_ids_match": set(in_pdf) <= set(signed_at),
            "times_match_audit_trail": times_ok,
            "chain_intact": verify_chain(events).intact}


@bp.get("/trust-anchors")
def trust_anchors():
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = b"".join(c.public_bytes(Encoding.PEM) for c in runtime().trust_anchors())
    return Response(pem, mimetype="application/x-pem-file")
