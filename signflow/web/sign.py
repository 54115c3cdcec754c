"""The signer's pages: read the protocol, sign with BankID, or decline."""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets

import segno
from flask import Blueprint, Response, jsonify, render_template, request, send_file

from signflow.adapters.bankid_messages import FLOWS, user_message
from signflow.core import rounds, signing
from signflow.core.models import Signer
from signflow.core.people import role_label
from signflow.errors import NotFound, ProviderError
from signflow.web import db, runtime
from signflow.web.errors import error_body, status_of

bp = Blueprint("sign", __name__, url_prefix="/sign")

TEXTS = {
    "sv": {
        "heading": "Signera protokoll", "role": "Din roll", "sign": "Signera med {app}",
        "open": "Öppna {app}", "other_device": "{app} på en annan enhet (QR-kod)",
        "show_qr": "Visa QR-kod i stället",
        "decline": "Neka signering", "reason": "Skäl (visas för sekretariatet)",
        "done": "Du har signerat", "declined": "Du har nekat att signera.",
        "closed": "Signeringen är avslutad", "scan": "Skanna QR-koden med {app}-appen",
        "same_device": "Öppna {app} på den här enheten", "cancel": "Avbryt",
        "missing": "Länken är ogiltig eller har gått ut.", "document": "Dokumentet",
        "open_pdf": "Öppna PDF", "transaction": "Transaktions-ID",
    },
    "en": {
        "heading": "Sign the minutes", "role": "Your role", "sign": "Sign with {app}",
        "open": "Open {app}", "other_device": "{app} on another device (QR code)",
        "show_qr": "Show a QR code instead",
        "decline": "Decline to sign", "reason": "Reason (shown to the secretariat)",
        "done": "You have signed", "declined": "You declined to sign.",
        "closed": "Signing has ended", "scan": "Scan the QR code with the {app} app",
        "same_device": "Open {app} on this device", "cancel": "Cancel",
        "missing": "The link is invalid or has expired.", "document": "The document",
        "open_pdf": "Open PDF", "transaction": "Transaction ID",
    },
}


def _signer(token: str) -> Signer:
    return rounds.signer_for_token(db(), token, runtime().services.clock.now())


def _client_ip() -> str:
    # behind SIGNFLOW_PROXY_HOPS trusted proxies, ProxyFix has put the client's address here
    return request.remote_addr or "127.0.0.1"


#: User-Agents of phones and tablets: their page leads with "Öppna BankID".
MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)


def _on_phone() -> bool:
    return bool(MOBILE_UA.search(request.headers.get("User-Agent", "")))


def _asked(name: str) -> str:
    """A parameter of the request: JSON body, form or query string."""
    body = request.get_json(silent=True) if request.is_json else None
    value = (body if isinstance(body, dict) else {}).get(name) or request.values.get(name)
    return str(value or "")


def _flow() -> str:
    """``same_device`` (the app on this device) or ``qr`` (another device), as asked."""
    asked = _asked("flow")
    return asked if asked in FLOWS else "qr"


def _provider_failure(err: ProviderError, language: str):
    """The provider's refusal, worded for the signer (never the provider's own text)."""
    shown = str(err.fields.get("user_code") or err.fields.get("error_code") or "")
    return error_body(err.code, user_message(shown, language)), status_of(err)


@bp.get("/<token>")
def page(token: str):
    try:
        signer = _signer(token)
    except NotFound:
        lang = request.accept_languages.best_match(["sv", "en"]) or "sv"
        return render_template("sign_missing.html", t=TEXTS[lang], lang=lang), 404
    round_ = signer.round
    lang = round_.language
    app_name = "Freja eID" if round_.provider == "freja" else "BankID"
    texts = {k: v.format(app=app_name) for k, v in TEXTS[lang].items()}
    return render_template(
        "sign.html", t=texts, lang=lang, signer=signer, round=round_, token=token,
        role=role_label(signer.role, lang), phone=_on_phone(),
    )


@bp.get("/<token>/document")
def document(token: str):
    signer = _signer(token)
    doc = signer.round.current_document
    if doc is None:
        raise NotFound("no document")
    data = runtime().services.blobs.get(doc.storage_key)
    return send_file(io.BytesIO(data), mimetype="application/pdf",
                     download_name=f"{signer.round.id}.pdf")


DEVICE_COOKIE = "sf_device"


@bp.post("/<token>/bankid")
def start(token: str):
    """Start an order: ``flow=same_device`` (app on this device) or ``qr``."""
    session = db()
    signer = _signer(token)
    lang, flow = signer.round.language, _flow()
    device = request.cookies.get(DEVICE_COOKIE, "")
    if not (16 <= len(device) <= 64):
        device = secrets.token_urlsafe(24)
    svc = runtime().services
    # the app sends the person back to this page, where polling picks up again
    return_url = f"{svc.base_url}/sign/{token}#bankid" if flow == "same_device" else ""
    try:
        order = signing.start_signing(
            session, svc, signer, end_user_ip=_client_ip(), return_url=return_url,
            user_agent=request.headers.get("User-Agent", ""),
            device_id=hashlib.sha256(device.encode()).hexdigest())
    except ProviderError as err:
        return _provider_failure(err, lang)
    session.commit()
    resp = jsonify(order_ref=order.order_ref, auto_start_token=order.auto_start_token,
                   app_link=_app_link(signer, order.auto_start_token),
                   flow=flow, status="pending", hint_code="outstandingTransaction",
                   message=user_message("outstandingTransaction", lang, pending=True,
                                        flow=flow))
    resp.set_cookie(DEVICE_COOKIE, device, max_age=365 * 86400, httponly=True,
                    samesite="Lax", secure=request.is_secure)
    return resp


def _app_link(signer: Signer, auto_start_token: str) -> str:
    """The provider's link that opens its app on this device ("" if it has none)."""
    if not auto_start_token:
        return ""
    provider = runtime().services.providers[signer.round.provider]
    return provider.app_link(auto_start_token, mobile=_asked("device") == "phone" or _on_phone())


@bp.post("/<token>/bankid/cancel")
def cancel(token: str):
    """The signer pressed cancel or left the page: cancel the open order."""
    session = db()
    signer = _signer(token)
    signing.cancel_signing(session, runtime().services, signer)
    session.commit()
    return jsonify(status="cancelled")


@bp.get("/<token>/bankid")
def status(token: str):
    session = db()
    signer = _signer(token)
    if signer.status == "signed":
        done = TEXTS[signer.round.language]["done"]
        return jsonify(status="complete", hint_code="", message=done)
    lang = signer.round.language
    try:
        result = signing.poll_signing(session, runtime().services, signer)
    except ProviderError as err:
        return _provider_failure(err, lang)
    session.commit()
    message = "" if result.status == "complete" else user_message(
        result.hint_code, lang, pending=result.status == "pending", flow=_flow())
    return jsonify(status=result.status, hint_code=result.hint_code, message=message)


@bp.get("/<token>/bankid/qr.svg")
def qr(token: str):
    signer = _signer(token)
    if not (signer.pending_order_ref and signer.pending_qr_token and signer.pending_started_at):
        raise NotFound("no signing in progress")
    elapsed = runtime().services.clock.now() - signer.pending_started_at
    provider = runtime().services.providers[signer.round.provider]
    payload = provider.qr_payload(signer.pending_qr_token, signer.pending_qr_secret or "",
                                  max(0, math.floor(elapsed.total_seconds())))
    buf = io.BytesIO()
    segno.make(payload, error="l").save(buf, kind="svg", scale=5, border=2)
    return Response(buf.getvalue(), mimetype="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@bp.post("/<token>/decline")
def decline(token: str):
    session = db()
    signer = _signer(token)
    body = request.get_json(silent=True) or request.form
    rounds.decline(session, runtime().services, signer, str(body.get("reason", "")))
    session.commit()
    if request.is_json:
        return jsonify(status="declined")
    return ("", 303, {"Location": f"/sign/{token}"})
