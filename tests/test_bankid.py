"""The BankID client against the simulator over a real HTTP socket."""

import base64
import threading

import pytest
import requests
from werkzeug.serving import make_server

from signflow.adapters.bankid import BankIDClient
from signflow.adapters.bankid_sim import PERSONAS, Simulator
from signflow.adapters.bankid_sim_web import create_simulator_app
from signflow.adapters.bankid_xml import check_signature
from signflow.core.ports import SignRequest
from signflow.errors import ProviderError
from signflow.pdf.pki import load_pki


@pytest.fixture
def simulator(keys_dir):
    sim = Simulator(load_pki(keys_dir).bankid_sim)
    server = make_server("127.0.0.1", 0, create_simulator_app(sim), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sim, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def request(pnr: str = "") -> SignRequest:
    return SignRequest(end_user_ip="192.0.2.10", visible_text="# Signera\n\nProtokoll",
                       non_visible_data=b"\x01" * 32, personal_number=pnr)


def approve_over_http(url: str, order_ref: str, pnr: str | None = None) -> None:
    body = {"personalNumber": pnr} if pnr else {}
    assert requests.post(f"{url}/sim/orders/{order_ref}/approve", json=body,
                         timeout=5).status_code == 200


def test_sign_collect_complete(simulator, keys_dir):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(request())
    pending = client.collect(order.order_ref)
    assert pending.status == "pending" and pending.hint_code == "outstandingTransaction"
    requests.post(f"{url}/sim/orders/{order.order_ref}/open", json={}, timeout=5)
    assert client.collect(order.order_ref).hint_code == "started"
    assert client.collect(order.order_ref).hint_code == "userSign"
    approve_over_http(url, order.order_ref, PERSONAS[2].personal_number)
    done = client.collect(order.order_ref)
    assert done.status == "complete"
    assert done.user["personalNumber"] == PERSONAS[2].personal_number
    assert done.signature_valid is True
    assert done.signed_visible == base64.b64encode(b"# Signera\n\nProtokoll").decode()
    assert done.signed_non_visible == base64.b64encode(b"\x01" * 32).decode()
    again = client.collect(order.order_ref)  # a just-completed order collects again
    assert again.status == "complete"


def test_xml_signature_checks_catch_forgery(simulator, keys_dir):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(request())
    approve_over_http(url, order.order_ref)
    xml = base64.b64decode(client.collect(order.order_ref).completion["signature"])
    assert check_signature(xml, [sim.ca.cert]).valid
    forged = xml.replace(base64.b64encode(b"\x01" * 32), base64.b64encode(b"\x02" * 32))
    check = check_signature(forged, [sim.ca.cert])
    assert not check.valid and any("digest" in p for p in check.problems)
    other_root = load_pki(keys_dir).root.cert
    check = check_signature(xml, [other_root])
    assert not check.valid and any("chain" in p for p in check.problems)


def test_user_cancel_fails_the_order(simulator):
    sim, url = simulator
    client = BankIDClient(url)
    order = client.start_sign(request())
    requests.post(f"{url}/sim/orders/{order.order_ref}/cancel", json={}, timeout=5)
    result = client.collect(order.order_ref)
    assert (result.status, result.hint_code) == ("failed", "userCancel")


def test_rp_cancel(simulator):
    _, url = simulator
    client = BankIDClient(url)
    order = client.start_sign(request())
    client.cancel(order.order_ref)
    assert client.collect(order.order_ref).hint_code == "cancelled"


def test_already_in_progress(simulator):
    _, url = simulator
    client = BankIDClient(url)
    pnr = PERSONAS[0].personal_number
    client.start_sign(request(pnr))
    with pytest.raises(ProviderError) as err:
        client.start_sign(request(pnr))
    assert err.value.fields["error_code"] == "alreadyInProgress"


def test_error_bodies(simulator):
    _, url = simulator
    r = requests.post(f"{url}/rp/v6.0/sign", data='{"endUserIp":"1.2.3.4"}',
                      headers={"Content-Type": "application/json; charset=utf-8"}, timeout=5)
    assert r.status_code == 415 and r.json()["errorCode"] == "unsupportedMediaType"
    r = requests.post(f"{url}/rp/v6.0/sign", json={"endUserIp": "nope",
                                                   "userVisibleData": "eA=="}, timeout=5)
    assert r.status_code == 400 and r.json()["errorCode"] == "invalidParameters"
    r = requests.post(f"{url}/rp/v6.0/collect", json={"orderRef": "unknown"}, timeout=5)
    assert r.status_code == 400 and r.json()["errorCode"] == "invalidParameters"
    r = requests.post(f"{url}/rp/v6.0/nothing", json={}, timeout=5)
    assert r.status_code == 404 and r.json()["errorCode"] == "notFound"


def test_unreachable_bankid_is_a_clear_error():
    client = BankIDClient("http://127.0.0.1:9", timeout=(0.5, 0.5))
    with pytest.raises(ProviderError) as err:
        client.start_sign(request())
    assert err.value.code == "bankid_unreachable"


def test_qr_data_is_bankids_format():
    data = BankIDClient("http://x").qr_payload("67df3917-fa0d-44e5-b327-edcc928297f8",
                   "d28db9a7-4cde-429e-a983-359be676944c", 0)
    assert data == ("bankid.67df3917-fa0d-44e5-b327-edcc928297f8.0."
                    "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8")


def test_whole_round_against_simulator_over_socket(simulator, settings, protocol_pdf, worker):
    """SIGNFLOW_BANKID_URL pointing at a simulator on its own socket, as in production."""
    from signflow import create_app
    from signflow.demo import links_in_outbox, sign_over_http
    from tests.conftest import (
        create_round,
        make_user,
        runtime_for_tests,
        signers_spec,
        wait_for_status,
    )

    sim, url = simulator
    sim_root = settings.keys_dir / "bankid-sim-ca.pem"
    settings = settings.with_overrides(bankid_url=url, bankid_root=str(sim_root))
    rt = runtime_for_tests(settings)
    try:
        assert rt.simulator is None
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "sock@example.se")}
        signers = signers_spec()
        signers[0]["personal_number"] = PERSONAS[0].personal_number
        round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
        links = links_in_outbox(settings.data_dir / "outbox")
        # the wrong person first: refused, and the signer may try again
        result = sign_over_http(client, links[signers[0]["email"]],
                                lambda ref: _wrong_person(sim, ref))
        assert result["status"] == "failed"
        assert result["hint_code"] == "personalNumberMismatch"
        for s, person in zip(signers, PERSONAS, strict=True):  # each invited person signs
            done = sign_over_http(client, links[s["email"]],
                                  lambda ref, p=person: approve_over_http(url, ref,
                                                                          p.personal_number))
            assert done["status"] == "complete"
        body = wait_for_status(client, auth, round_id, "completed")
        assert body["signers"][0]["verified_name"] == PERSONAS[0].name
    finally:
        rt.close()


def _wrong_person(sim, order_ref):
    """Complete an order that required one person as another (a broken provider)."""
    order = sim.orders[order_ref]
    required = order.personal_number
    order.personal_number = ""
    sim.approve(order_ref, PERSONAS[1])
    order.personal_number = required


def test_maintenance_is_retried_silently(simulator):
    sim, url = simulator
    client = BankIDClient(url, retry_pause=0.01)
    sim.inject_fault("sign", 503, "maintenance", times=2)
    assert client.start_sign(request()).order_ref  # third attempt goes through


def test_maintenance_gives_up_after_three(simulator):
    sim, url = simulator
    client = BankIDClient(url, retry_pause=0.01)
    sim.inject_fault("sign", 503, "maintenance", times=3)
    with pytest.raises(ProviderError) as err:
        client.start_sign(request())
    assert err.value.fields["error_code"] == "maintenance"


@pytest.mark.parametrize("status,code", [(500, "internalError"), (408, "requestTimeout")])
def test_no_retry_on_internal_error_or_timeout(simulator, status, code):
    sim, url = simulator
    client = BankIDClient(url, retry_pause=0.01)
    sim.inject_fault("sign", status, code, times=1)
    with pytest.raises(ProviderError) as err:
        client.start_sign(request())
    assert err.value.fields["error_code"] == code
    assert client.start_sign(request()).order_ref  # the one fault was not retried away


def test_auth_and_phone_endpoints(simulator):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    auth = client.start_auth("192.0.2.1")
    assert auth.qr_start_token and auth.auto_start_token
    phone = client.start_phone_sign(request(PERSONAS[0].personal_number))
    assert phone.order_ref and not phone.qr_start_token
    approve_over_http(url, phone.order_ref)
    done = client.collect(phone.order_ref)
    assert done.status == "complete" and done.signature_valid
    assert client.start_phone_auth(PERSONAS[1].personal_number).order_ref
    r = requests.post(f"{url}/rp/v6.0/phone/auth", json={"personalNumber":
                      PERSONAS[2].personal_number, "callInitiator": "nobody"}, timeout=5)
    assert r.status_code == 400 and r.json()["errorCode"] == "invalidParameters"


def test_the_phone_page_says_why_it_refuses_instead_of_a_json_body(simulator):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(request(PERSONAS[0].personal_number))
    wrong = requests.post(f"{url}/sim/orders/{order.order_ref}/approve", timeout=5,
                          data={"personalNumber": PERSONAS[1].personal_number},
                          allow_redirects=False)  # the page's form, as another person
    assert wrong.status_code == 303 and wrong.headers["Location"] == "/?fel=wrongPerson"
    page = requests.get(f"{url}{wrong.headers['Location']}", timeout=5).text
    assert "Ordern gäller en annan person" in page
    assert client.collect(order.order_ref).status == "pending"  # nothing signed
    api = requests.post(f"{url}/sim/orders/{order.order_ref}/approve", timeout=5,
                        json={"personalNumber": PERSONAS[1].personal_number})
    assert api.status_code == 409 and api.json()["errorCode"] == "wrongPerson"  # JSON: as was


def test_requirement_and_web_are_validated(simulator):
    _, url = simulator
    base = {"endUserIp": "192.0.2.1", "userVisibleData": "eA=="}
    for extra in ({"requirement": {"pinCode": "yes"}},
                  {"requirement": {"certificatePolicies": "1.2.3"}},
                  {"requirement": {"color": "red"}},
                  {"web": {"browser": "x"}}):
        r = requests.post(f"{url}/rp/v6.0/sign", json=base | extra, timeout=5)
        assert r.status_code == 400, extra


def test_sign_request_carries_requirement_and_web(keys_dir):
    """What goes over the wire, seen by a recording server."""
    import json as _json

    from flask import Flask
    from flask import request as flask_request

    seen = {}
    app = Flask("recorder")

    @app.post("/rp/v6.0/sign")
    def sign():
        seen["content_type"] = flask_request.headers["Content-Type"]
        seen["body"] = _json.loads(flask_request.data)
        return {"orderRef": "o", "autoStartToken": "a", "qrStartToken": "q",
                "qrStartSecret": "s"}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = BankIDClient(f"http://127.0.0.1:{server.server_port}",
                              certificate_policies=("1.2.3.4.25",))
        client.start_sign(SignRequest(
            end_user_ip="192.0.2.1", visible_text="# Rubrik", non_visible_data=b"\0" * 32,
            personal_number=PERSONAS[0].personal_number, return_url="https://x/y",
            user_agent="UA", referring_domain="signflow.example", device_id="d" * 64))
    finally:
        server.shutdown()
    body = seen["body"]
    assert seen["content_type"] == "application/json"
    assert body["userVisibleDataFormat"] == "simpleMarkdownV1"
    assert base64.b64decode(body["userVisibleData"]) == b"# Rubrik"
    assert base64.b64decode(body["userNonVisibleData"]) == b"\0" * 32
    assert body["requirement"] == {"pinCode": True,
                                   "personalNumber": PERSONAS[0].personal_number,
                                   "certificatePolicies": ["1.2.3.4.25"]}
    assert body["web"] == {"userAgent": "UA", "referringDomain": "signflow.example",
                           "deviceIdentifier": "d" * 64}
    assert body["returnUrl"] == "https://x/y"


def test_hint_and_error_codes_have_messages_in_both_languages():
    from signflow.adapters.bankid_messages import RFA, message_id, user_message

    hints = ["outstandingTransaction", "noClient", "started", "userSign", "userMrtd",
             "userCallConfirm", "userCancel", "cancelled", "expiredTransaction",
             "certificateErr", "startFailed", "userDeclinedCall", "notSupportedByUserApp"]
    errors = ["alreadyInProgress", "requestTimeout", "maintenance", "internalError",
              "invalidParameters", "unauthorized", "notFound", "unreachable"]
    for code in hints + errors:
        for flow in ("same_device", "qr"):
            assert message_id(code, flow=flow) != "RFA22", (code, flow)  # not the fallback
            sv, en = user_message(code, "sv", flow=flow), user_message(code, "en", flow=flow)
            assert sv and en and sv != en
    assert {"RFA1", "RFA2", "RFA3", "RFA4", "RFA5", "RFA6", "RFA8", "RFA9", "RFA13", "RFA15A",
            "RFA15B", "RFA16", "RFA17A", "RFA17B", "RFA19", "RFA20", "RFA21", "RFA22",
            "RFA23"} <= set(RFA)
    assert user_message("somethingNew", "sv") == RFA["RFA22"][0]
    assert user_message("somethingNew", "en", pending=True) == RFA["RFA21"][1]
    assert user_message("startFailed", "sv", flow="qr") == RFA["RFA17B"][0]
    assert user_message("startFailed", "sv", flow="same_device") == RFA["RFA17A"][0]
    assert user_message("alreadyInProgress", "en") == RFA["RFA4"][1]


def test_messages_are_bankids_current_wording():
    """BankID's recommended user messages as developers.bankid.com words them now."""
    from signflow.adapters.bankid_messages import RFA

    assert RFA["RFA1"] == ("Starta BankID-appen.", "Start your BankID app.")
    assert RFA["RFA3"][0] == "Åtgärden avbröts. Försök igen."
    assert RFA["RFA6"][0] == "Åtgärden avbröts."
    assert RFA["RFA9"][0] == ("Skriv in din säkerhetskod i BankID-appen och välj Identifiera "
                              "eller Skriv under.")
    assert RFA["RFA13"] == ("Försöker starta BankID-appen.", "Trying to start your BankID app.")
    assert RFA["RFA16"][0].startswith("Ditt BankID är för gammalt eller spärrat.")
    assert RFA["RFA21"][0] == "En identifiering eller underskrift pågår."
    assert RFA["RFA22"] == ("Något gick fel. Försök igen.",
                            "Something went wrong. Please try again.")


def test_hint_sequence_and_qr_scan(simulator):
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(request())
    assert client.collect(order.order_ref).hint_code == "outstandingTransaction"
    qr = client.qr_payload(order.qr_start_token, order.qr_start_secret, 3)
    r = requests.post(f"{url}/sim/scan", json={"qr": qr}, timeout=5)
    assert r.status_code == 200 and r.json()["orderRef"] == order.order_ref
    assert client.collect(order.order_ref).hint_code == "started"
    assert client.collect(order.order_ref).hint_code == "userSign"
    forged = qr[:-1] + ("0" if qr[-1] != "0" else "1")
    assert requests.post(f"{url}/sim/scan", json={"qr": forged}, timeout=5).status_code == 404


def test_never_opened_fails_as_start_failed_and_old_orders_are_gone(keys_dir):
    from signflow.adapters.wsgi_transport import in_process_session

    now = [1000.0]
    sim = Simulator(load_pki(keys_dir).bankid_sim, clock=lambda: now[0])
    app = create_simulator_app(sim)
    client = BankIDClient("http://s.invalid", session=in_process_session(app, "http://s.invalid"))
    order = client.start_sign(request())
    now[0] += 181
    result = client.collect(order.order_ref)
    assert (result.status, result.hint_code) == ("failed", "startFailed")
    opened = client.start_sign(request())
    sim.open(opened.order_ref)
    now[0] += 181
    assert client.collect(opened.order_ref).hint_code == "expiredTransaction"
    done = client.start_sign(request())
    sim.approve(done.order_ref)
    now[0] += 10
    assert client.collect(done.order_ref).status == "complete"  # just completed: again
    now[0] += 200  # minutes later: the order is gone
    with pytest.raises(ProviderError) as err:
        client.collect(done.order_ref)
    assert err.value.fields["error_code"] == "invalidParameters"


def test_signer_can_try_again_after_an_expired_order(client, auth, runtime, settings,
                                                     protocol_pdf):
    from signflow.demo import links_in_outbox
    from tests.conftest import create_round, signers_spec

    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers)
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    sim = runtime.simulator
    real_clock = sim.clock
    offset = [0.0]
    sim.clock = lambda: real_clock() + offset[0]
    try:
        assert client.post(f"/sign/{token}/bankid").status_code == 200
        offset[0] = 200.0
        body = client.get(f"/sign/{token}/bankid").get_json()
        assert body["status"] == "failed" and body["hint_code"] == "startFailed"
        assert "QR" in body["message"]
        again = client.post(f"/sign/{token}/bankid").get_json()
        sim.approve(again["order_ref"])
        assert client.get(f"/sign/{token}/bankid").get_json()["status"] == "complete"
    finally:
        sim.clock = real_clock
