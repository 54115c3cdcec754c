"""Public pages: the start page and browser verification."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from signflow.pdf.verify import verify_isolated
from signflow.web import read_upload, runtime

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html", dev=runtime().settings.dev_mode)


@bp.get("/verify")
def verify_form():
    """Where the QR code on every page leads: upload the PDF to check it."""
    return render_template("index.html", dev=False, document=request.args.get("document", ""))


@bp.post("/verify")
def verify():
    """The verdict in plain words, judged as ``signflow verify`` and the API judge it."""
    from signflow.pdf.report import describe, evidence_words, headline, published

    data = read_upload()
    trust = runtime().trust_settings()
    report = verify_isolated(data, trust.anchors, trust.provider_roots,
                             evidence_keys=runtime().evidence_keys)
    return render_template("verify.html", report=report, headline=headline(report),
                           published=published(report), describe=describe,
                           evidence_words=evidence_words)


@bp.get("/healthz")
def healthz():
    return {"ok": True}
