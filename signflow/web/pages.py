"""Public pages: the start page and the auditor's verification page.

``/verify`` needs no sign-in.  The verdict is shown in plain words
(:mod:`signflow.pdf.verdict_words`, the wording the PDF report and the command
line share) and can be downloaded as PDF, JSON or an ETSI TS 119 102-2
validation report (XML) without uploading again: the result page carries the
report and the XML, signed with the app's secret key, in its download form.
Nothing is kept on the server, so any worker can answer and no memory grows
with the number of visitors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import RequestEntityTooLarge

from signflow.errors import Busy, InvalidInput, RateLimited
from signflow.pdf.etsi_report import verify_isolated_etsi
from signflow.pdf.verdict_words import plain_verdict
from signflow.pdf.verify import VerificationReport
from signflow.web import read_upload, runtime
from signflow.web.limits import bounds, verification_slot
from signflow.web.security import current_language

bp = Blueprint("pages", __name__)
#: How long a result page's downloads keep working, in seconds.
REPORT_MAX_AGE = 3600
#: A document ID as the QR code on every page carries it.
DOCUMENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
FORMATS = ("pdf", "json", "etsi")


@bp.get("/")
def index():
    return render_template("index.html", dev=runtime().settings.dev_mode)


@bp.get("/verify")
def verify_form():
    """Where the QR code on every page leads: upload the PDF to check it."""
    return render_template("verify.html", document=_document_id())


@bp.post("/verify")
def verify():
    """The verdict in plain words, judged as ``signflow verify`` and the API judge it;
    with ``format=pdf|json|etsi`` the verdict itself, as a download."""
    try:
        data = read_upload(max_bytes=bounds().max_bytes)
        trust = runtime().trust_settings()
        # the ETSI report comes from the same run: it needs pyHanko's own objects,
        # which the page does not keep for a later download
        with verification_slot(data):  # a busy service: _busy below
            verified = verify_isolated_etsi(data, trust.anchors, trust.provider_roots,
                                            evidence_keys=runtime().evidence_keys)
    except InvalidInput as err:  # UnsupportedDocument too: not a PDF, too large, empty
        return _form_with_error(_upload_problem(err.code, err.message, err.fields),
                                _status(err.code))
    report, xml = verified.report, verified.xml
    if request.form.get("format") in FORMATS:
        return _download(report, request.form["format"], xml)
    return render_template("verify.html", verdict=plain_verdict(report, current_language()),
                           report=report, token=_signer().dumps(report.to_dict()),
                           etsi=_signer().dumps(xml.decode("utf-8")) if xml else None)


@bp.post("/verify/report")
def verify_download():
    """The verdict a result page shows, as PDF, JSON or ETSI XML, from the page's signed copy."""
    fmt = request.form.get("format", "pdf")
    try:
        body = _signer().loads(request.form.get("report", ""), max_age=REPORT_MAX_AGE)
        report = VerificationReport.from_dict(body)
        xml = _signer().loads(request.form.get("etsi", ""), max_age=REPORT_MAX_AGE) \
            if fmt == "etsi" else None
    except (BadSignature, TypeError, KeyError, ValueError):
        return _form_with_error(_("This result has expired. Upload the file again."), 400)
    return _download(report, fmt, xml.encode("utf-8") if isinstance(xml, str) else None)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err):
    return _form_with_error(_upload_problem("too_large", ""), 413)


@bp.errorhandler(Busy)  # RateLimited too: the verify form, saying when to come back
def _busy(err: Busy):
    seconds = err.fields.get("retry_after", 60)
    if isinstance(err, RateLimited):
        message = _("Too many files have been checked from your address. "
                    "Try again in %(seconds)s seconds.", seconds=seconds)
    else:
        message = _("The service is checking as many files as it can right now. "
                    "Try again in %(seconds)s seconds.", seconds=seconds)
    body, status = _form_with_error(message, 429 if isinstance(err, RateLimited) else 503)
    return body, status, {"Retry-After": str(seconds)}


def _document_id() -> str:
    value = request.args.get("document", "")
    return value if DOCUMENT_ID.fullmatch(value) else ""


def _form_with_error(message: str, status: int):
    return render_template("verify.html", document=_document_id(), upload_error=message), status


def _status(code: str) -> int:
    return {"too_large": 413, "not_pdf": 415}.get(code, 422 if code != "invalid_input" else 400)


def _upload_problem(code: str, message: str, fields: Mapping[str, object] | None = None) -> str:
    """An upload problem in the page's language (the verifier's message says which)."""
    fields = fields or {}
    limit = bounds().max_bytes // (1024 * 1024)
    if code == "too_large":
        return _("The file is larger than %(mb)s MB.", mb=limit)
    if code == "too_costly":
        return _("The file has %(pages)s pages and %(signatures)s signatures. This service "
                 "checks at most %(limit)s pages × signatures in one file, so it cannot "
                 "check this one.", pages=fields.get("pages"),
                 signatures=fields.get("signatures"), limit=fields.get("limit"))
    if code == "not_pdf" and "empty" in message:
        return _("The file is empty. Choose the signed PDF file.")
    if code == "not_pdf":
        return _("The file is not a PDF. Choose the signed PDF file.")
    if code == "encrypted":
        return _("The PDF is encrypted and cannot be checked.")
    if code == "invalid_input":
        return _("Choose the PDF file to check.")
    return _("The PDF cannot be read, so its signatures cannot be checked.")


def _download(report: VerificationReport, fmt: str, xml: bytes | None = None):
    name = f"{_('verification')}-{report.sha256[:12]}"
    if fmt == "etsi":
        if xml is None:  # a file without signatures: the standard's report needs one
            return _form_with_error(_("The file has no signatures to report on."), 422)
        return Response(xml, mimetype="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{name}.xml"'})
    if fmt == "json":
        body = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
        return Response(body, mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="{name}.json"'})
    from signflow.pdf.report import report_pdf

    sealed = runtime().services.pdf.seal_report(report_pdf(report, current_language()),
                                                current_language())
    return Response(sealed, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="signflow.verify-report")

