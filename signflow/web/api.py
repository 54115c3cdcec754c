"""The JSON API for the secretariat, auditors and integrators (/api/v1)."""

from __future__ import annotations

import io
import json
import zipfile

from flask import Blueprint, Response, g, jsonify, request, send_file
from sqlalchemy.exc import IntegrityError

from signflow.core import idempotency, manage, rounds, signing
from signflow.core.audit import GENESIS, next_event, round_events, verify_chain
from signflow.core.models import Round, User
from signflow.core.states import RoundStatus
from signflow.errors import Busy, InvalidInput, NotFound
from signflow.pdf.event_log import event_log_pdf
from signflow.pdf.event_words import RoundFacts, event_log
from signflow.web import db, json_date, json_sent, read_upload, runtime, whole_unicode
from signflow.web.auth import require
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
        parsed = whole_unicode(json.loads(raw))
    except (ValueError, RecursionError):  # JSONDecodeError, 4,300+ digits, deep nesting
        raise InvalidInput("round is not valid JSON", field="round") from None
    spec = rounds.parse_round_spec(parsed)
    key = request.headers.get("Idempotency-Key")
    pdf = read_upload()
    session, svc = db(), runtime().services
    if key is None:
        round_ = rounds.start_round(session, svc, g.user, spec, pdf)
        session.commit()
        return _created(round_)
    print_ = idempotency.fingerprint(parsed, pdf)
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
    """The organisation's rounds, newest first: ``?q=`` (title or a signer's name),
    ``?status=``, ``?page=`` (from 1) and ``?per_page=`` (1–100, default 50)."""
    status = request.args.get("status", "")
    if status and status not in {s.value for s in RoundStatus}:
        raise InvalidInput(f"status must be one of {', '.join(s.value for s in RoundStatus)}",
                           field="status")
    found = manage.find_rounds(db(), g.user, query=request.args.get("q", ""), status=status,
                               page=_whole("page", 1, 1, 100_000),
                               per_page=_whole("per_page", 50, 1, 100), past_the_end=True)
    return jsonify(rounds=[round_dict(r) for r in found.rounds], total=found.total,
                   page=found.page, pages=found.pages)


def _whole(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # ASCII digits, and few: "²".isdigit() holds but int() refuses it, as it refuses
    # more than 4,300 digits, with a ValueError (a 500)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return int(raw)


@bp.after_request
def _etag(response: Response) -> Response:
    """Reads carry an ETag; ``If-None-Match`` with it answers 304, no body."""
    if (request.method == "GET" and response.status_code == 200
            and not response.direct_passthrough):
        if not response.get_etag()[0]:
            response.add_etag()
        response.make_conditional(request)
    return response


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
    name = (signing.signed_file_name(round_.title, round_.language)
            if round_.status == "completed" else f"{round_.id}-{doc.kind}.pdf")
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=name, etag=doc.sha256)


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
    return evidence_download(db(), g.user, round_id)


def evidence_download(session, user: User, round_id: str) -> Response:
    """The evidence ZIP for *user*, the API's and the page's.

    The ZIP's sealed Händelselogg shows the download that made it, yet the slow
    part (sealing, with the TSA) holds nothing: the coming event is made from
    the trail as read, the ZIP with it, and only then is the round held, the
    event appended as made and the download committed, if the trail has not
    moved meanwhile (else again).  A TSA that is down answers 503 and leaves no
    record of a download that did not happen.
    """
    svc = runtime().services
    for _ in range(3):
        round_ = rounds.evidence_round(session, user, round_id)
        events = round_events(session, round_.id)
        at = svc.clock.now()
        coming = next_event(events, *rounds.evidence_download_event(user), at=at)
        zipped = evidence_zip(session, round_, [*events, coming])
        session.rollback()  # hold no transaction through the sealing
        after = events[-1]["hash"] if events else GENESIS
        if rounds.record_evidence_download(session, user, round_id, at=at, after=after):
            session.commit()
            return Response(zipped, mimetype="application/zip", headers={
                "Content-Disposition": f'attachment; filename="{round_id}-evidence.zip"'})
        session.rollback()
    raise Busy("the round's trail kept changing while its evidence was made; try again",
               code="busy", retry_after=5)


def evidence_zip(session, round_: Round, events: list[dict]) -> bytes:
    """The evidence ZIP of *round_* with *events* as its trail (and Händelselogg)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        doc = round_.current_document
        if doc is not None:
            zf.writestr(f"{round_.id}.pdf", runtime().services.blobs.get(doc.storage_key))
        zf.writestr("audit.json", json.dumps(
            {"round": round_dict(round_), "events": events,
             "head": verify_chain(events).head}, ensure_ascii=False, indent=1))
        zf.writestr(event_log_name(round_), sealed_event_log(round_, events))
        for signer in round_.signers:
            evidence = signing.evidence_for(session, runtime().services, signer)
            if evidence:
                zf.writestr(f"bankid/{signer.position}-{signer.id}.json",
                            json.dumps(evidence, ensure_ascii=False, indent=1))
    return buf.getvalue()


@bp.get("/rounds/<round_id>/events.pdf")
@require(*READERS)
def get_event_log(round_id: str):
    """The round's Händelselogg: every event in words, sealed by the service."""
    session = db()
    return event_log_response(session, rounds.visible_round(session, g.user, round_id))


def event_log_response(session, round_: Round) -> Response:
    """The Händelselogg of *round_* as a download: the API's and the page's."""
    data = sealed_event_log(round_, round_events(session, round_.id))
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{round_.id}-{event_log_name(round_)}", max_age=0)


def event_log_name(round_: Round) -> str:
    """The event log's file name, in the round's language (as the log itself)."""
    return "handelselogg.pdf" if round_.language == "sv" else "event-log.pdf"


def sealed_event_log(round_: Round, events: list[dict]) -> bytes:
    """*events* of *round_* as its Händelselogg in the round's language, certified by
    the service's seal (no change allowed after it), timestamped, B-LTA."""
    services = runtime().services
    workflow = services.workflows.get(round_.workflow)
    title = workflow.title.get(round_.language, "") if workflow else ""
    facts = RoundFacts(
        id=round_.id, title=round_.title, organisation=round_.organisation.name,
        workflow=f"{title} ({round_.workflow})" if title else round_.workflow,
        status=round_.status, language=round_.language,
        signers={s.id: (s.name, s.role) for s in round_.signers})
    pdf = event_log_pdf(event_log(facts, events, issued=services.clock.now()))
    return services.pdf.seal_report(pdf, round_.language, kind="event_log")


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
    """Another person in a signer's place: ``{"name", "email", "personal_number",
    "organisation", "title"}`` (the last two as the signature page shall print them)."""
    body = json_sent()
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
    day = json_date("deadline")
    session = db()
    round_ = manage.extend_deadline(session, runtime().services, g.user, round_id, day)
    session.commit()
    return jsonify(round_dict(round_))


@bp.post("/rounds/<round_id>/cancel")
@require("secretariat", "admin")
def cancel(round_id: str):
    """Cancel the round; ``{"reason": "…"}`` (optional) is told to the signers."""
    body = json_sent()
    session = db()
    round_ = rounds.cancel(session, runtime().services, g.user, round_id,
                           body.get("reason") if isinstance(body, dict) else None)
    session.commit()
    return jsonify(round_dict(round_))


@bp.get("/trust-anchors")
def trust_anchors():
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = b"".join(c.public_bytes(Encoding.PEM) for c in runtime().trust_anchors())
    return Response(pem, mimetype="application/x-pem-file")


# the routes of these modules are on bp too
from signflow.web import api_notice, api_verify, api_webhooks  # noqa: E402,F401
