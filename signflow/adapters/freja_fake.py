"""A stand-in for Freja eID's Signature Services API (development and tests).

It follows our reading of Freja's RP API: form-encoded base64 JSON requests,
``signRef`` references, the status names, and a JWS result.  The result and
the person's signature are signed by the development identity CA; the real
Freja's formats are to be confirmed against its test environment.

Its requests live in an order store (:mod:`signflow.adapters.sim_store`), as
the BankID simulator's do: the database when the app runs it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, jsonify, request

from signflow.adapters import jws
from signflow.adapters.bankid_sim import PERSONAS, Persona
from signflow.adapters.sim_store import OrderBook, OrderCodec, OrderStore, OrderStores, in_memory
from signflow.pdf.pki import KeyPair

#: How long a request may wait for the person before it expires.
ORDER_TIMEOUT = 180.0
#: How long a finished request's result can still be fetched.
FINISHED_TTL = 180.0
#: Statuses of a request still waiting for the person.
PENDING = ("STARTED", "DELIVERED_TO_MOBILE")


@dataclass
class FrejaOrder:
    sign_ref: str
    ssn: str
    text_b64: str
    binary_b64: str
    created: float
    #: What the RP asked to get back (``attributesToReturn``).
    attributes: frozenset[str] = frozenset()
    status: str = "STARTED"
    result: dict[str, Any] = field(default_factory=dict)
    #: When it left :data:`PENDING` (0 while it waits).
    finished: float = 0.0


#: The orders as JSON and back (for the database store).
FREJA_ORDER_CODEC = OrderCodec[FrejaOrder](
    encode=lambda order: {**asdict(order), "attributes": sorted(order.attributes)},
    decode=lambda state: FrejaOrder(**{**state, "attributes": frozenset(state["attributes"])}))


class FrejaError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FrejaFake:
    """The stand-in's state; thread-safe, and shared between processes when its
    orders are in the database (see :mod:`signflow.adapters.sim_store`)."""

    def __init__(self, ca: KeyPair, *, clock: Callable[[], float] = time.time,
                 orders: OrderStores = in_memory) -> None:
        if not isinstance(ca.key, ec.EllipticCurvePrivateKey):
            raise TypeError("Freja's stand-in signs ES256: its CA key must be EC")
        self.ca = ca
        self._key: ec.EllipticCurvePrivateKey = ca.key
        #: Seconds; the wall clock, since other processes (machines) read the orders too.
        self.clock = clock
        self.store: OrderStore[FrejaOrder] = orders("freja", FREJA_ORDER_CODEC)

    @property
    def orders(self) -> Mapping[str, FrejaOrder]:
        """Reference → order as stored, for tests that look inside (a copy, unless the
        orders are in this process's memory)."""
        return self.store.view()

    def init_signature(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("userInfoType") not in ("SSN", "INFERRED", "EMAIL", "PHONE"):
            raise FrejaError(422, 1001, "Invalid or missing userInfoType.")
        ssn = ""
        if body["userInfoType"] == "SSN":
            try:
                info = json.loads(base64.b64decode(str(body.get("userInfo")), validate=True))
                ssn = str(info["ssn"])
            except (ValueError, KeyError, TypeError):
                raise FrejaError(422, 1002, "Invalid or missing userInfo.") from None
        data = body.get("dataToSign") or {}
        if body.get("dataToSignType") not in ("SIMPLE_UTF8_TEXT", "EXTENDED_UTF8_TEXT") \
                or not isinstance(data, dict) or not data.get("text"):
            raise FrejaError(422, 1003, "Invalid or missing dataToSign.")
        attributes = _attributes(body.get("attributesToReturn"))
        order = FrejaOrder(sign_ref=str(uuid.uuid4()), ssn=ssn, text_b64=str(data["text"]),
                           binary_b64=str(data.get("binaryData", "")), created=self.clock(),
                           attributes=attributes)
        self.store.purge(self.clock())
        with self.store.changing(exclusive=True) as book:
            if ssn and any(o.ssn == ssn and o.status in PENDING
                           for o in map(self._live, book.all()) if o is not None):
                raise FrejaError(422, 2000, "A signature request for this user is already "
                                            "in progress.")
            self._save(book, order)
        return {"signRef": order.sign_ref}

    def _order(self, book: OrderBook[FrejaOrder], body: dict[str, Any]) -> FrejaOrder:
        order = self._live(book.get(str(body.get("signRef"))))
        if order is None:
            raise FrejaError(422, 1100, "Invalid reference (for example, nonexistent or "
                                        "expired).")
        return order

    def get_one_result(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.reading() as book:
            order = self._order(book, body)
            return {"signRef": order.sign_ref, "status": order.status, **order.result}

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.changing() as book:
            order = self._order(book, body)
            if order.status in PENDING:
                self._finish(book, order, "RP_CANCELED")
        return {}

    def _live(self, order: FrejaOrder | None) -> FrejaOrder | None:
        """*order* as it stands now (expired once its time ran out), or None once gone."""
        if order is None:
            return None
        if order.status in PENDING and self.clock() - order.created > ORDER_TIMEOUT:
            order.status, order.finished = "EXPIRED", order.created + ORDER_TIMEOUT
        if order.status not in PENDING and self.clock() - order.finished > FINISHED_TTL:
            return None
        return order

    def _finish(self, book: OrderBook[FrejaOrder], order: FrejaOrder, status: str) -> None:
        order.status, order.finished = status, self.clock()
        self._save(book, order)

    def _save(self, book: OrderBook[FrejaOrder], order: FrejaOrder) -> None:
        ends = order.created + ORDER_TIMEOUT if order.status in PENDING else order.finished
        book.put(order.sign_ref, order, keep_until=ends + FINISHED_TTL)

    # --- the person's side -------------------------------------------------
    def open(self, sign_ref: str) -> None:
        with self.store.changing() as book:
            order = self._pending(book, sign_ref)
            order.status = "DELIVERED_TO_MOBILE"
            self._save(book, order)

    def user_cancel(self, sign_ref: str) -> None:
        with self.store.changing() as book:
            self._finish(book, self._pending(book, sign_ref), "CANCELED")

    def reject(self, sign_ref: str) -> None:
        """The person read the request and said no."""
        with self.store.changing() as book:
            self._finish(book, self._pending(book, sign_ref), "REJECTED")

    def approve(self, sign_ref: str, persona: Persona | None = None) -> None:
        with self.store.changing() as book:
            order = self._pending(book, sign_ref)
            persona = persona or next((p for p in PERSONAS if p.personal_number == order.ssn),
                                      PERSONAS[0])
            if order.ssn and persona.personal_number != order.ssn:
                raise FrejaError(409, 3000, "The request is for another person.")
            user_sig = jws.sign_es256({"text": order.text_b64, "binaryData": order.binary_b64},
                                      self._key, self.ca.cert)
            attributes = _requested(order.attributes, persona)
            details = jws.sign_es256({
                "signRef": sign_ref, "status": "APPROVED", "userInfoType": "SSN",
                "userInfo": persona.personal_number, "minRegistrationLevel": "PLUS",
                "signatureType": "EXTENDED", "timestamp": int(time.time() * 1000),
                "signatureData": {"userSignature": user_sig, "certificateStatus": "GOOD"},
                "requestedAttributes": attributes,
            }, self._key, self.ca.cert)
            order.result = {"details": details, "requestedAttributes": attributes}
            self._finish(book, order, "APPROVED")

    def _pending(self, book: OrderBook[FrejaOrder], sign_ref: str) -> FrejaOrder:
        order = self._live(book.get(sign_ref))
        if order is None or order.status not in PENDING:
            raise FrejaError(404, 1100, "No pending request with that reference.")
        return order

    def open_orders(self) -> list[FrejaOrder]:
        with self.store.reading() as book:
            return [o for o in map(self._live, book.all())
                    if o is not None and o.status in PENDING]


#: Attributes the stand-in can return (a subset of Freja's).
ATTRIBUTES = frozenset({"SSN", "BASIC_USER_INFO", "EMAIL_ADDRESS", "DATE_OF_BIRTH"})


def _attributes(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(
            isinstance(a, dict) and a.get("attribute") in ATTRIBUTES for a in value):
        raise FrejaError(422, 1004, "Invalid attributesToReturn.")
    return frozenset(str(a["attribute"]) for a in value)


def _requested(attributes: frozenset[str], persona: Persona) -> dict[str, Any]:
    """What Freja returns: only the attributes the RP asked for."""
    out: dict[str, Any] = {}
    if "BASIC_USER_INFO" in attributes:
        out["basicUserInfo"] = {"name": persona.given_name, "surname": persona.surname}
    if "SSN" in attributes:
        out["ssn"] = {"ssn": persona.personal_number, "country": "SE"}
    return out


FIELDS = {"initSignature": "initSignRequest", "getOneResult": "getOneSignResultRequest",
          "cancel": "cancelSignRequest"}


def create_freja_fake_app(fake: FrejaFake) -> Flask:
    app = Flask(__name__)

    @app.errorhandler(FrejaError)
    def _error(err: FrejaError):
        return jsonify(code=err.code, message=err.message), err.status

    @app.post("/sign/1.0/<endpoint>")
    def api(endpoint: str):
        if endpoint not in FIELDS:
            raise FrejaError(404, 1000, "No such method.")
        if request.mimetype != "application/x-www-form-urlencoded":
            raise FrejaError(400, 1000, "Expected a form-encoded request.")
        try:
            body = json.loads(base64.b64decode(request.form[FIELDS[endpoint]], validate=True))
        except (KeyError, ValueError):
            raise FrejaError(400, 1000, f"Missing or invalid {FIELDS[endpoint]}.") from None
        if not isinstance(body, dict):
            raise FrejaError(400, 1000, "The request must be a JSON object.")
        handler = {"initSignature": fake.init_signature, "getOneResult": fake.get_one_result,
                   "cancel": fake.cancel}[endpoint]
        return jsonify(handler(body))

    @app.get("/sim/orders")
    def orders():
        return jsonify(orders=[{"orderRef": o.sign_ref, "personalNumber": o.ssn,
                                "status": o.status} for o in fake.open_orders()])

    @app.post("/sim/orders/<ref>/<action>")
    def act(ref: str, action: str):
        body = request.get_json(silent=True) or request.form.to_dict() or {}
        if action == "open":
            fake.open(ref)
        elif action == "cancel":
            fake.user_cancel(ref)
        elif action == "reject":
            fake.reject(ref)
        elif action == "approve":
            pnr = body.get("personalNumber")
            persona = next((p for p in PERSONAS if p.personal_number == pnr), None)
            fake.approve(ref, persona)
        else:
            raise FrejaError(404, 1000, "No such action.")
        return jsonify(ok=True)

    @app.get("/")
    def page():
        rows = "".join(f"<li>{o.sign_ref} ({o.ssn or 'QR'}) "
                       f"<form method=post action='{request.script_root}/sim/orders/"
                       f"{o.sign_ref}/approve'><button>Godkänn</button></form></li>"
                       for o in fake.open_orders())
        return (f"<!doctype html><meta charset=utf-8><title>Freja stand-in</title>"
                f"<h1>Freja eID stand-in</h1><ul>{rows or '<li>Inga förfrågningar.</li>'}</ul>")

    return app
