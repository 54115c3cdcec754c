"""BankID as the real service behaves, seen from the signer's side: the two
ways to start the app, what the user is told (and never told), the simulator's
phone and cancel behaviour, and the signer's address behind a proxy."""

from __future__ import annotations

import logging
import threading

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from signflow import create_app
from signflow.adapters.bankid import BankIDClient
from signflow.adapters.bankid_messages import OWN, RFA
from signflow.adapters.bankid_sim import PERSONAS, Simulator
from signflow.adapters.bankid_sim_web import create_simulator_app
from signflow.core.ports import SignRequest
from signflow.demo import links_in_outbox
from signflow.errors import ProviderError
from signflow.pdf.pki import load_pki
from tests.conftest import create_round, make_user, signers_spec

SERVICE_SV, SERVICE_EN = OWN["serviceError"]
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def simulator(keys_dir):
    sim = Simulator(load_pki(keys_dir).bankid_sim)
    server, url = serve(create_simulator_app(sim))
    yield sim, url
    server.shutdown()


def request(pnr: str = "") -> SignRequest:
    return SignRequest(end_user_ip="192.0.2.10", visible_text="# Signera",
                       non_visible_data=b"\x01" * 32, personal_number=pnr)


# --- the simulator ------------------------------------------------------------------

def test_a_phone_order_asks_to_confirm_the_call_before_the_code(simulator):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_phone_sign(request(PERSONAS[0].personal_number))
    assert client.collect(order.order_ref).hint_code == "outstandingTransaction"
    requests.post(f"{url}/sim/orders/{order.order_ref}/open", json={}, timeout=5)
    assert client.collect(order.order_ref).hint_code == "userCallConfirm"
    assert client.collect(order.order_ref).hint_code == "userSign"
    web = client.start_sign(request())  # an order from a web page: no call to confirm
    requests.post(f"{url}/sim/orders/{web.order_ref}/open", json={}, timeout=5)
    assert client.collect(web.order_ref).hint_code == "started"


@pytest.mark.parametrize("finish", ["approve", "cancel"])
def test_cancelling_a_finished_order_is_invalid_parameters(simulator, finish):
    sim, url = simulator
    client = BankIDClient(url)
    order = client.start_sign(request())
    requests.post(f"{url}/sim/orders/{order.order_ref}/{finish}", json={}, timeout=5)
    r = requests.post(f"{url}/rp/v6.0/cancel", json={"orderRef": order.order_ref}, timeout=5)
    assert (r.status_code, r.json()["errorCode"]) == (400, "invalidParameters")
    with pytest.raises(ProviderError) as err:
        client.cancel(order.order_ref)
    assert err.value.fields["error_code"] == "invalidParameters"
    pending = client.start_sign(request())
    client.cancel(pending.order_ref)  # an open order still cancels
    assert client.collect(pending.order_ref).hint_code == "cancelled"


# --- what reaches the user -------------------------------------------------------------

@pytest.mark.parametrize("status,code", [(400, "invalidParameters"), (401, "unauthorized"),
                                         (404, "notFound")])
def test_our_own_errors_get_our_message_not_bankids_details(simulator, status, code, caplog):
    sim, url = simulator
    sim.inject_fault("sign", status, code)
    with caplog.at_level(logging.INFO), pytest.raises(ProviderError) as err:
        BankIDClient(url).start_sign(request(PERSONAS[0].personal_number))
    assert err.value.message == SERVICE_SV
    assert "Simulated" not in err.value.message  # the simulator's details
    assert err.value.fields["error_code"] == code and err.value.code == f"bankid_{code}"
    logged = caplog.text
    assert code in logged and PERSONAS[0].personal_number not in logged
    assert "userVisibleData" not in logged


def test_bankids_own_errors_get_bankids_messages(simulator):
    sim, url = simulator
    client = BankIDClient(url, retry_pause=0.01)
    client.start_sign(request(PERSONAS[1].personal_number))
    with pytest.raises(ProviderError) as err:
        client.start_sign(request(PERSONAS[1].personal_number))
    assert err.value.message == RFA["RFA4"][0]
    sim.inject_fault("sign", 500, "internalError")
    with pytest.raises(ProviderError) as err:
        client.start_sign(request())
    assert err.value.message == RFA["RFA5"][0]


def test_a_5xx_without_bankid_body_and_no_answer_are_service_errors():
    app = Flask("proxy-in-front-of-bankid")

    @app.post("/rp/v6.0/sign")
    def sign():
        return "<html>Bad Gateway</html>", 502

    server, url = serve(app)
    try:
        with pytest.raises(ProviderError) as err:
            BankIDClient(url).start_sign(request())
    finally:
        server.shutdown()
    assert err.value.message == SERVICE_SV and err.value.fields["status"] == 502
    with pytest.raises(ProviderError) as err:
        BankIDClient("http://127.0.0.1:9", timeout=(0.5, 0.5)).start_sign(request())
    assert err.value.message == SERVICE_SV


@pytest.fixture
def round_tokens(client, auth, settings, protocol_pdf):
    def make(language: str = "sv") -> list[str]:
        signers = signers_spec()
        assert create_round(client, auth, protocol_pdf, signers=signers,
                            language=language).status_code == 201
        links = links_in_outbox(settings.data_dir / "outbox")
        return [links[s["email"]] for s in signers]
    return make


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_signing_page_shows_our_message_for_our_errors(client, runtime, round_tokens,
                                                           language):
    token = round_tokens(language)[0]
    runtime.simulator.inject_fault("sign", 400, "invalidParameters")
    resp = client.post(f"/sign/{token}/bankid")
    body = resp.get_json()
    assert resp.status_code == 502
    assert body["error"]["message"] == (SERVICE_SV if language == "sv" else SERVICE_EN)
    assert "Simulated" not in resp.get_data(as_text=True)
    runtime.simulator.inject_fault("collect", 400, "invalidParameters")
    assert client.post(f"/sign/{token}/bankid").status_code == 200
    polled = client.get(f"/sign/{token}/bankid")
    assert polled.get_json()["error"]["message"] == (SERVICE_SV if language == "sv"
                                                     else SERVICE_EN)


# --- same device or QR ----------------------------------------------------------------

def test_same_device_order_returns_to_the_signers_page(client, runtime, settings,
                                                       round_tokens):
    token = round_tokens()[0]
    body = client.post(f"/sign/{token}/bankid?flow=same_device&device=phone").get_json()
    assert body["app_link"] == (f"https://app.bankid.com/?autostarttoken="
                                f"{body['auto_start_token']}&redirect=null")
    assert body["message"] == RFA["RFA13"][0]
    order = runtime.simulator.orders[body["order_ref"]]
    assert order.return_url == f"{settings.base_url}/sign/{token}#bankid"
    polled = client.get(f"/sign/{token}/bankid?flow=same_device").get_json()
    assert (polled["hint_code"], polled["message"]) == ("outstandingTransaction",
                                                        RFA["RFA13"][0])


def test_qr_order_asks_to_start_the_app_and_has_no_return_url(client, runtime, round_tokens):
    token = round_tokens()[0]
    body = client.post(f"/sign/{token}/bankid?flow=qr").get_json()
    assert body["message"] == RFA["RFA1"][0]
    assert runtime.simulator.orders[body["order_ref"]].return_url == ""
    assert client.get(f"/sign/{token}/bankid?flow=qr").get_json()["message"] == RFA["RFA1"][0]
    # a computer's "open BankID on this device" starts the desktop app
    here = client.post(f"/sign/{token}/bankid", json={"flow": "same_device"}).get_json()
    assert here["app_link"].startswith("bankid:///?autostarttoken=")


def test_a_phones_user_agent_gets_the_phone_layout(client, round_tokens):
    token = round_tokens()[0]
    phone = client.get(f"/sign/{token}", headers={"User-Agent": IPHONE}).get_data(as_text=True)
    assert 'id="start-computer" class="choices" hidden' in phone
    assert 'id="start-phone" class="choices">' in phone
    desk = client.get(f"/sign/{token}").get_data(as_text=True)
    assert 'id="start-phone" class="choices" hidden' in desk


def test_same_device_over_a_simulator_on_its_own_socket(simulator, settings, protocol_pdf,
                                                        worker):
    """The returnUrl travels over HTTP to the simulator, as it would to BankID."""
    from tests.conftest import runtime_for_tests

    sim, url = simulator
    settings = settings.with_overrides(bankid_url=url,
                                       bankid_root=str(settings.keys_dir / "bankid-sim-ca.pem"))
    rt = runtime_for_tests(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "flow@example.se")}
        signers = signers_spec()
        assert create_round(client, auth, protocol_pdf, signers=signers).status_code == 201
        token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
        client.post(f"/sign/{token}/bankid?flow=same_device",
                    headers={"User-Agent": IPHONE})
        [order] = requests.get(f"{url}/sim/orders", timeout=5).json()["orders"]
        assert order["returnUrl"] == f"{settings.base_url}/sign/{token}#bankid"
    finally:
        rt.close()


# --- endUserIp behind a proxy -------------------------------------------------------------

def _start_from(client, token: str, **headers: str) -> str:
    resp = client.post(f"/sign/{token}/bankid", headers=headers,
                       environ_base={"REMOTE_ADDR": "10.0.0.2"})  # the proxy's own address
    return resp.get_json()["order_ref"]


def test_end_user_ip_comes_from_the_trusted_proxy(settings, runtime, round_tokens):
    tokens = round_tokens()
    client = create_app(settings.with_overrides(proxy_hops=1), runtime).test_client()
    ref = _start_from(client, tokens[0], **{"X-Forwarded-For": "203.0.113.7"})
    assert runtime.simulator.orders[ref].end_user_ip == "203.0.113.7"
    # a client's own X-Forwarded-For comes first; the proxy appends the real address
    ref = _start_from(client, tokens[1], **{"X-Forwarded-For": "6.6.6.6, 203.0.113.8"})
    assert runtime.simulator.orders[ref].end_user_ip == "203.0.113.8"


def test_without_a_proxy_the_header_is_ignored(client, runtime, round_tokens):
    ref = _start_from(client, round_tokens()[0], **{"X-Forwarded-For": "6.6.6.6"})
    assert runtime.simulator.orders[ref].end_user_ip == "10.0.0.2"
