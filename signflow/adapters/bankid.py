"""BankID Relying Party API v6 client (requests; no framework imports).

The same code talks to BankID's servers (mTLS with the RP certificate, the
server CA pinned) and to signflow's simulator (plain HTTP or in-process).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import requests
from cryptography import x509

from signflow.adapters.bankid_xml import check_signature
from signflow.core.ports import CollectResult, OrderStart, SignRequest
from signflow.errors import ProviderError

log = logging.getLogger(__name__)

API_PATH = "/rp/v6.0"
#: Retried silently (BankID asks RPs to retry on maintenance).
RETRYABLE = frozenset({"maintenance"})
MAX_ATTEMPTS = 3


class BankIDClient:
    """One implementation of :class:`~signflow.core.ports.IdentityProvider`."""

    method_name = "Mobilt BankID"

    def __init__(
        self, base_url: str, *, session: requests.Session | None = None,
        cert: tuple[str, str] | None = None, ca: str | None = None,
        timeout: tuple[float, float] = (5.0, 20.0), retry_pause: float = 0.5,
        roots: list[x509.Certificate] | None = None,
    ) -> None:
        #: Roots BankID's XML signatures must chain to; empty: not checked.
        self.roots = roots or []
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
                raise ProviderError("BankID could not be reached", code="bankid_unreachable",
                                    error_code="unreachable") from None
            if resp.status_code == 200:
                try:
                    return resp.json()
                except ValueError:
                    raise ProviderError("BankID answered with invalid JSON",
                                        code="bankid_bad_response") from None
            error_code, details = _error_of(resp)
            if error_code in RETRYABLE and attempt < MAX_ATTEMPTS:
                time.sleep(self.retry_pause * attempt)
                continue
            log.info("BankID %s failed: %s %s", endpoint, resp.status_code, error_code)
            raise ProviderError(details or error_code, code=f"bankid_{error_code}",
                                error_code=error_code, status=resp.status_code)
        raise AssertionError("unreachable")

    def start_sign(self, request: SignRequest) -> OrderStart:
        body: dict[str, Any] = {
            "endUserIp": request.end_user_ip,
            "userVisibleData": _b64(request.visible_text.encode("utf-8")),
            "userVisibleDataFormat": "simpleMarkdownV1",
            "userNonVisibleData": _b64(request.non_visible_data),
        }
        if request.personal_number:
            body["requirement"] = {"personalNumber": request.personal_number}
        if request.return_url:
            body["returnUrl"] = request.return_url
        data = self._post("sign", body)
        try:
            return OrderStart(
                order_ref=str(data["orderRef"]),
                auto_start_token=str(data.get("autoStartToken", "")),
                qr_start_token=str(data.get("qrStartToken", "")),
                qr_start_secret=str(data.get("qrStartSecret", "")),
            )
        except KeyError:
            raise ProviderError("BankID answered without orderRef",
                                code="bankid_bad_response") from None

    def collect(self, order_ref: str) -> CollectResult:
        data = self._post("collect", {"orderRef": order_ref})
        status = data.get("status")
        if status not in ("pending", "failed", "complete"):
            raise ProviderError(f"unknown BankID status {status!r}", code="bankid_bad_response")
        completion = data.get("completionData") or {}
        result = CollectResult(order_ref=order_ref, status=status,
                               hint_code=str(data.get("hintCode", "")), completion=completion)
        if status != "complete":
            return result
        return self._checked(result)

    def _checked(self, result: CollectResult) -> CollectResult:
        try:
            xml = base64.b64decode(str(result.completion.get("signature", "")), validate=True)
        except ValueError:
            xml = b""
        check = check_signature(xml, self.roots or [])
        valid: bool | None = check.valid
        if not self.roots:
            # Kept, and marked unverified: nothing to chain to.
            valid = None
        return CollectResult(
            order_ref=result.order_ref, status=result.status, hint_code=result.hint_code,
            completion=result.completion, signature_valid=valid,
            signed_visible=check.visible_b64, signed_non_visible=check.non_visible_b64,
            signature_problems=check.problems,
        )

    def cancel(self, order_ref: str) -> None:
        self._post("cancel", {"orderRef": order_ref})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error_of(resp: requests.Response) -> tuple[str, str]:
    try:
        body = resp.json()
        return str(body.get("errorCode") or "unknown"), str(body.get("details") or "")
    except ValueError:
        return ("unauthorized" if resp.status_code == 401 else f"http{resp.status_code}"), ""
