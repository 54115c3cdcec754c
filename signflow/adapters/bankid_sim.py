"""A BankID RP API v6 simulator: the same endpoints, status codes and error
bodies as BankID's test and production servers, with controllable people.

Served by ``signflow bankid-simulator`` (own port, optional TLS) or used
in-process by default; its HTTP face is :mod:`signflow.adapters.bankid_sim_web`.
Its certificates (bank CA, customer CA, OCSP responder, people) hang below the
simulator root as BankID's hang below BankID's root
(:mod:`signflow.adapters.bankid_sim_pki`).

Its orders live in an order store (:mod:`signflow.adapters.sim_store`): the
database when the app runs it, so that every worker process signs against the
same orders; this process's memory when it runs on its own.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from signflow.adapters.bankid_sim_pki import simulator_pki
from signflow.adapters.bankid_xml import SignedData, build_signature
from signflow.adapters.sim_store import OrderBook, OrderCodec, OrderStore, OrderStores, in_memory
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


#: The orders as JSON and back (for the database store).
ORDER_CODEC = OrderCodec[Order](encode=asdict, decode=lambda state: Order(**state))


class ApiError(Exception):
    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details


#: What the app reports next, once the RP has seen a hint (the person moves on).
NEXT_HINT = {"started": "userSign", "userCallConfirm": "userSign"}


class Simulator:
    """The simulator's state; thread-safe, and shared between processes when its
    orders are in the database (see :mod:`signflow.adapters.sim_store`)."""

    def __init__(self, ca: KeyPair, *, clock: Callable[[], float] = time.time,
                 orders: OrderStores = in_memory) -> None:
        self.ca = ca
        #: The CAs below the root and the OCSP responder (made once per root).
        self.pki = simulator_pki(ca)
        #: Seconds; the wall clock, since other processes (machines) read the orders too.
        self.clock = clock
        self.store: OrderStore[Order] = orders("bankid", ORDER_CODEC)
        #: Injected failures (tests): endpoint → list of (status, errorCode).
        #: This process's only: a test injects them into the runtime it calls.
        self.faults: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()

    @property
    def orders(self) -> Mapping[str, Order]:
        """Reference → order as stored, for tests that look inside (a copy, unless the
        orders are in this process's memory)."""
        return self.store.view()

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
        order = Order(
            order_ref=str(uuid.uuid4()), kind=kind, end_user_ip=ip or "",
            visible_b64=visible, non_visible_b64=non_visible, personal_number=pnr,
            qr_start_token=str(uuid.uuid4()), qr_start_secret=str(uuid.uuid4()),
            auto_start_token=str(uuid.uuid4()), created=self.clock(),
            visible_format=fmt or "", return_url=return_url,
        )
        self.store.purge(self.clock())
        with self.store.changing(exclusive=True) as book:
            clashed = bool(pnr) and self._cancel_clashes(book, pnr)
            if not clashed:
                self._save(book, order)
        if clashed:  # after the block: the cancelled orders stay cancelled
            raise ApiError(400, "alreadyInProgress", "Order already in progress for pno.")
        if kind.startswith("phone/"):
            return {"orderRef": order.order_ref}
        return {"orderRef": order.order_ref, "autoStartToken": order.auto_start_token,
                "qrStartToken": order.qr_start_token, "qrStartSecret": order.qr_start_secret}

    def _cancel_clashes(self, book: OrderBook[Order], pnr: str) -> bool:
        """Cancel *pnr*'s pending orders (BankID cancels both orders, not just the new
        one); whether there were any."""
        clashes = [o.order_ref for o in book.all()
                   if self._live(o) and o.status == "pending" and o.personal_number == pnr]
        for ref in clashes:
            order = self._live(book.get(ref))  # locked now: it may have moved on
            if order is not None and order.status == "pending":
                self._fail(order, "cancelled")
                self._save(book, order)
        return bool(clashes)

    def collect(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.changing() as book:
            order = self._order(book, body)
            out: dict[str, Any] = {"orderRef": order.order_ref, "status": order.status}
            if order.status == "complete":
                out["completionData"] = order.completion
            else:
                out["hintCode"] = order.hint
                order.hint = NEXT_HINT.get(order.hint, order.hint)
            self._save(book, order)
            return out

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.changing() as book:
            order = self._order(book, body)
            if order.status != "pending":
                # BankID knows no open order by that reference any more
                raise ApiError(400, "invalidParameters", "No such order.")
            self._fail(order, "cancelled")
            self._save(book, order)
        return {}

    def _order(self, book: OrderBook[Order], body: dict[str, Any]) -> Order:
        ref = body.get("orderRef")
        order = self._live(book.get(ref)) if isinstance(ref, str) else None
        if order is None:
            raise ApiError(400, "invalidParameters", "No such order.")
        return order

    def _live(self, order: Order | None) -> Order | None:
        """*order* as it stands now (failed once its time ran out), or None once gone."""
        if order is None:
            return None
        if order.status == "pending" and self.clock() - order.created > ORDER_TIMEOUT:
            self._fail(order, "expiredTransaction" if order.opened else "startFailed",
                       at=order.created + ORDER_TIMEOUT)
        if order.status != "pending" and self.clock() - order.finished > FINISHED_TTL:
            return None
        return order

    def _save(self, book: OrderBook[Order], order: Order) -> None:
        ends = order.created + ORDER_TIMEOUT if order.status == "pending" else order.finished
        book.put(order.order_ref, order, keep_until=ends + FINISHED_TTL)

    def _fail(self, order: Order, hint: str, at: float | None = None) -> None:
        order.status, order.hint = "failed", hint
        order.finished = self.clock() if at is None else at

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
        with self.store.reading() as book:
            return [o for o in book.all() if self._live(o) and o.status == "pending"]

    def open(self, order_ref: str) -> None:
        """The person opened the app (scanned the QR code, used autostart, took the call)."""
        with self.store.changing() as book:
            order = self._pending(book, order_ref)
            # over the phone, the app first asks the person to confirm the call
            order.opened = True
            order.hint = "userCallConfirm" if order.kind.startswith("phone/") else "started"
            self._save(book, order)

    def order_for_qr(self, qr_data: str) -> str:
        """The order a scanned ``bankid.<token>.<time>.<code>`` belongs to (code checked)."""
        import hmac

        from signflow.adapters.bankid import qr_auth_code

        parts = qr_data.strip().split(".")
        if len(parts) != 4 or parts[0] != "bankid":
            raise ApiError(400, "invalidParameters", "Not BankID QR data.")
        _, token, seconds, code = parts
        for o in self.open_orders():
            if o.qr_start_token == token and \
                    hmac.compare_digest(qr_auth_code(o.qr_start_secret, seconds), code):
                return o.order_ref
        raise ApiError(404, "notFound", "No open order for that QR code.")

    def user_cancel(self, order_ref: str) -> None:
        with self.store.changing() as book:
            order = self._pending(book, order_ref)
            self._fail(order, "userCancel")
            self._save(book, order)

    def approve(self, order_ref: str, persona: Persona | None = None) -> None:
        with self.store.changing() as book:
            order = self._pending(book, order_ref)
            if persona is None:
                persona = persona_for(order.personal_number)
            if order.personal_number and persona.personal_number != order.personal_number:
                raise ApiError(409, "wrongPerson",
                               "The order requires another personal number.")
            order.completion = self._completion(order, persona)
            order.status, order.hint, order.finished = "complete", "", self.clock()
            self._save(book, order)

    def alter(self, order_ref: str, **changes: Any) -> None:
        """Change an order's fields behind the RP's back, as a broken provider would
        (tests: ``alter(ref, personal_number="")``)."""
        with self.store.changing() as book:
            order = book.get(order_ref)
            if order is None:
                raise ApiError(404, "notFound", "No order with that reference.")
            for name, value in changes.items():
                setattr(order, name, value)
            self._save(book, order)

    def _pending(self, book: OrderBook[Order], order_ref: str) -> Order:
        order = self._live(book.get(order_ref))
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
