"""Staff sign-in: BankID (RP auth), OpenID Connect where configured, sign-out.

The BankID order is kept in the session cookie, sealed with the data key
(:class:`~signflow.core.ports.FieldSealer`): the QR secret never reaches the
browser, and only the browser that started an order can collect it.  The
page's JSON calls are POSTs under the session's CSRF token.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time

import segno
from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask_babel import gettext as _

from signflow.adapters.bankid_messages import user_message
from signflow.core.accounts import user_for_personal_number
from signflow.core.ports import Authenticator, CollectResult
from signflow.errors import ConfigError, NotFound, ProviderError
from signflow.web import db, flows, oidc, runtime, staff
from signflow.web.errors import error_body, status_of
from signflow.web.security import current_language

log = logging.getLogger(__name__)
bp = Blueprint("login", __name__)
bp.record_once(oidc.setup)

#: The session key of the BankID order under way (sealed).
ORDER = "bankid_login"
PROVIDER = "bankid"
#: The simulator person the development secretariat user signs in as.
DEV_PERSONA = "Mikael Johansson"


def _authenticator() -> Authenticator:
    provider = runtime().services.providers[PROVIDER]
    if not isinstance(provider, Authenticator):
        raise NotFound("this identity provider cannot sign anyone in")
    return provider


def _save_order(order: dict) -> None:
    sealer = runtime().services.sealer
    session[ORDER] = sealer.seal(json.dumps(order), bound_to="staff-login")


def _order() -> dict | None:
    sealed = session.get(ORDER)
    if not sealed:
        return None
    try:
        return json.loads(runtime().services.sealer.open(sealed, bound_to="staff-login"))
    except (ValueError, TypeError, ConfigError):
        return None  # from before a key change, or not ours: start again


def _message(code: str, *, pending: bool = False) -> str:
    return user_message(code, current_language(), pending=pending, flow=flows.chosen_flow())


def _provider_failure(err: ProviderError):
    shown = str(err.fields.get("user_code") or err.fields.get("error_code") or "")
    return error_body(err.code, _message(shown)), status_of(err)


@bp.get("/login")
def page():
    target = request.args.get("next", "")
    if staff.current_staff() is not None:
        return redirect(staff.safe_next(target))
    settings = runtime().settings
    return render_template(
        "login.html", next=target, phone=flows.on_phone(), oidc=oidc.configured(),
        dev=settings.dev_mode, dev_persona=DEV_PERSONA, resume=_order() is not None)


@bp.post("/login/bankid")
def start():
    """Start a BankID identification: ``flow=same_device`` or ``qr``."""
    provider, flow = _authenticator(), flows.chosen_flow()
    svc = runtime().services
    # the app sends the person back here, where the page picks up the order again
    return_url = f"{svc.base_url}/login#bankid" if flow == "same_device" else ""
    previous = _order()
    if previous:
        _cancel_quietly(previous["ref"])
    try:
        order = provider.start_auth(request.remote_addr or "127.0.0.1", return_url=return_url)
    except ProviderError as err:
        return _provider_failure(err)
    _save_order({"ref": order.order_ref, "qr": order.qr_start_token,
                 "secret": order.qr_start_secret, "at": time.time(),
                 "next": staff.safe_next(flows.asked("next"))})
    mobile = flows.mobile_app_link()
    link = runtime().services.providers[PROVIDER].app_link(order.auto_start_token,
                                                           mobile=mobile)
    return jsonify(status="pending", flow=flow, app_link=link if order.auto_start_token else "",
                   message=_message("outstandingTransaction", pending=True))


@bp.post("/login/bankid/status")
def status():
    """One poll: pending, failed, unknown (no such user) or complete (signed in)."""
    order = _order()
    if order is None:
        return jsonify(status="failed", message=_("No sign-in is under way. Start again."))
    try:
        result = runtime().services.providers[PROVIDER].collect(order["ref"])
    except ProviderError as err:
        if err.fields.get("error_code") == "invalidParameters":
            session.pop(ORDER, None)  # BankID no longer knows the order
        return _provider_failure(err)
    if result.status == "pending":
        return jsonify(status="pending", message=_message(result.hint_code, pending=True))
    session.pop(ORDER, None)
    if result.status == "failed":
        return jsonify(status="failed", message=_message(result.hint_code))
    return _complete(result, order["next"])


def _complete(result: CollectResult, target: str):
    if result.signature_valid is False:
        log.error("BankID sign-in refused: the identification's signature did not verify")
        return jsonify(status="failed", message=_message("serviceError"))
    user = user_for_personal_number(db(), runtime().services.sealer,
                                    str(result.user.get("personalNumber", "")))
    if user is None:
        log.info("BankID sign-in refused: no user signs in with that personal number")
        return jsonify(status="unknown", message=unknown_person())
    staff.sign_in(user, "bankid")
    log.info("staff sign-in: user %s (%s) with BankID", user.id, user.role)
    return jsonify(status="complete", redirect=staff.safe_next(target))


def unknown_person() -> str:
    return _("You could not be signed in: there is no account for you here. Ask whoever "
             "runs signflow in your organisation to add you.")


@bp.post("/login/bankid/cancel")
def cancel():
    """The person pressed cancel or left the page: cancel the open order."""
    order = _order()
    session.pop(ORDER, None)
    if order:
        _cancel_quietly(order["ref"])
    return jsonify(status="cancelled")


def _cancel_quietly(order_ref: str) -> None:
    try:
        runtime().services.providers[PROVIDER].cancel(order_ref)
    except ProviderError:
        pass  # already finished or forgotten: nothing left to cancel


@bp.get("/login/bankid/qr.svg")
def qr():
    """The animated QR code: a new one each second, made here from the sealed secret."""
    order = _order()
    if order is None or not order.get("qr"):
        raise NotFound("no sign-in under way")
    provider = runtime().services.providers[PROVIDER]
    seconds = max(0, math.floor(time.time() - float(order["at"])))
    buf = io.BytesIO()
    segno.make(provider.qr_payload(order["qr"], order["secret"], seconds),
               error="l").save(buf, kind="svg", scale=5, border=2)
    return Response(buf.getvalue(), mimetype="image/svg+xml")


@bp.post("/logout")
def logout():
    user = staff.current_staff()
    staff.sign_out(user)
    if user is not None:
        log.info("staff sign-out: user %s", user.id)
    flash(_("You are now signed out."), "ok")
    return redirect("/login")


bp.add_url_rule("/login/oidc", view_func=oidc.begin)
bp.add_url_rule("/login/oidc/callback", view_func=oidc.callback)
