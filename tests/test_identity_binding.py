"""Only the invited person signs; personal numbers stay encrypted and out of the trail."""

from __future__ import annotations

import contextlib
import json
import logging

import pytest
from sqlalchemy import func, select, text

from signflow.adapters.bankid_sim import PERSONAS
from signflow.core.identity import IdentityCheck, check_for, compare, names_match
from signflow.core.models import Round
from signflow.core.workflows import load_workflows
from signflow.demo import links_in_outbox, sign_over_http
from signflow.errors import ConfigError
from tests.conftest import approve_with, create_round, signers_spec
from tests.test_verify_page import post_verify

MIKAEL, ARDIANA, CARINA = PERSONAS


def person(p) -> dict:
    return {"name": p.name, "givenName": p.given_name, "surname": p.surname,
            "personalNumber": p.personal_number}


@pytest.mark.parametrize("invited", [
    "Carina Leffler", "carina leffler", "LEFFLER Carina", "Leffler, Carina",
])
def test_names_match_regardless_of_case_and_order(invited):
    assert names_match(invited, person(CARINA))


def test_names_match_with_diacritics_hyphens_and_extra_given_names():
    user = {"name": "Anna-Karin Maria Öberg Lindén", "givenName": "Anna-Karin Maria",
            "surname": "Öberg Lindén"}
    for invited in ("Anna-Karin Öberg Lindén", "Anna Karin Oberg", "Maria Linden",
                    "Anna-Karin Öberg-Lindén", "AnnaKarin Oberg"):
        assert names_match(invited, user), invited


@pytest.mark.parametrize("invited", [
    "Carina", "Leffler", "Karin Leffler", "Carina Lefler", "Mikael Johansson", "",
])
def test_names_that_do_not_match(invited):
    assert not names_match(invited, person(CARINA))


def test_policy_decides_what_is_compared():
    assert check_for("auto", True) is IdentityCheck.PERSONAL_NUMBER
    assert check_for("auto", False) is IdentityCheck.NAME
    assert check_for("name", False) is IdentityCheck.NAME
    assert check_for("none", False) is IdentityCheck.NONE
    assert check_for("none", True) is IdentityCheck.PERSONAL_NUMBER  # given: always checked
    wrong = compare(IdentityCheck.PERSONAL_NUMBER, invited_name=CARINA.name,
                    invited_personal_number=CARINA.personal_number, user=person(ARDIANA))
    assert wrong is not None and wrong.code == "personalNumberMismatch"


def outbox(settings) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((settings.data_dir / "outbox")
                                                      .glob("*.json"))]


def events_of(client, auth, round_id) -> list[dict]:
    return client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()["events"]


def test_a_forwarded_link_signed_by_another_person_is_refused(client, auth, runtime, settings,
                                                              protocol_pdf):
    signers = signers_spec()  # no personal numbers: the name binds
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    token = links_in_outbox(settings.data_dir / "outbox")[signers[2]["email"]]
    sent_before = len(outbox(settings))

    refused = sign_over_http(client, token, approve_with(runtime, MIKAEL))

    assert refused["status"] == "failed" and refused["hint_code"] == "nameMismatch"
    assert "inte den inbjudna" in refused["message"]
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["status"] == "pending" and body["signers"][2]["status"] == "invited"
    mismatch = [e for e in events_of(client, auth, round_id)
                if e["type"] == "signer.identity_mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["data"]["check"] == "name"
    assert mismatch[0]["data"]["reported_name"] == MIKAEL.name
    mail = outbox(settings)[sent_before:]
    assert len(mail) == 1 and mail[0]["to"].startswith("sekretariat-")  # the secretariat
    assert "Fel person" in mail[0]["subject"]
    assert "Carina Leffler" in mail[0]["body"] and "Mikael Johansson" in mail[0]["body"]
    page = client.get(f"/sign/{token}").get_data(as_text=True)
    assert "Du har signerat" not in page

    # the link still works for the invited person
    assert sign_over_http(client, token, approve_with(runtime, CARINA))["status"] == "complete"


def test_a_personal_number_mismatch_is_refused_even_if_the_provider_lets_it_through(
        client, auth, runtime, settings, protocol_pdf):
    signers = signers_spec()
    signers[1]["personal_number"] = ARDIANA.personal_number
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    token = links_in_outbox(settings.data_dir / "outbox")[signers[1]["email"]]
    sim = runtime.simulator

    def approve_as_someone_else(order_ref: str) -> None:
        assert sim.orders[order_ref].personal_number == ARDIANA.personal_number  # required
        sim.alter(order_ref, personal_number="")  # a provider that failed to enforce it
        sim.open(order_ref)
        sim.approve(order_ref, CARINA)

    refused = sign_over_http(client, token, approve_as_someone_else)
    assert refused["hint_code"] == "personalNumberMismatch"
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["signers"][1]["status"] == "invited"
    trail = json.dumps(events_of(client, auth, round_id))
    assert "personal_number" in trail  # the check is named …
    for p in PERSONAS:
        assert p.personal_number not in trail  # … never the number
    assert sign_over_http(client, token, approve_with(runtime))["status"] == "complete"


def test_personal_numbers_are_encrypted_at_rest_and_never_returned(client, auth, runtime,
                                                                    protocol_pdf):
    signers = signers_spec()
    signers[0]["personal_number"] = MIKAEL.personal_number[:8] + "-" + MIKAEL.personal_number[8:]
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201
    body = resp.get_json()
    assert MIKAEL.personal_number not in resp.get_data(as_text=True)
    assert body["signers"][0]["personal_number_required"] is True
    assert body["signers"][1]["personal_number_required"] is False
    with runtime.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM signers"))]
    assert MIKAEL.personal_number not in repr(rows)
    sealed = [r["personal_number_sealed"] for r in rows if r["personal_number_sealed"]]
    assert len(sealed) == 1 and sealed[0].startswith("v1:")

    client.post(f"/api/v1/rounds/{body['id']}/cancel", headers=auth)
    with runtime.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM signers WHERE "
                                 "personal_number_sealed IS NOT NULL")).scalar()
    assert left == 0  # erased once the round ended


def test_a_sealed_personal_number_opens_only_for_its_own_signer(runtime):
    sealer = runtime.services.sealer
    token = sealer.seal(CARINA.personal_number, bound_to="signer-a")
    assert sealer.open(token, bound_to="signer-a") == CARINA.personal_number
    with pytest.raises(ConfigError):
        sealer.open(token, bound_to="signer-b")


def write_workflow(tmp_path, name: str, identity: str):
    (tmp_path / f"{name}.toml").write_text(
        f'name = "{name}"\norder = "parallel"\nidentity = "{identity}"\n', encoding="utf-8")


@contextlib.contextmanager
def app_with_workflow(tmp_path, settings, name: str, identity: str):
    """A test client of an app whose workflows dir holds *name* with *identity*, and its runtime."""
    from signflow import create_app
    from tests.conftest import make_user, runtime_for_tests

    write_workflow(tmp_path, name, identity)
    rt = runtime_for_tests(settings.with_overrides(workflows_dir=tmp_path))
    try:
        client = create_app(settings, rt).test_client()
        yield client, {"Authorization": "Bearer " + make_user(rt, "sek@example.se")}, rt
    finally:
        rt.close()


def test_a_workflow_that_binds_by_personal_number_needs_them(tmp_path, settings, protocol_pdf,
                                                              worker):
    with app_with_workflow(tmp_path, settings, "strikt", "personal_number") as (client, auth, rt):
        resp = create_round(client, auth, protocol_pdf, workflow="strikt")
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "personal_number_required"
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Round)) == 0


def test_a_broken_identity_setting_stops_loading(tmp_path):
    write_workflow(tmp_path, "fel", "bankid")
    with pytest.raises(ConfigError, match="fel.toml.*identity"):
        load_workflows(tmp_path)


def test_identity_none_lets_anyone_sign_and_says_so(tmp_path, settings, protocol_pdf, worker):
    from tests.conftest import wait_for_status

    with app_with_workflow(tmp_path, settings, "oppen", "none") as (client, auth, rt):
        signers = signers_spec()[:1]
        body = create_round(client, auth, protocol_pdf, workflow="oppen",
                            signers=signers).get_json()
        assert body["identity_policy"] == "none"
        token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
        assert sign_over_http(client, token, approve_with(rt, CARINA))["status"] == "complete"
        done = wait_for_status(client, auth, body["id"], "completed")
        assert done["signers"][0]["identity_check"] == "none"
        pdf = client.get(f"/api/v1/rounds/{body['id']}/document", headers=auth).data
        assert b"Identiteten kontrollerades inte mot inbjudan" in pdf
        report = client.post("/api/v1/verify", data={
            "document": (__import__("io").BytesIO(pdf), "x.pdf")}).get_json()
        approval = next(s for s in report["signatures"] if s["kind"] == "approval")
        assert approval["evidence"]["identity_check"] == "none"
        page = post_verify(client, pdf).get_data(as_text=True)
        assert "Identiteten kontrollerades inte mot inbjudan." in page


def test_no_personal_number_in_the_audit_trail_or_the_logs(client, auth, runtime, settings,
                                                          protocol_pdf, caplog):
    from tests.conftest import sign_all, wait_for_status

    caplog.set_level(logging.DEBUG)
    signers = signers_spec()
    for spec, p in zip(signers, PERSONAS, strict=True):
        spec["personal_number"] = p.personal_number
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    sign_all(client, runtime, settings, signers)
    wait_for_status(client, auth, round_id, "completed")
    trail = json.dumps(events_of(client, auth, round_id))
    assert trail.count('"identity_check": "personal_number"') == 3
    for p in PERSONAS:
        assert p.personal_number not in trail
        assert p.personal_number not in caplog.text


def test_the_providers_evidence_is_encrypted_at_rest_too(client, auth, runtime, settings,
                                                        protocol_pdf):
    from tests.conftest import sign_all

    signers = signers_spec()[:1]
    create_round(client, auth, protocol_pdf, signers=signers)
    sign_all(client, runtime, settings, signers)
    with runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT completion_json FROM bankid_evidence")).scalar()
    assert stored.startswith("v1:") and MIKAEL.personal_number not in stored
    assert "personalNumber" not in stored and "signature" not in stored


def test_signing_link_tokens_never_reach_the_request_log(live_app, caplog):
    """A request line with a link token is logged without it (werkzeug, as gunicorn)."""
    import requests

    token = "Abc_def-" * 5 + "xyz"
    caplog.set_level(logging.INFO, logger="werkzeug")
    requests.get(f"{live_app.url}/sign/{token}", timeout=10)
    requests.get(f"{live_app.url}/sign/{token}/bankid", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/sign/[link]" in line for line in lines), lines
    assert not any(token in line for line in lines)
    logging.getLogger("gunicorn.access").warning('"GET /sign/%s HTTP/1.1" 200', token)
    assert token not in caplog.text
