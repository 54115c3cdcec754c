"""The signer's pages: read the protocol, sign with BankID, or decline.

Everything here is reached through the signer's personal link, without an
account.  The page speaks the round's language.  A live link reads the
document and acts; an ended one (round over, link replaced) only shows what
happened and whom to ask; an unknown one is a plain 404.

Forgery: the blueprint is outside the app-wide CSRF check.  The decline form
carries a CSRF token, checked here; the page's own JSON calls must come from
this site (:func:`_check_origin`).
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from signflow.adapters.bankid_messages import user_message
from signflow.core import links, rounds, signing
from signflow.core.links import LinkState
from signflow.core.models import RetiredLink, Signer
from signflow.core.people import role_label
from signflow.core.states import SignerStatus
from signflow.errors import InvalidInput, NotFound, ProviderError
from signflow.i18n import DEFAULT_LANGUAGE, LANGUAGES
from signflow.pdf.page_images import DEFAULT_WIDTH, WIDTHS, PageImages
from signflow.web import db, flows, json_sent, runtime, security
from signflow.web.errors import error_body, status_of

bp = Blueprint("sign", __name__, url_prefix="/sign")


@bp.record_once
def _setup(state) -> None:
    app: Flask = state.app
    app.extensions["sign_page_images"] = PageImages()


def _now():
    return runtime().services.clock.now()


def _signer(token: str) -> Signer:
    """The signer of a live link; NotFound for an unknown or ended one."""
    return _speaking(links.signer_for_token(db(), token, _now()))


def _speaking(signer: Signer) -> Signer:
    """*signer*, with the page's language set to their round's."""
    security.use_language(signer.round.language)
    return signer


def _client_ip() -> str:
    # behind SIGNFLOW_PROXY_HOPS trusted proxies, ProxyFix has put the client's address here
    return request.remote_addr or "127.0.0.1"


def _provider_failure(err: ProviderError, language: str):
    """The provider's refusal, worded for the signer (never the provider's own text)."""
    shown = str(err.fields.get("user_code") or err.fields.get("error_code") or "")
    return error_body(err.code, user_message(shown, language)), status_of(err)


# --- forgery -----------------------------------------------------------------------------

def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _check_origin():
    """Refuse a POST another site's page made (403), before it does anything.

    A browser names the page's origin in ``Origin`` on every cross-origin
    POST (``fetch`` or form), so a request with neither ``Origin`` nor
    ``Referer`` is not a browser's cross-site request: scripts and the
    tests' HTTP clients, which hold the link anyway, are let through.  One
    that names a different origin, or ``null`` (a sandboxed frame, or a form
    under our no-referrer policy), is refused.  The page's own calls send
    ``referrerPolicy: "same-origin"`` so that the browser names our origin.
    The decline *form* is instead checked by its CSRF token.
    """
    if request.method != "POST" or _is_decline_form():
        return None
    claimed = request.headers.get("Origin")
    if claimed is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return None
        claimed = _origin_of(referer)
    allowed = {_origin_of(runtime().services.base_url), _origin_of(request.host_url)}
    if claimed.lower() in allowed:
        return None
    return error_body("cross_origin", "this request did not come from the signing page"), 403


bp.before_request(_check_origin)


def _is_decline_form() -> bool:
    return (request.endpoint == "sign.decline"
            and request.mimetype in ("application/x-www-form-urlencoded",
                                     "multipart/form-data"))


# --- pages ---------------------------------------------------------------------------------

def _missing():
    """An unknown link: a generic page, Swedish unless the browser prefers English."""
    asked = request.args.get("lang") or request.cookies.get(security.LANG_COOKIE)
    lang = asked if asked in LANGUAGES else (
        request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE)
    security.use_language(lang)
    return render_template("sign_missing.html"), 404


@bp.get("/<token>")
def page(token: str):
    signer = links.find_link(db(), token)
    if signer is None:
        retired = links.find_retired(db(), token)
        return _missing() if retired is None else _replaced(retired)
    security.use_language(signer.round.language)
    state = links.link_state(signer, _now())
    context = _context(token, signer, state)
    if state is LinkState.SIGNED:
        return render_template("sign_done.html", **context)
    if state is not LinkState.LIVE:
        return render_template("sign_closed.html", **context), (
            200 if state is LinkState.DECLINED else 410)
    return _sign_page(token, signer, context)


def _replaced(retired: RetiredLink):
    """A link whose place the secretariat gave to someone else: say so, and whom to ask."""
    round_ = retired.round
    security.use_language(round_.language)
    return render_template(
        "sign_closed.html", round=round_, state="replaced_person",
        role=role_label(retired.role, round_.language), contact=round_.created_by.email,
        organisation=round_.organisation.name), 410


def _context(token: str, signer: Signer, state: LinkState) -> dict:
    """What every signer's page shows: who, which round, and whom to ask."""
    round_ = signer.round
    return dict(signer=signer, round=round_, token=token, state=state.value,
                role=role_label(signer.role, round_.language),
                contact=round_.created_by.email, organisation=round_.organisation.name)


def _sign_page(token: str, signer: Signer, context: dict, *, errors: dict | None = None,
               reason: str = "", status: int = 200):
    pages = _page_sizes(signer)
    app_name = "Freja eID" if signer.round.provider == "freja" else "BankID"
    return render_template(
        "sign.html", **context, app=app_name, phone=flows.on_phone(), pages=pages,
        widths=WIDTHS, default_width=DEFAULT_WIDTH, errors=errors or {}, reason=reason,
        simulator=runtime().settings.dev_mode and signer.round.provider == "bankid",
    ), status


def _document_bytes(signer: Signer) -> tuple[str, bytes]:
    sha, load = _document(signer)
    return sha, load()


def _document(signer: Signer) -> tuple[str, Callable[[], bytes]]:
    """The current document's hash, and how to fetch it: the page pictures are cached by
    hash, so most requests never need the bytes from the blob store."""
    doc = signer.round.current_document
    if doc is None:
        raise NotFound("no document")
    key, blobs = doc.storage_key, runtime().services.blobs
    return doc.sha256, lambda: blobs.get(key)


def _images() -> PageImages:
    return current_app.extensions["sign_page_images"]


def _page_sizes(signer: Signer) -> list[tuple[float, float]]:
    sha, load = _document(signer)
    return _images().page_sizes(sha, load)


@bp.get("/<token>/document")
def document(token: str):
    signer = _signer(token)
    _, data = _document_bytes(signer)
    return send_file(io.BytesIO(data), mimetype="application/pdf",
                     download_name=f"{signer.round.id}.pdf")


@bp.get("/<token>/signed.pdf")
def signed_copy(token: str):
    """The signed protocol, for a signer who signed, once everyone has (the link in
    their "signed" mail).  Any other link, or before completion: the link's page."""
    signer = links.find_link(db(), token)
    if signer is None or not links.may_fetch_signed_copy(signer):
        return redirect(f"/sign/{token}", 303) if signer is not None else _missing()
    _, data = _document_bytes(signer)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=signing.signed_file_name(signer.round.title,
                                                            signer.round.language))


@bp.get("/<token>/pages/<int:number>.png")
def page_image(token: str, number: int):
    """One page of the round's current document as a picture, for reading on a phone.

    ``Cache-Control: no-store`` like every signing URL (set app-wide): the
    protocol may not be public yet and the device may be shared, so no copy
    is left in the browser's cache; the server keeps the renders instead.
    """
    signer = _signer(token)
    width = request.args.get("w", type=int) or DEFAULT_WIDTH
    if width not in WIDTHS:
        raise InvalidInput(f"w must be one of {', '.join(map(str, WIDTHS))}", field="w")
    sha, load = _document(signer)
    try:
        png = _images().png(sha, load, number, width)
    except IndexError:
        raise NotFound("no such page") from None
    return Response(png, mimetype="image/png")


# --- BankID --------------------------------------------------------------------------------

DEVICE_COOKIE = "sf_device"


@bp.post("/<token>/bankid")
def start(token: str):
    """Start an order: ``flow=same_device`` (app on this device) or ``qr``."""
    session = db()
    signer = _signer(token)
    lang, flow = signer.round.language, flows.chosen_flow()
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
    return provider.app_link(auto_start_token, mobile=flows.mobile_app_link())


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
    found = links.find_link(session, token)
    if found is not None and found.status == SignerStatus.SIGNED.value:
        # answered even once the round is complete and the link has ended: the
        # signer's own page is still waiting to hear that the signature counted
        _speaking(found)
        return jsonify(status="complete", hint_code="", message=_("You have signed"))
    signer = _speaking(links.live_signer(found, _now()))  # found once, not looked up again
    lang = signer.round.language
    try:
        result = signing.poll_signing(session, runtime().services, signer)
    except ProviderError as err:
        return _provider_failure(err, lang)
    session.commit()
    message = "" if result.status == "complete" else user_message(
        result.hint_code, lang, pending=result.status == "pending", flow=flows.chosen_flow())
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


# --- declining -----------------------------------------------------------------------------

@bp.post("/<token>/decline")
def decline(token: str):
    """Decline with a reason: the page's form (CSRF token, confirmation) or JSON."""
    session = db()
    signer = _signer(token)
    if not _is_decline_form():
        body = json_sent()
        rounds.decline(session, runtime().services, signer,
                       (body if isinstance(body, dict) else {}).get("reason"))
        session.commit()
        return jsonify(status="declined")
    reason = request.form.get("reason", "").strip()
    errors = _decline_form_errors(reason)
    if errors:
        return _sign_page(token, signer, _context(token, signer, LinkState.LIVE),
                          errors=errors, reason=reason, status=400)
    rounds.decline(session, runtime().services, signer, reason)
    session.commit()
    return redirect(f"/sign/{token}", code=303)


def _decline_form_errors(reason: str) -> dict[str, str]:
    errors = {}
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        errors["form"] = _("The form had expired. Check your answers and press the button "
                           "again.")
    if not reason:
        errors["reason"] = _("Write why you decline.")
    elif len(reason) > 2000:
        errors["reason"] = _("Keep the reason under 2000 characters.")
    if request.form.get("confirm") != "yes":
        errors["confirm"] = _("Tick the box to confirm that you decline.")
    return errors
