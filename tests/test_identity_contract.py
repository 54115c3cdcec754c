"""One contract suite, run against every implementation of the identity-provider port.

BankID (RP API v6 client) against the simulator in-process, over HTTP, and
over TLS with a PKCS#12 client certificate; Freja eID+ against its stand-in
in-process and over HTTP.  Same tests, same expectations.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from werkzeug.serving import make_server

from signflow.adapters.bankid import BankIDClient
from signflow.adapters.bankid_messages import user_message
from signflow.adapters.bankid_sim import PERSONAS, Simulator
from signflow.adapters.bankid_sim_web import create_simulator_app
from signflow.adapters.freja import FrejaClient
from signflow.adapters.freja_fake import FrejaFake, create_freja_fake_app
from signflow.adapters.tls import client_session, server_context
from signflow.adapters.wsgi_transport import in_process_session
from signflow.core.ports import IdentityProvider, SignRequest
from signflow.errors import ProviderError
from signflow.pdf.pki import issue_tls_certificate, load_pki, write_pair


@dataclass
class Harness:
    provider: IdentityProvider
    #: The person's side: open the order, approve as a persona, cancel.
    person: Callable[[str, str, str | None], None]
    tls: bool = False
    #: Key of the provider's evidence check (``CHECKS``) and the roots it takes.
    provider_id: str = "bankid"
    roots: tuple = ()


def serve(app, context=None):
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context else "http"
    host = "localhost" if context else "127.0.0.1"
    return server, f"{scheme}://{host}:{server.server_port}"


def http_person(url: str, session: requests.Session | None = None):
    s = session or requests.Session()

    def act(order_ref: str, action: str, pnr: str | None = None) -> None:
        body = {"personalNumber": pnr} if pnr else {}
        resp = s.post(f"{url}/sim/orders/{order_ref}/{action}", json=body, timeout=5)
        if resp.status_code != 200:
            raise ProviderError(resp.text, code="person_refused")

    return act


def direct_person(fake):
    def act(order_ref: str, action: str, pnr: str | None = None) -> None:
        persona = next((p for p in PERSONAS if p.personal_number == pnr), None)
        try:
            {"open": lambda: fake.open(order_ref),
             "cancel": lambda: fake.user_cancel(order_ref),
             "approve": lambda: fake.approve(order_ref, persona)}[action]()
        except Exception as exc:  # the fakes' own refusal types
            raise ProviderError(str(exc), code="person_refused") from None

    return act


IMPLEMENTATIONS = ["bankid-in-process", "bankid-http", "bankid-mtls-p12",
                   "freja-in-process", "freja-http"]


@pytest.fixture(params=IMPLEMENTATIONS)
def harness(request, keys_dir, tmp_path):
    ca = load_pki(keys_dir).bankid_sim
    name = request.param
    servers = []
    if name.startswith("bankid"):
        sim = Simulator(ca)
        if name == "bankid-in-process":
            app = create_simulator_app(sim)
            client = BankIDClient("http://sim.invalid", roots=[ca.cert],
                                  session=in_process_session(app, "http://sim.invalid"))
            yield Harness(client, direct_person(sim), roots=(ca.cert,))
        elif name == "bankid-http":
            server, url = serve(create_simulator_app(sim))
            servers.append(server)
            yield Harness(BankIDClient(url, roots=[ca.cert], retry_pause=0.01),
                          http_person(url), roots=(ca.cert,))
        else:
            srv_cert, srv_key = write_pair(tmp_path, "server",
                                           issue_tls_certificate(ca, "localhost", server=True))
            rp = issue_tls_certificate(ca, "signflow RP", server=False)
            p12 = tmp_path / "rp.p12"
            p12.write_bytes(pkcs12.serialize_key_and_certificates(
                b"rp", rp.key, rp.cert, None, serialization.BestAvailableEncryption(b"pw")))
            ca_pem = tmp_path / "ca.pem"
            ca_pem.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
            server, url = serve(create_simulator_app(sim, require_client_cert=True),
                                server_context(str(srv_cert), str(srv_key), str(ca_pem)))
            servers.append(server)
            session = client_session(cert=str(p12), password="pw", ca=str(ca_pem))
            h = Harness(BankIDClient(url, session=session, roots=[ca.cert]),
                        http_person(url, session), tls=True, roots=(ca.cert,))
            h.url, h.ca_pem = url, ca_pem  # type: ignore[attr-defined]
            yield h
    else:
        fake = FrejaFake(ca)
        app = create_freja_fake_app(fake)
        if name == "freja-in-process":
            client = FrejaClient("http://freja.invalid", jws_certs=[ca.cert],
                                 session=in_process_session(app, "http://freja.invalid"))
            yield Harness(client, direct_person(fake), provider_id="freja", roots=(ca.cert,))
        else:
            server, url = serve(app)
            servers.append(server)
            yield Harness(FrejaClient(url, jws_certs=[ca.cert]), http_person(url),
                          provider_id="freja", roots=(ca.cert,))
    for server in servers:
        server.shutdown()


DOC_HASH = bytes(range(32))


def sign_request(pnr: str = "") -> SignRequest:
    return SignRequest(end_user_ip="192.0.2.7", visible_text="# Signera\n\nProtokoll nr 2",
                       non_visible_data=DOC_HASH, personal_number=pnr,
                       user_agent="pytest", referring_domain="example.se", device_id="ab" * 32)


def test_order_goes_pending_then_complete(harness):
    p = harness.provider
    persona = PERSONAS[1]
    order = p.start_sign(sign_request(persona.personal_number))
    first = p.collect(order.order_ref)
    assert first.status == "pending" and first.hint_code
    assert user_message(first.hint_code, "sv", pending=True)
    harness.person(order.order_ref, "open", None)
    assert p.collect(order.order_ref).status == "pending"
    harness.person(order.order_ref, "approve", persona.personal_number)
    done = p.collect(order.order_ref)
    assert done.status == "complete"
    assert done.user["personalNumber"] == persona.personal_number
    assert done.user["name"] == persona.name
    assert done.signature_valid is True
    assert done.signed_visible == base64.b64encode(b"# Signera\n\nProtokoll nr 2").decode()
    assert done.signed_non_visible == base64.b64encode(DOC_HASH).decode()
    assert p.method_name


def test_someone_else_cannot_complete_a_personal_order(harness):
    p = harness.provider
    order = p.start_sign(sign_request(PERSONAS[1].personal_number))
    with pytest.raises(ProviderError):
        harness.person(order.order_ref, "approve", PERSONAS[0].personal_number)
    assert p.collect(order.order_ref).status == "pending"


def test_person_cancels(harness):
    p = harness.provider
    order = p.start_sign(sign_request())
    harness.person(order.order_ref, "cancel", None)
    result = p.collect(order.order_ref)
    assert result.status == "failed" and result.hint_code == "userCancel"
    assert user_message(result.hint_code, "sv") == "Åtgärden avbröts."


def test_relying_party_cancels(harness):
    p = harness.provider
    order = p.start_sign(sign_request())
    p.cancel(order.order_ref)
    result = p.collect(order.order_ref)
    assert result.status == "failed" and result.hint_code == "cancelled"


def test_unknown_order_is_an_error(harness):
    with pytest.raises(ProviderError):
        harness.provider.collect("00000000-0000-0000-0000-000000000000")


def test_second_order_for_the_same_person_is_refused(harness):
    p = harness.provider
    pnr = PERSONAS[2].personal_number
    p.start_sign(sign_request(pnr))
    with pytest.raises(ProviderError):
        p.start_sign(sign_request(pnr))


def test_no_client_certificate_is_401(harness):
    if not harness.tls:
        pytest.skip("only the TLS implementation asks for a client certificate")
    bare = BankIDClient(harness.url, session=client_session(ca=str(harness.ca_pem)))
    with pytest.raises(ProviderError) as err:
        bare.start_sign(sign_request())
    assert err.value.fields["status"] == 401
    assert err.value.fields["error_code"] == "unauthorized"


def test_the_providers_signature_names_the_person(harness):
    """The evidence check finds whom the provider's own signature names, so a
    completion whose plain ``user`` says someone else is caught."""
    from datetime import UTC, datetime

    from signflow.adapters.evidence_checks import CHECKS, same_person

    p, persona = harness.provider, PERSONAS[0]
    order = p.start_sign(sign_request())
    harness.person(order.order_ref, "open", None)
    harness.person(order.order_ref, "approve", persona.personal_number)
    done = p.collect(order.order_ref)
    check = CHECKS[harness.provider_id]
    found = check(done.completion, harness.roots, order.order_ref, datetime.now(UTC))
    assert found.valid, found.problems
    assert (found.personal_number, found.name) == (persona.personal_number, persona.name)
    other = dict(done.completion, user={"personalNumber": PERSONAS[2].personal_number,
                                        "name": PERSONAS[2].name})
    assert not same_person(check(other, harness.roots, order.order_ref), other).valid
