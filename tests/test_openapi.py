"""The OpenAPI description of /api/v1 says what the code does, and stays so."""

from __future__ import annotations

import dataclasses
import io
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from signflow.pdf.verify import SignatureReport, VerificationReport
from signflow.pdf.verify_evidence import EvidenceReport
from signflow.web.openapi import PREFIX, description
from tests.conftest import create_round
from tests.test_notice import protokoll_round  # noqa: F401 - a fixture

METHODS = {"get", "post", "put", "patch", "delete"}


def routes_of(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every rule under /api/v1, HEAD and OPTIONS aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
        found |= {(m.lower(), path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return found


def described(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items()
            for method in item if method in METHODS}


def schema_of(doc: dict, name: str) -> dict:
    """A component schema that resolves its references within *doc* (JSON Schema 2020-12)."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def check(doc: dict, name: str, instance: object) -> None:
    jsonschema.Draft202012Validator(
        schema_of(doc, name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(instance)


def test_every_api_route_is_described_and_nothing_else(app):
    doc = description()
    assert routes_of(app) - described(doc) == set(), "routes the description lacks"
    assert described(doc) - routes_of(app) == set(), "described operations with no route"


def test_the_description_is_valid_openapi_3_1():
    doc = description()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_operation_names_its_errors_with_the_error_schema():
    ids = [op["operationId"] for item in description()["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in description()["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            assert "503" in statuses, (method, path)
            if op.get("security") is None:  # the bearer token of the whole API
                assert {"401", "403"} <= statuses, (method, path)


def test_the_description_is_served_without_a_token(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.get_json() == description()
    again = client.get("/api/v1/openapi.json", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304


def test_the_report_schemas_name_every_field_of_the_reports():
    schemas = description()["components"]["schemas"]
    for cls, name in ((VerificationReport, "VerificationReport"),
                      (SignatureReport, "SignatureReport"), (EvidenceReport, "EvidenceReport")):
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields <= set(schemas[name]["properties"]), name


def test_a_new_round_and_its_list_answer_as_described(client, auth, protocol_pdf):
    doc = description()
    resp = create_round(client, auth, protocol_pdf)
    assert resp.status_code == 201, resp.get_json()
    check(doc, "Round", resp.get_json())
    round_id = resp.get_json()["id"]
    check(doc, "RoundsPage", client.get("/api/v1/rounds", headers=auth).get_json())
    check(doc, "AuditTrail",
          client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json())
    for bad in ({"title": ""}, {"signers": "x"}):
        refused = create_round(client, auth, protocol_pdf, **bad)
        assert refused.status_code == 400
        check(doc, "Error", refused.get_json())


def test_a_webhook_and_its_list_answer_as_described(client, auth):
    doc = description()
    resp = client.post("/api/v1/webhooks", headers=auth,
                       json={"url": "https://example.se/hook", "events": ["round.completed"]})
    assert resp.status_code == 201, resp.get_json()
    check(doc, "NewWebhook", resp.get_json())
    check(doc, "WebhookList", client.get("/api/v1/webhooks", headers=auth).get_json())
    check(doc, "DeliveryList",
          client.get("/api/v1/webhooks/deliveries", headers=auth).get_json())
    gone = client.delete(f"/api/v1/webhooks/{resp.get_json()['id']}", headers=auth)
    check(doc, "Webhook", gone.get_json())


DEEP = "[" * 100_000 + "]" * 100_000  # deeper than Python's JSON parser goes
HUGE = "1" * 5000  # more digits than int() takes


@pytest.mark.parametrize("query", ["page=%C2%B2", f"page={HUGE}", "per_page=%C2%B9"])
def test_a_page_number_that_is_no_ascii_number_is_refused_as_described(client, auth, query):
    resp = client.get(f"/api/v1/rounds?{query}", headers=auth)
    assert resp.status_code == 400
    check(description(), "Error", resp.get_json())


@pytest.mark.parametrize("raw", [DEEP, HUGE])
def test_a_round_json_python_cannot_read_is_refused_as_described(client, auth, protocol_pdf,
                                                                  raw):
    resp = client.post("/api/v1/rounds", headers=auth, data={
        "round": raw, "document": (io.BytesIO(protocol_pdf), "p.pdf")})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "round"


@pytest.mark.parametrize("path", ["/webhooks", "/rounds/x/deadline", "/rounds/x/notice",
                                  "/rounds/x/signers/y/replace"])
def test_json_nested_past_the_parsers_depth_is_refused_as_described(client, auth, path):
    resp = client.post(f"/api/v1{path}", data=DEEP,
                       headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 400
    check(description(), "Error", resp.get_json())


@pytest.mark.parametrize("url", ["https://[", "http://[::1/", "https://example.se:99999/",
                                 "https://xn--/x", "https://a..b/", "https://-x.se/",
                                 f"https://{'a' * 64}.se/", "https://☃.net/h"])
def test_a_webhook_url_python_cannot_split_is_refused_as_described(client, auth, url):
    """Hosts no DNS could hold are refused too: their deliveries would fail for ever."""
    resp = client.post("/api/v1/webhooks", headers=auth, json={"url": url})
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "url"


@pytest.mark.parametrize("url", ["https://åre.se/hook", "https://straße.de/hook",
                                 "https://xn--strae-oqa.de/hook"])
def test_a_webhook_on_a_host_name_in_other_letters_is_taken_as_requests_sends_it(
        client, auth, url):
    """IDNA 2008, as requests encodes a host: "☃.net" (above) it cannot send to."""
    resp = client.post("/api/v1/webhooks", headers=auth, json={"url": url})
    assert resp.status_code == 201, resp.get_json()


@pytest.mark.slow
def test_a_completed_protocol_its_notice_and_its_verdict_answer_as_described(
        client, auth, protokoll_round):  # noqa: F811
    doc = description()
    round_url = f"/api/v1/rounds/{protokoll_round}"
    check(doc, "Round", client.get(round_url, headers=auth).get_json())
    check(doc, "Notice", client.get(f"{round_url}/notice", headers=auth).get_json())
    pdf = client.get(f"{round_url}/document", headers=auth).data
    verdict = client.post("/api/v1/verify", headers=auth,
                          data={"document": (io.BytesIO(pdf), "p.pdf")})
    assert verdict.status_code == 200, verdict.get_json()
    assert verdict.get_json()["round"]["id"] == protokoll_round
    check(doc, "VerificationReport", verdict.get_json())
