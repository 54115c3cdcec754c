"""BankID Relying Party API v6 client (requests; no framework imports).

The same code talks to BankID's servers (mTLS with the RP certificate, the
server CA pinned) and to signflow's simulator (plain HTTP or in-process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from cryptography import x509

from signflow.adapters.bankid_messages import CODES, SERVICE_ERRORS, user_message
from signflow.adapters.evidence_checks import CHECKS, same_person
from signflow.core.ports import CollectResult, OrderStart, SignRequest
from signflow.errors import ProviderError

log = logging.getLogger(__name__)

API_PATH = "/rp/v6.0"
#: Retried silently (BankID asks RPs to retry on maintenance).
RETRYABLE = frozenset({"maintenance"})
MAX_ATTEMPTS = 3


def qr_auth_code(qr_start_secret: str, seconds: int | str) -> str:
    """BankID's QR authentication code: HMAC-SHA256(qrStartSecret, seconds), hex."""
    return hmac.new(qr_start_secret.encode(), str(seconds).encode(), hashlib.sha256).hexdigest()


class BankIDClient:
    """One implementation of :class:`~signflow.core.ports.IdentityProvider`."""

    method_name = "Mobilt BankID"

    def __init__(
        self, base_url: str, *, session: requests.Session | None = None,
        cert: tuple[str, str] | None = None, ca: str | None = None,
        timeout: tuple[float, float] = (5.0, 20.0), retry_pause: float = 0.5,
        roots: list[x509.Certificate] | None = None,
        certificate_policies: tuple[str, ...] = (),
    ) -> None:
        #: Roots BankID's XML signatures must chain to; empty: not checked.
        self.roots = roots or []
        #: Only these BankID certificate policies may sign (e.g. Mobile BankID's).
        self.certificate_policies = certificate_policies
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        if cert:
            self.session.cert = cert
        if ca:
            self.session.verify = ca
        self.timeout = timeout
        self.retry_pause = retry_pause

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{API_PATH}/{endpoint}"
        payload = json.dumps(body, separators=(",", ":"))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                resp = self.session.post(url, data=payload, timeout=self.timeout,
                                         headers={"Content-Type": "application/json"})
            except requests.RequestException as exc:
                log.warning("BankID %s unreachable: %s", endpoint, type(exc).__name__)
                raise _failure("unreachable", code="bankid_unreachable") from None
            if resp.status_code == 200:
                try:
                    return resp.json()
                except ValueError:
                    log.error("BankID %s answered 200 without JSON", endpoint)
                    raise _failure("badResponse", code="bankid_bad_response") from None
            error_code = _error_code(resp)
            if error_code in RETRYABLE and attempt < MAX_ATTEMPTS:
                time.sleep(self.retry_pause * attempt)
                continue
            raise self._refused(endpoint, error_code, resp.status_code)
        raise AssertionError("unreachable")

    @staticmethod
    def _refused(endpoint: str, error_code: str, status: int) -> ProviderError:
        """BankID said no: the user is told BankID's advice, or ours when we erred."""
        shown = _shown_code(error_code, status)
        # only the code and status are logged: the request body holds personal data
        if shown == "serviceError":
            log.error("BankID %s refused our request: %s %s", endpoint, status, error_code)
        else:
            log.info("BankID %s failed: %s %s", endpoint, status, error_code)
        return _failure(shown, code=f"bankid_{error_code}", error_code=error_code,
                        status=status)

    def _requirement(self, personal_number: str) -> dict[str, Any]:
        requirement: dict[str, Any] = {"pinCode": True}
        if personal_number:
            requirement["personalNumber"] = personal_number
        if self.certificate_policies:
            requirement["certificatePolicies"] = list(self.certificate_policies)
        return requirement

    def start_sign(self, request: SignRequest) -> OrderStart:
        """``/sign``: the person approves the visible text and the hidden document hash."""
        body: dict[str, Any] = {
            "endUserIp": request.end_user_ip,
            "userVisibleData": _b64(request.visible_text.encode("utf-8")),
            "userVisibleDataFormat": "simpleMarkdownV1",
            "userNonVisibleData": _b64(request.non_visible_data),
            "requirement": self._requirement(request.personal_number),
        }
        if request.return_url:
            body["returnUrl"] = request.return_url
        web = {k: v for k, v in (("userAgent", request.user_agent),
                                 ("referringDomain", request.referring_domain),
                                 ("deviceIdentifier", request.device_id)) if v}
        if web:
            body["web"] = web
        return self._order(self._post("sign", body))

    def start_auth(self, end_user_ip: str, personal_number: str = "",
                   visible_text: str = "", *, return_url: str = "") -> OrderStart:
        """``/auth``: identification only (sign-in to the secretariat's pages)."""
        body: dict[str, Any] = {"endUserIp": end_user_ip,
                                "requirement": self._requirement(personal_number)}
        if visible_text:
            body["userVisibleData"] = _b64(visible_text.encode("utf-8"))
            body["userVisibleDataFormat"] = "simpleMarkdownV1"
        if return_url:
            body["returnUrl"] = return_url
        return self._order(self._post("auth", body))

    def start_phone_sign(self, request: SignRequest, *, call_initiator: str = "RP"
                         ) -> OrderStart:
        """``/phone/sign``: a signature over the phone (the person is known by number)."""
        body = {
            "personalNumber": request.personal_number, "callInitiator": call_initiator,
            "userVisibleData": _b64(request.visible_text.encode("utf-8")),
            "userVisibleDataFormat": "simpleMarkdownV1",
            "userNonVisibleData": _b64(request.non_visible_data),
            "requirement": {k: v for k, v in self._requirement("").items()},
        }
        return self._order(self._post("phone/sign", body))

    def start_phone_auth(self, personal_number: str, *, call_initiator: str = "RP"
                         ) -> OrderStart:
        """``/phone/auth``: identify a caller (or the person we call)."""
        body = {"personalNumber": personal_number, "callInitiator": call_initiator,
                "requirement": self._requirement("")}
        return self._order(self._post("phone/auth", body))

    def _order(self, data: dict[str, Any]) -> OrderStart:
        try:
            return OrderStart(
                order_ref=str(data["orderRef"]),
                auto_start_token=str(data.get("autoStartToken", "")),
                qr_start_token=str(data.get("qrStartToken", "")),
                qr_start_secret=str(data.get("qrStartSecret", "")),
            )
        except KeyError:
            log.error("BankID answered an order without orderRef")
            raise _failure("badResponse", code="bankid_bad_response") from None

    def qr_payload(self, qr_start_token: str, qr_start_secret: str, seconds: int) -> str:
        """The animated QR: a new HMAC every second; the secret stays on the server."""
        return f"bankid.{qr_start_token}.{seconds}.{qr_auth_code(qr_start_secret, seconds)}"

    def app_link(self, auto_start_token: str, *, mobile: bool = True) -> str:
        """The link that starts the app on this device for the order.

        ``redirect=null``: the order itself carries the ``returnUrl``.  Phones
        open BankID's universal link; computers the ``bankid:`` scheme, which
        the desktop app registers.
        """
        base = "https://app.bankid.com/" if mobile else "bankid:///"
        return f"{base}?autostarttoken={quote(auto_start_token, safe='')}&redirect=null"

    def collect(self, order_ref: str) -> CollectResult:
        data = self._post("collect", {"orderRef": order_ref})
        status = data.get("status")
        if status not in ("pending", "failed", "complete"):
            log.error("BankID collect answered an unknown status")
            raise _failure("badResponse", code="bankid_bad_response")
        completion = data.get("completionData") or {}
        result = CollectResult(order_ref=order_ref, status=status,
                               hint_code=str(data.get("hintCode", "")), completion=completion)
        if status != "complete":
            return result
        return self._checked(result)

    def _checked(self, result: CollectResult) -> CollectResult:
        found = same_person(CHECKS["bankid"](result.completion, self.roots, result.order_ref,
                                             datetime.now(UTC)), result.completion)
        return CollectResult(
            order_ref=result.order_ref, status=result.status, hint_code=result.hint_code,
            completion=result.completion,
            # no root configured: kept, and marked unverified
            signature_valid=found.valid if self.roots else None,
            signed_visible=found.visible_b64, signed_non_visible=found.non_visible_b64,
            signature_problems=found.problems,
        )

    def cancel(self, order_ref: str) -> None:
        self._post("cancel", {"orderRef": order_ref})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error_code(resp: requests.Response) -> str:
    """BankID's ``errorCode`` (its ``details`` are for developers, and not kept)."""
    try:
        body = resp.json()
    except ValueError:
        return "unauthorized" if resp.status_code == 401 else f"http{resp.status_code}"
    return str(body.get("errorCode") or "unknown") if isinstance(body, dict) else "unknown"


def _shown_code(error_code: str, status: int) -> str:
    """The code whose message the user sees for BankID's *error_code*."""
    if error_code in CODES:
        return error_code  # one of BankID's, with its recommended message
    if error_code in SERVICE_ERRORS or status >= 500 or error_code.startswith("http"):
        return "serviceError"
    return error_code


def _failure(shown: str, *, code: str, **fields: object) -> ProviderError:
    """A :class:`ProviderError` whose message is safe to show (Swedish; the
    signer's page words ``user_code`` in the round's language)."""
    fields.setdefault("error_code", shown)
    return ProviderError(user_message(shown, "sv"), code=code, user_code=shown, **fields)


SIMULATOR_URL = "http://bankid-simulator.invalid"
#: "Mobilt BankID" on the signature page is made true by asking BankID for
#: Mobile BankID certificates only (test and production policy OIDs).
MOBILE_POLICIES = {
    "appapi2.test.bankid.com": ("1.2.3.4.25",),
    "appapi2.bankid.com": ("1.2.752.78.1.5",),
}
#: The root a live client accepts users' signatures from, by BankID host: the
#: production service never takes a signature from the test environment.
ROOTS_BY_HOST = {
    "appapi2.test.bankid.com": "bankid-test-root.pem",
    "appapi2.bankid.com": "bankid-production-root.pem",
}


def build(settings, pki, orders=None):
    """Entry point ``bankid``: the RP API client, or the in-process simulator
    (keeping its orders in *orders*, else in this process's memory)."""
    from signflow.adapters.bankid_sim import Simulator
    from signflow.adapters.bankid_sim_web import create_simulator_app
    from signflow.adapters.certs import read_pem_certs, shipped_certs
    from signflow.adapters.providers import ProviderBuild
    from signflow.adapters.sim_store import in_memory
    from signflow.adapters.tls import client_session
    from signflow.adapters.wsgi_transport import in_process_session

    roots = read_pem_certs(settings.bankid_root) if settings.bankid_root else []
    host = urlsplit(settings.bankid_url).hostname or ""
    if not roots and host in ROOTS_BY_HOST:
        roots = shipped_certs(ROOTS_BY_HOST[host])
    if not settings.bankid_url:
        sim = Simulator(pki.bankid_sim, orders=orders or in_memory)
        app = create_simulator_app(sim)
        client = BankIDClient(SIMULATOR_URL, session=in_process_session(app, SIMULATOR_URL),
                              roots=roots or [pki.bankid_sim.cert])
        if not settings.dev_mode:
            log.warning("BankID is the built-in SIMULATOR: set SIGNFLOW_BANKID_URL for real use")
        return ProviderBuild(client, simulator=sim, simulator_app=app, mount="/bankid-sim")
    if settings.bankid_url.startswith("http://") and not any(
            h in settings.bankid_url for h in ("127.0.0.1", "localhost")):
        log.warning("SIGNFLOW_BANKID_URL is plain http: only for simulators")
    session = client_session(cert=settings.bankid_cert, key=settings.bankid_key,
                             password=settings.bankid_cert_password, ca=settings.bankid_ca)
    policies = next((p for host, p in MOBILE_POLICIES.items() if host in settings.bankid_url),
                    ())
    return ProviderBuild(BankIDClient(settings.bankid_url, session=session, roots=roots,
                                      certificate_policies=policies))
