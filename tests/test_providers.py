"""Providers chosen per workflow, and registered through entry points."""

import sys

from signflow.adapters.bankid_sim import PERSONAS
from signflow.adapters.providers import GROUP, Providers, registered
from signflow.config import load_settings
from signflow.demo import links_in_outbox, sign_over_http
from tests.conftest import create_round, signers_spec, wait_for_status


def test_round_with_the_freja_workflow(client, auth, runtime, settings, protocol_pdf):
    from pathlib import Path

    assert "freja" in runtime.services.workflows or Path("workflows/freja.toml").exists()
    signers = signers_spec()
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="freja")
    assert resp.status_code == 201, resp.get_json()
    round_id = resp.get_json()["id"]
    links = links_in_outbox(settings.data_dir / "outbox")
    page = client.get(f"/sign/{links[signers[0]['email']]}").get_data(as_text=True)
    assert "Signera med Freja eID" in page
    fake = runtime.providers.build("freja").simulator

    def approve_as(person):
        def approve(ref):
            fake.open(ref)
            fake.approve(ref, person)
        return approve

    for s, person in zip(signers, PERSONAS, strict=True):  # each invited person signs
        assert sign_over_http(client, links[s["email"]],
                              approve_as(person))["status"] == "complete"
    body = wait_for_status(client, auth, round_id, "completed")
    assert {s["method"] for s in body["signers"]} == {"Freja eID+"}
    pdf = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    from signflow.pdf.verify import verify_pdf

    report = verify_pdf(pdf, runtime.trust_anchors(), runtime.provider_roots())
    assert report.valid, [(s.field, s.problems) for s in report.signatures]
    approvals = [s for s in report.signatures if s.kind == "approval"]
    assert all(a.evidence and a.evidence.provider == "Freja eID+" and a.evidence.matches_document
               for a in approvals)


def test_unknown_workflow_is_400(client, auth, protocol_pdf):
    resp = create_round(client, auth, protocol_pdf, workflow="nosuch")
    assert resp.status_code == 400
    assert "workflow" in resp.get_json()["error"]["message"]


def test_sequential_workflow_sets_the_order(client, auth, protocol_pdf):
    body = create_round(client, auth, protocol_pdf, workflow="sequential").get_json()
    assert body["order"] == "sequential"
    assert [s["status"] for s in body["signers"]] == ["invited", "waiting", "waiting"]


def test_shipped_providers_are_entry_points():
    assert {"bankid", "freja"} <= set(registered())


def test_a_third_provider_registers_without_editing_signflow(tmp_path, monkeypatch, settings,
                                                             keys_dir):
    """A package of its own declares the entry point; signflow finds and builds it."""
    from signflow.pdf.pki import load_pki

    pkg = tmp_path / "thirdid.py"
    pkg.write_text(
        "from signflow.adapters.providers import ProviderBuild\n"
        "class Third:\n"
        "    def __init__(self, url):\n"
        "        self.url = url\n"
        "    method_name = 'Third eID'\n"
        "def build(settings, pki):\n"
        "    return ProviderBuild(Third(settings.provider_setting('third', 'url')))\n")
    dist = tmp_path / "thirdid-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdid\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nthird = thirdid:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "third" in registered()
    # its settings come from the environment through Settings, which never names it
    own = load_settings({"SIGNFLOW_THIRD_URL": "https://third.example", "SIGNFLOW_KEYS_DIR":
                         str(keys_dir)})
    providers = Providers(own, load_pki(keys_dir))
    assert providers["third"].method_name == "Third eID"
    assert providers["third"].url == "https://third.example"
    sys.modules.pop("thirdid", None)


def test_production_mode_without_freja(settings, protocol_pdf, worker):
    """An installed but unconfigured provider neither breaks verification nor starts rounds."""
    import io

    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    settings = settings.with_overrides(  # BankID configured; other stand-ins allowed
        dev_mode=False, bankid_url="https://appapi2.test.bankid.com", allow_dev_bankid=True,
        allow_dev_tsa=True, allow_dev_smtp=True, allow_dev_seal=True)
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        assert client.get("/freja-sim/").status_code == 404
        assert client.get("/bankid-sim/").status_code == 404  # nobody approves as anyone
        assert client.get("/dev/outbox").status_code == 404
        resp = client.post("/api/v1/verify",
                           data={"document": (io.BytesIO(protocol_pdf), "x.pdf")})
        assert resp.status_code == 200 and resp.get_json()["valid"] is False
        auth = {"Authorization": "Bearer " + make_user(rt, "prod@example.se")}
        resp = create_round(client, auth, protocol_pdf, workflow="freja")
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "provider_unavailable"
    finally:
        rt.close()


# --- Freja eID+ ------------------------------------------------------------------

def _freja(keys_dir, certs=None):
    from signflow.adapters.freja import FrejaClient
    from signflow.adapters.freja_fake import FrejaFake, create_freja_fake_app
    from signflow.adapters.wsgi_transport import in_process_session
    from signflow.pdf.pki import load_pki

    ca = load_pki(keys_dir).bankid_sim
    fake = FrejaFake(ca)
    session = in_process_session(create_freja_fake_app(fake), "http://freja.invalid")
    return fake, FrejaClient("http://freja.invalid", session=session,
                             jws_certs=[ca.cert] if certs is None else certs)


def _sign_request(pnr: str = ""):
    from signflow.core.ports import SignRequest

    return SignRequest(end_user_ip="192.0.2.9", visible_text="Signera", personal_number=pnr,
                       non_visible_data=b"\x07" * 32)


def test_freja_is_asked_for_the_personal_number_and_name(keys_dir):
    fake, client = _freja(keys_dir)
    order = client.start_sign(_sign_request())
    assert fake.orders[order.order_ref].attributes == {"SSN", "BASIC_USER_INFO"}
    fake.approve(order.order_ref, PERSONAS[2])
    done = client.collect(order.order_ref)
    assert done.signature_valid, done.signature_problems
    assert (done.user["personalNumber"], done.user["name"]) == (PERSONAS[2].personal_number,
                                                                PERSONAS[2].name)
    # Freja sends only what is asked for: without the request, no identity comes back
    bare = fake.init_signature({"userInfoType": "INFERRED", "userInfo": "N/A",
                                "dataToSignType": "SIMPLE_UTF8_TEXT",
                                "dataToSign": {"text": "eA=="}})
    fake.approve(bare["signRef"], PERSONAS[2])
    assert fake.get_one_result({"signRef": bare["signRef"]})["requestedAttributes"] == {}


def test_freja_rejected_is_its_own_outcome(keys_dir):
    from signflow.adapters.bankid_messages import user_message

    fake, client = _freja(keys_dir)
    order = client.start_sign(_sign_request())
    fake.reject(order.order_ref)
    result = client.collect(order.order_ref)
    assert (result.status, result.hint_code) == ("failed", "rejected")
    assert user_message("rejected", "sv") != user_message("userCancel", "sv")
    assert "avböjde" in user_message("rejected", "sv")


def _other_cert():
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Freja's other key")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))


def _renamed(token: str, cert, key) -> str:
    """*token* signed again with *key*, but with a header naming *cert* (x5t)."""
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from signflow.adapters.jws import b64url

    header = {"alg": "ES256", "x5t": b64url(cert.fingerprint(hashes.SHA1()))}  # noqa: S303
    signing_input = b64url(json.dumps(header).encode()) + "." + token.split(".")[1]
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_freja_jws_is_checked_with_the_certificate_its_x5t_names(keys_dir):
    import base64

    from signflow.adapters.evidence_checks import CHECKS

    other = _other_cert()
    fake, client = _freja(keys_dir, certs=[other, load_ca(keys_dir)])
    order = client.start_sign(_sign_request())
    fake.approve(order.order_ref, PERSONAS[0])
    done = client.collect(order.order_ref)  # two configured: the x5t picks the right one
    assert done.signature_valid, done.signature_problems
    check = CHECKS["freja"]
    assert not check(done.completion, [other], order.order_ref).valid  # x5t names none
    from signflow.pdf.pki import load_pki

    ca = load_pki(keys_dir).bankid_sim
    token = base64.b64decode(done.completion["signature"]).decode()
    honest = dict(done.completion,  # re-signed, naming the right certificate: still good
                  signature=base64.b64encode(_renamed(token, ca.cert, ca.key).encode()).decode())
    assert check(honest, [other, ca.cert], order.order_ref).valid
    # signed by the CA's key but claiming the other certificate: only that one may verify
    forged = dict(done.completion,
                  signature=base64.b64encode(_renamed(token, other, ca.key).encode()).decode())
    assert not check(forged, [other, ca.cert], order.order_ref).valid


def load_ca(keys_dir):
    from signflow.pdf.pki import load_pki

    return load_pki(keys_dir).bankid_sim.cert


def test_freja_errors_reach_users_as_our_words_not_frejas(keys_dir):
    import pytest

    from signflow.adapters.bankid_messages import OWN, RFA
    from signflow.errors import ProviderError

    _, client = _freja(keys_dir)
    client.start_sign(_sign_request(PERSONAS[1].personal_number))
    with pytest.raises(ProviderError) as err:
        client.start_sign(_sign_request(PERSONAS[1].personal_number))
    assert err.value.message == RFA["RFA4"][0]  # the user's: already in progress
    with pytest.raises(ProviderError) as err:
        client._post("initSignature", "initSignRequest", {"userInfoType": "NONSENSE"})
    assert err.value.message == OWN["serviceError"][0]  # ours: a request we got wrong
    assert "userInfoType" not in err.value.message and err.value.fields["error_code"] == "1001"


def test_a_freja_round_keeps_its_own_app_link(client, auth, settings, protocol_pdf):
    signers = signers_spec()
    create_round(client, auth, protocol_pdf, signers=signers, workflow="freja")
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "Öppna Freja eID" in page and "Signera med Freja eID" in page
    body = client.post(f"/sign/{token}/bankid?flow=same_device&device=phone").get_json()
    assert body["app_link"] == ("frejaeid://bindUserToTransaction?transactionReference="
                                + body["auto_start_token"])
