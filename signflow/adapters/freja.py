"""Freja eID+ (Signature Services API) as a second identity provider.

Requests are form-encoded with one field holding base64 JSON, over mTLS with
the relying party's certificate; the ``signRef`` is the transaction ID.  The
result (``details``) is a JWS signed by Freja, checked against the configured
certificate.  Without ``SIGNFLOW_FREJA_URL`` a stand-in (``freja_fake``) runs
in-process, in development only.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from cryptography import x509

from signflow.adapters.bankid_messages import user_message
from signflow.adapters.evidence_checks import CHECKS, same_person
from signflow.core.ports import CollectResult, OrderStart, SignRequest
from signflow.errors import ConfigError, ProviderError

log = logging.getLogger(__name__)

API = "/sign/1.0"
PENDING = {"STARTED": "outstandingTransaction", "DELIVERED_TO_MOBILE": "userSign",
           "OPENED": "userSign"}
#: REJECTED is the person saying no to this signature, not a cancelled attempt.
FAILED = {"CANCELED": "userCancel", "RP_CANCELED": "cancelled",
          "EXPIRED": "expiredTransaction", "REJECTED": "rejected"}
#: What the service needs back: the personal number and the name (Freja sends
#: only the attributes asked for).
ATTRIBUTES = [{"attribute": "SSN"}, {"attribute": "BASIC_USER_INFO"}]
#: Freja's error codes with a message of BankID's set; all others are ours.
SHOWN = {"2000": "alreadyInProgress"}


def _field(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


class FrejaClient:
    """One implementation of :class:`~signflow.core.ports.IdentityProvider`."""

    method_name = "Freja eID+"

    def __init__(self, base_url: str, *, session: requests.Session | None = None,
                 jws_certs: list[x509.Certificate] | None = None,
                 timeout: tuple[float, float] = (5.0, 20.0), title: str = "signflow") -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        #: Certificates Freja's result JWS must verify with; empty: not checked.
        self.roots = jws_certs or []
        self.timeout = timeout
        self.title = title

    def _post(self, endpoint: str, field: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self.session.post(f"{self.base_url}{API}/{endpoint}",
                                     data={field: _field(body)}, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("Freja %s unreachable: %s", endpoint, type(exc).__name__)
            raise _failure("unreachable", code="freja_unreachable") from None
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            log.error("Freja %s answered without JSON", endpoint)
            raise _failure("badResponse", code="freja_bad_response") from None
        if resp.status_code != 200:
            code = str(data.get("code", resp.status_code))
            shown = SHOWN.get(code, "serviceError")
            # Freja's message is for developers; the code is enough to find the cause
            log.log(logging.INFO if code in SHOWN else logging.ERROR,
                    "Freja %s refused: %s %s", endpoint, resp.status_code, code)
            raise _failure(shown, code=f"freja_{code}", error_code=code,
                           status=resp.status_code)
        return data

    def start_sign(self, request: SignRequest) -> OrderStart:
        body: dict[str, Any] = {
            "minRegistrationLevel": "PLUS",
            "title": self.title[:128],
            "dataToSignType": "EXTENDED_UTF8_TEXT",
            "dataToSign": {"text": base64.b64encode(request.visible_text.encode()).decode(),
                           "binaryData": base64.b64encode(request.non_visible_data).decode()},
            "signatureType": "EXTENDED",
            "attributesToReturn": ATTRIBUTES,
        }
        if request.personal_number:
            body["userInfoType"] = "SSN"
            body["userInfo"] = _field({"country": "SE", "ssn": request.personal_number})
        else:
            body["userInfoType"] = "INFERRED"
            body["userInfo"] = "N/A"
        ref = self._post("initSignature", "initSignRequest", body).get("signRef")
        if not ref:
            log.error("Freja answered an order without signRef")
            raise _failure("badResponse", code="freja_bad_response")
        return OrderStart(order_ref=str(ref), auto_start_token=str(ref),
                          qr_start_token=str(ref))

    def qr_payload(self, qr_start_token: str, qr_start_secret: str, seconds: int) -> str:
        """Freja's QR is fixed for the whole order."""
        return f"frejaeid://bindUserToTransaction?transactionReference={qr_start_token}"

    def app_link(self, auto_start_token: str, *, mobile: bool = True) -> str:
        """The link that opens Freja eID on this device for the order."""
        return ("frejaeid://bindUserToTransaction?transactionReference="
                + quote(auto_start_token, safe=""))

    def collect(self, order_ref: str) -> CollectResult:
        data = self._post("getOneResult", "getOneSignResultRequest", {"signRef": order_ref})
        status = str(data.get("status"))
        if status in PENDING:
            return CollectResult(order_ref, "pending", PENDING[status])
        if status in FAILED:
            return CollectResult(order_ref, "failed", FAILED[status])
        if status != "APPROVED":
            log.error("Freja answered an unknown status")
            raise _failure("badResponse", code="freja_bad_response")
        return self._complete(order_ref, data)

    def _complete(self, order_ref: str, data: dict[str, Any]) -> CollectResult:
        attrs = data.get("requestedAttributes") or {}
        basic = attrs.get("basicUserInfo") or {}
        ssn = (attrs.get("ssn") or {}).get("ssn", "")
        details = str(data.get("details") or "")
        completion = {
            "user": {"personalNumber": ssn, "givenName": basic.get("name", ""),
                     "surname": basic.get("surname", ""),
                     "name": f"{basic.get('name', '')} {basic.get('surname', '')}".strip()},
            "signature": base64.b64encode(details.encode()).decode(),
            "provider": "freja",
        }
        if not self.roots:
            return CollectResult(order_ref, "complete", completion=completion)
        found = same_person(CHECKS["freja"](completion, self.roots, order_ref,
                                            datetime.now(UTC)), completion)
        return CollectResult(
            order_ref, "complete", completion=completion, signature_valid=found.valid,
            signed_visible=found.visible_b64, signed_non_visible=found.non_visible_b64,
            signature_problems=found.problems)

    def cancel(self, order_ref: str) -> None:
        self._post("cancel", "cancelSignRequest", {"signRef": order_ref})


def _failure(shown: str, *, code: str, **fields: object) -> ProviderError:
    """A :class:`ProviderError` whose message is safe to show (see ``user_code``)."""
    fields.setdefault("error_code", shown)
    return ProviderError(user_message(shown, "sv"), code=code, user_code=shown, **fields)


FAKE_URL = "http://freja-fake.invalid"


def build(settings, pki, orders=None):
    """Entry point ``freja``: the Freja client, or the in-process stand-in (dev only,
    keeping its orders in *orders*, else in this process's memory)."""
    from signflow.adapters.certs import read_pem_certs
    from signflow.adapters.freja_fake import FrejaFake, create_freja_fake_app
    from signflow.adapters.providers import ProviderBuild
    from signflow.adapters.sim_store import in_memory
    from signflow.adapters.tls import client_session
    from signflow.adapters.wsgi_transport import in_process_session

    if not settings.freja_url:
        if not settings.dev_mode:
            raise ConfigError("Freja eID needs SIGNFLOW_FREJA_URL (the stand-in is for "
                              "development only)")
        fake = FrejaFake(pki.bankid_sim, orders=orders or in_memory)
        app = create_freja_fake_app(fake)
        client = FrejaClient(FAKE_URL, session=in_process_session(app, FAKE_URL),
                             jws_certs=[pki.bankid_sim.cert])
        return ProviderBuild(client, simulator=fake, simulator_app=app, mount="/freja-sim")
    session = client_session(cert=settings.freja_cert, key=settings.freja_key,
                             password=settings.freja_cert_password, ca=settings.freja_ca)
    certs = read_pem_certs(settings.freja_jws_cert) if settings.freja_jws_cert else []
    return ProviderBuild(FrejaClient(settings.freja_url, session=session, jws_certs=certs))
