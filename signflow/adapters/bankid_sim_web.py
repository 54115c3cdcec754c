"""The BankID simulator's HTTP face: the RP API v6, the test API, the phone page.

Tests and demos complete orders through ``/sim/…``; a person uses the phone
page at ``/``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request

from signflow.adapters.bankid_sim import PERSONAS, ApiError, Persona, Simulator, persona_for
from signflow.core.people import normalize_personal_number
from signflow.errors import InvalidInput


def create_simulator_app(sim: Simulator, *, require_client_cert: bool = False) -> Flask:
    """The simulator as a WSGI app (RP API, test API, phone page).

    With *require_client_cert* (TLS on), RP calls without a client certificate
    that the server's TLS layer verified are answered 401, as BankID does.
    """
    app = Flask(__name__, template_folder=str(Path(__file__).parent.parent / "templates"))

    @app.before_request
    def _client_cert():
        if require_client_cert and request.path.startswith("/rp/") \
                and not request.environ.get("SSL_CLIENT_CERT"):
            raise ApiError(401, "unauthorized", "A client certificate is required.")

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return jsonify(errorCode=err.code, details=err.details), err.status

    def _json() -> dict[str, Any]:
        if request.headers.get("Content-Type", "") != "application/json":
            raise ApiError(415, "unsupportedMediaType",
                           "Content-Type must be application/json without parameters.")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalidParameters", "Body must be a JSON object.")
        return body

    @app.post("/rp/v6.0/phone/<endpoint>")
    def phone_rp(endpoint: str):
        sim.take_fault(f"phone/{endpoint}")
        body = _json()
        if endpoint not in ("sign", "auth"):
            raise ApiError(404, "notFound", "No such endpoint.")
        return jsonify(sim.start(f"phone/{endpoint}", body))

    @app.post("/rp/v6.0/<endpoint>")
    def rp(endpoint: str):
        sim.take_fault(endpoint)
        body = _json()
        if endpoint in ("sign", "auth"):
            return jsonify(sim.start(endpoint, body))
        if endpoint == "collect":
            return jsonify(sim.collect(body))
        if endpoint == "cancel":
            return jsonify(sim.cancel(body))
        raise ApiError(404, "notFound", "No such endpoint.")

    @app.post("/sim/faults")
    def faults():
        body = request.get_json(silent=True) or {}
        try:
            sim.inject_fault(str(body["endpoint"]), int(body["status"]),
                             str(body["errorCode"]), int(body.get("times", 1)))
        except (KeyError, ValueError):
            raise ApiError(400, "invalidParameters", "endpoint, status, errorCode") from None
        return jsonify(ok=True)

    @app.post("/sim/scan")
    def scan():
        """The phone scanned a QR code: open its order (and approve, if asked)."""
        body = request.get_json(silent=True) or request.form.to_dict() or {}
        ref = sim.order_for_qr(str(body.get("qr", "")))
        sim.open(ref)
        if body.get("approve"):
            sim.approve(ref, _persona_from(body))
        if request.form:
            return ("", 303, {"Location": (request.script_root or "") + "/"})
        return jsonify(orderRef=ref)

    @app.get("/sim/orders")
    def orders():
        return jsonify(orders=[{"orderRef": o.order_ref, "kind": o.kind,
                                "personalNumber": o.personal_number, "hintCode": o.hint,
                                "qrStartToken": o.qr_start_token, "returnUrl": o.return_url,
                                "endUserIp": o.end_user_ip}
                               for o in sim.open_orders()])

    @app.post("/sim/orders/<ref>/<action>")
    def act(ref: str, action: str):
        body = request.get_json(silent=True) or request.form.to_dict() or {}
        try:
            if action == "open":
                sim.open(ref)
            elif action == "cancel":
                sim.user_cancel(ref)
            elif action == "approve":
                sim.approve(ref, _persona_from(body))
            else:
                raise ApiError(404, "notFound", "No such action.")
        except ApiError as refused:
            if not request.form:
                raise
            # the phone page: say it there, as the app does, not as a JSON body
            return ("", 303, {"Location": f"{request.script_root or ''}/?fel={refused.code}"})
        if request.form:
            return ("", 303, {"Location": (request.script_root or "") + "/"})
        return jsonify(ok=True)

    @app.get("/")
    def phone():
        shown = []
        for o in sim.open_orders():
            text = base64.b64decode(o.visible_b64).decode("utf-8", "replace") if o.visible_b64 \
                else "(inloggning)"
            shown.append({"order_ref": o.order_ref, "text": text,
                          "personal_number": o.personal_number})
        return render_template(
            "bankid_phone.html", orders=shown, personas=PERSONAS, prefix=request.script_root,
            known={p.personal_number for p in PERSONAS},
            refused=PHONE_REFUSALS.get(request.args.get("fel", ""), ""))

    return app


#: What the phone says when it refuses (as BankID's app: in Swedish only).
PHONE_REFUSALS = {
    "wrongPerson": "Ordern gäller en annan person: den kräver ett annat personnummer. "
                   "Välj den person ordern är till.",
    "notFound": "Ordern finns inte längre: den har avslutats eller gått ut.",
    "invalidParameters": "Ordern kan inte signeras längre.",
}


def _persona_from(body: dict[str, Any]) -> Persona | None:
    pnr = body.get("personalNumber")
    if not pnr:
        return None
    try:
        pnr = normalize_personal_number(str(pnr))
    except InvalidInput:
        raise ApiError(400, "invalidParameters", "Invalid personalNumber.") from None
    base = persona_for(pnr)
    given = str(body.get("givenName") or base.given_name)
    surname = str(body.get("surname") or base.surname)
    return Persona(pnr, given, surname)


