"""A BankID RP API v6 simulator: the same endpoints, status codes and error
bodies as BankID's test and production servers, with controllable people.

Served by ``signflow bankid-simulator`` (own port, optional TLS) or used
in-process by default; its HTTP face is :mod:`signflow.adapters.bankid_sim_web`.
Its certificates (bank CA, customer CA, OCSP responder, people) hang below the
simulator root as BankID's hang below BankID's root
(:mod:`signflow.adapters.bankid_sim_pki`).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from signflow.adapters.bankid_sim_pki import simulator_pki
from signflow.adapters.bankid_xml import SignedData, build_signature
from signflow.core.people import normalize_personal_number
from signflow.errors import InvalidInput
from signflow.pdf.pki import KeyPair

#: How long an order may stay pending before it fails (BankID: 3 minutes).
ORDER_TIMEOUT = 180.0
#: How long a finished order can still be collected.
FINISHED_TTL = 180.0


@dataclass(frozen=True)
class Persona:
    personal_number: str
    given_name: str
    surname: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.surname}"


#: Test people (valid personnummer of the kind BankID's test environment uses).
PERSONAS = (
    Persona("198001012387", "Mikael", "Johansson"),
    Persona("197507152390", "Ardiana", "Demjaha"),
    Persona("196911302385", "Carina", "Leffler"),
)


@dataclass
class Order:
    order_ref: str
    kind: str
    end_user_ip: str
    visible_b64: str
    non_visible_b64: str
    personal_number: str
    qr_start_token: str
    qr_start_secret: str
    auto_start_token: str
    created: float
    visible_format: str = ""
    return_url: str = ""
    status: str = "pending"
    hint: str = "outstandingTransaction"
    opened: bool = False
    finished: float = 0.0
    completion: dict[str, Any] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details


#: What the app reports next, once the RP has seen a hint (the person moves on).
NEXT_HINT = {"started": "userSign", "userCallConfirm": "userSign"}


class Simulator:
    """The simulator's state; thread-safe."""

    def __init__(self, ca: KeyPair, *, clock=time.monotonic) -> None:
        self.ca = ca
        #: The CAs below the root and the OCSP responder (made once per root).
        self.pki = simulator_pki(ca)
        self.clock = clock
        self.orders: dict[str, Order] = {}
        #: Injected failures (tests): endpoint → list of (status, errorCode).
        self.faults: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()

    # --- RP API -------------------------------------------------------------
    def start(self, kind: str, body: dict[str, Any]) -> dict[str, str]:
        ip = body.get("endUserIp")
        if not kind.startswith("phone/") and (not isinstance(ip, str) or not _is_ip(ip)):
            raise ApiError(400, "invalidParameters", "Invalid endUserIp.")
        visible = _b64_field(body, "userVisibleData", 40_000, required=kind.endswith("sign"))
        non_visible = _b64_field(body, "userNonVisibleData", 200_000, required=False)
        fmt = body.get("userVisibleDataFormat")
        if fmt not in (None, "simpleMarkdownV1", "plaintext"):
            raise ApiError(400, "invalidParameters", "Invalid userVisibleDataFormat.")
        return_url = _return_url(body.get("returnUrl"))
        pnr = _personal_number(kind, body)
        with self._lock:
            self._expire()
            if pnr:
                self._refuse_clash(pnr)
            order = Order(
                order_ref=str(uuid.uuid4()), kind=kind, end_user_ip=ip or "",
                visible_b64=visible, non_visible_b64=non_visible, personal_number=pnr,
                qr_start_token=str(uuid.uuid4()), qr_start_secret=str(uuid.uuid4()),
                auto_start_token=str(uuid.uuid4()), created=self.clock(),
                visible_format=fmt or "", return_url=return_url,
            )
            self.orders[order.order_ref] = order
        if kind.startswith("phone/"):
            return {"orderRef": order.order_ref}
        return {"orderRef": order.order_ref, "autoStartToken": order.auto_start_token,
                "qrStartToken": order.qr_start_token, "qrStartSecret": order.qr_start_secret}

    def _refuse_clash(self, pnr: str) -> None:
        clash = [o for o in self.orders.values()
                 if o.status == "pending" and o.personal_number == pnr]
        if clash:
            for o in clash:  # BankID cancels both orders, not just the new one
                self._fail(o, "cancelled")
            raise ApiError(400, "alreadyInProgress", "Order already in progress for pno.")

    def collect(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._expire()
            order = self._order(body)
            out: dict[str, Any] = {"orderRef": order.order_ref, "status": order.status}
            if order.status == "complete":
                out["completionData"] = order.completion
            else:
                out["hintCode"] = order.hint
                order.hint = NEXT_HINT.get(order.hint, order.hint)
            return out

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            order = self._order(body)
            if order.status != "pending":
                # BankID knows no open order by that reference any more
                raise ApiError(400, "invalidParameters", "No such order.")
            self._fail(order, "cancelled")
        return {}

    def _order(self, body: dict[str, Any]) -> Order:
        ref = body.get("orderRef")
        order = self.orders.get(ref) if isinstance(ref, str) else None
        if order is None:
            raise ApiError(400, "invalidParameters", "No such order.")
        return order

    def _expire(self) -> None:
        now = self.clock()
        for ref, o in list(self.orders.items()):
            if o.status == "pending" and now - o.created > ORDER_TIMEOUT:
                self._fail(o, "expiredTransaction" if o.opened else "startFailed")
            elif o.status != "pending" and now - o.finished > FINISHED_TTL:
                del self.orders[ref]

    def _fail(self, order: Order, hint: str) -> None:
        order.status, order.hint, order.finished = "failed", hint, self.clock()

    def inject_fault(self, endpoint: str, status: int, error_code: str, times: int = 1) -> None:
        with self._lock:
            self.faults.setdefault(endpoint, []).extend([(status, error_code)] * times)

    def take_fault(self, endpoint: str) -> None:
        with self._lock:
            pending = self.faults.get(endpoint)
            if pending:
                status, code = pending.pop(0)
                raise ApiError(status, code, f"Simulated {code}.")

    # --- the person's side (phone page and test API) -------------------------
    def open_orders(self) -> list[Order]:
        with self._lock:
            self._expire()
            return [o for o in self.orders.values() if o.status == "pending"]

    def open(self, order_ref: str) -> None:
        """The person opened the app (scanned the QR code, used autostart, took the call)."""
        with self._lock:
            order = self._pending(order_ref)
            # over the phone, the app first asks the person to confirm the call
            order.opened = True
            order.hint = "userCallConfirm" if order.kind.startswith("phone/") else "started"

    def order_for_qr(self, qr_data: str) -> str:
        """The order a scanned ``bankid.<token>.<time>.<code>`` belongs to (code checked)."""
        import hmac

        from signflow.adapters.bankid import qr_auth_code

        parts = qr_data.strip().split(".")
        if len(parts) != 4 or parts[0] != "bankid":
            raise ApiError(400, "invalidParameters", "Not BankID QR data.")
        _, token, seconds, code = parts
        with self._lock:
            self._expire()
            for o in self.orders.values():
                if o.qr_start_token == token and o.status == "pending":
                    if hmac.compare_digest(qr_auth_code(o.qr_start_secret, seconds), code):
                        return o.order_ref
        raise ApiError(404, "notFound", "No open order for that QR code.")

    def user_cancel(self, order_ref: str) -> None:
        with self._lock:
            self._fail(self._pending(order_ref), "userCancel")

    def approve(self, order_ref: str, persona: Persona | None = None) -> None:
        with self._lock:
            order = self._pending(order_ref)
            if persona is None:
                persona = persona_for(order.personal_number)
            if order.personal_number and persona.personal_number != order.personal_number:
                raise ApiError(409, "wrongPerson",
                               "The order requires another personal number.")
            order.completion = self._completion(order, persona)
            order.status, order.hint, order.finished = "complete", "", self.clock()

    def _pending(self, order_ref: str) -> Order:
        self._expire()
        order = self.orders.get(order_ref)
        if order is None or order.status != "pending":
            raise ApiError(404, "notFound", "No pending order with that reference.")
        return order

    def _completion(self, order: Order, persona: Persona) -> dict[str, Any]:
        key, cert = self.pki.person(persona)
        data = SignedData(visible_b64=order.visible_b64, non_visible_b64=order.non_visible_b64,
                          visible_format=order.visible_format,
                          func="Signing" if order.kind.endswith("sign") else "Identification")
        xml = build_signature(data=data, key=key, chain=[cert, self.pki.customer_ca.cert,
                                                           self.pki.bank_ca.cert])
        return {
            "user": {"personalNumber": persona.personal_number, "name": persona.name,
                     "givenName": persona.given_name, "surname": persona.surname},
            "device": {"ipAddress": order.end_user_ip,
                       "uhi": base64.b64encode(hashlib.sha256(
                           persona.personal_number.encode()).digest()[:18]).decode()},
            "bankIdIssueDate": "2024-01-15",
            "stepUp": {"mrtd": False},
            "signature": base64.b64encode(xml).decode(),
            "ocspResponse": base64.b64encode(self.pki.ocsp_good(cert)).decode(),
        }


def persona_for(personal_number: str) -> Persona:
    """The simulator person with *personal_number* (a generic one for others)."""
    for p in PERSONAS:
        if p.personal_number == personal_number:
            return p
    if personal_number:
        return Persona(personal_number, "Test", "Person")
    return PERSONAS[0]


def _personal_number(kind: str, body: dict[str, Any]) -> str:
    """The personal number an order is for ("" for anyone), as BankID validates it."""
    requirement = body.get("requirement") or {}
    if not isinstance(requirement, dict):
        raise ApiError(400, "invalidParameters", "Invalid requirement.")
    _check_requirement(requirement)
    _check_web(body.get("web"))
    if kind.startswith("phone/"):
        if body.get("callInitiator") not in ("user", "RP"):
            raise ApiError(400, "invalidParameters", "Invalid callInitiator.")
        if not body.get("personalNumber"):
            raise ApiError(400, "invalidParameters", "Missing personalNumber.")
        requirement = dict(requirement, personalNumber=body["personalNumber"])
    pnr = requirement.get("personalNumber", "")
    if not pnr:
        return ""
    try:
        return normalize_personal_number(str(pnr))
    except InvalidInput:
        raise ApiError(400, "invalidParameters", "Invalid personalNumber.") from None


def _check_requirement(requirement: dict[str, Any]) -> None:
    known = {"personalNumber", "pinCode", "mrtd", "certificatePolicies", "cardReader"}
    if set(requirement) - known:
        raise ApiError(400, "invalidParameters", "Unknown requirement.")
    for flag in ("pinCode", "mrtd"):
        if flag in requirement and not isinstance(requirement[flag], bool):
            raise ApiError(400, "invalidParameters", f"Invalid {flag}.")
    policies = requirement.get("certificatePolicies", [])
    if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
        raise ApiError(400, "invalidParameters", "Invalid certificatePolicies.")


def _check_web(web: object) -> None:
    if web is None:
        return
    if not isinstance(web, dict) or set(web) - {"deviceIdentifier", "referringDomain",
                                                  "userAgent"}:
        raise ApiError(400, "invalidParameters", "Invalid web.")


def _return_url(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 512 \
            or not value.startswith(("https://", "http://")):
        raise ApiError(400, "invalidParameters", "Invalid returnUrl.")
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _b64_field(body: dict[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(400, "invalidParameters", f"Missing {key}.")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(400, "invalidParameters", f"Invalid {key}.")
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise ApiError(400, "invalidParameters", f"Invalid {key}.") from None
    return value
