"""Webhooks (issue 12): signed with HMAC-SHA256 over timestamp and body, delivered
through the outbox, retried while the receiver is down, every delivery on record."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from signflow.adapters.bankid_sim import PERSONAS
from signflow.core import outbox, webhooks
from signflow.core.models import utcnow
from tests.conftest import create_round, make_user, sign_all, signers_spec, wait_for_status


class Receiver:
    """An integrator's endpoint: records what it gets; answers *status*."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/signflow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(g["body"])["event"] for g in self.got]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def as_described(body: bytes) -> dict:
    """The delivery's body, checked against the OpenAPI description's ``webhooks``."""
    import jsonschema

    from signflow.web.openapi import description

    doc = description()
    event = json.loads(body)
    schema = doc["webhooks"][event["event"]]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    jsonschema.Draft202012Validator(
        {**schema, "components": doc["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(event)
    return event


def register(client, auth, url: str, events=None) -> dict:
    resp = client.post("/api/v1/webhooks", headers=auth,
                       json={"url": url} | ({"events": events} if events else {}))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_round_is_told_to_the_receiver_signed_and_without_personal_numbers(
        client, auth, runtime, settings, protocol_pdf, receiver):
    hook = register(client, auth, receiver.url)
    assert hook["secret"].startswith("whsec_") and set(hook["events"]) == set(webhooks.EVENTS)
    listed = client.get("/api/v1/webhooks", headers=auth).get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert listed[0]["created_at"].endswith("Z")  # as every time the API gives

    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    sign_all(client, runtime, settings, signers)
    wait_for_status(client, auth, round_id, "completed")
    receiver.wait_for(4)
    assert sorted(receiver.events()) == ["round.completed"] + ["signer.signed"] * 3
    for got in receiver.got:
        headers, body = got["headers"], got["body"]
        assert webhooks.signature_valid(hook["secret"], headers["Signflow-Signature"], body,
                                        time.time())
        assert not webhooks.signature_valid("whsec_other", headers["Signflow-Signature"], body,
                                            time.time())
        assert not webhooks.signature_valid(hook["secret"], headers["Signflow-Signature"],
                                            body + b" ", time.time())
        event = as_described(body)
        assert event["round"]["id"] == round_id and headers["Signflow-Event"] == event["event"]
        assert headers["Signflow-Delivery"] == event["id"]
        for person in PERSONAS:
            assert person.personal_number not in body.decode()
            assert person.personal_number[2:8] not in body.decode()
        assert b"/sign/" not in body  # no signing link
    completed = next(json.loads(g["body"]) for g in receiver.got
                     if json.loads(g["body"])["event"] == "round.completed")
    final = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    assert completed["data"]["sha256"] == hashlib.sha256(final).hexdigest()
    states = client.get("/api/v1/webhooks/deliveries", headers=auth).get_json()["deliveries"]
    assert len(states) == 4 and {d["state"] for d in states} == {"delivered"}
    assert {d["last_status"] for d in states} == {200}


@pytest.mark.usefixtures("outbox_here")  # this test plays the dispatcher's retry itself
def test_a_receiver_that_is_down_gets_the_delivery_later(client, auth, runtime, protocol_pdf,
                                                         receiver):
    hook = register(client, auth, receiver.url, events=["round.declined"])
    receiver.status = 503
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    from signflow.demo import links_in_outbox

    settings = runtime.settings
    token = links_in_outbox(settings.data_dir / "outbox")[signers[0]["email"]]
    assert client.post(f"/sign/{token}/decline", json={"reason": "Fel datum"}).status_code == 200
    receiver.wait_for(1)
    [failing] = client.get("/api/v1/webhooks/deliveries", headers=auth).get_json()["deliveries"]
    assert (failing["state"], failing["last_status"], failing["event"]) == (
        "failing", 503, "round.declined")
    assert "503" in failing["last_error"] and failing["round"] == round_id

    receiver.status = 200
    assert outbox.deliver_due(runtime.sessions, runtime.services,
                              now=utcnow() + timedelta(minutes=2)) == 1
    [done] = client.get("/api/v1/webhooks/deliveries", headers=auth).get_json()["deliveries"]
    assert (done["state"], done["last_status"], done["attempts"]) == ("delivered", 200, 2)
    assert done["last_error"] is None  # the 503 is history once it went through
    first, again = receiver.got[0], receiver.got[-1]
    assert first["body"] == again["body"]  # the same event, signed afresh
    assert webhooks.signature_valid(hook["secret"], again["headers"]["Signflow-Signature"],
                                    again["body"], time.time())
    assert json.loads(again["body"])["data"]["reason"] == "Fel datum"


def test_a_delivery_for_a_removed_webhook_is_dropped_not_delivered(client, auth, runtime,
                                                                   protocol_pdf, receiver):
    hook = register(client, auth, receiver.url, events=["round.cancelled"])
    receiver.status = 503
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    assert client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth,
                       json={"reason": "Fel version"}).status_code == 200
    receiver.wait_for(1)
    assert as_described(receiver.got[0]["body"])["data"] == {"reason": "Fel version"}
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth).status_code == 200
    outbox.deliver_due(runtime.sessions, runtime.services, now=utcnow() + timedelta(minutes=2))
    [dropped] = client.get("/api/v1/webhooks/deliveries", headers=auth).get_json()["deliveries"]
    assert (dropped["state"], dropped["attempts"], dropped["delivered_at"]) == ("dropped", 1,
                                                                                None)
    assert len(receiver.got) == 1  # nothing more was sent


def test_a_decline_is_told_even_when_the_round_goes_on(client, auth, runtime, protocol_pdf,
                                                       receiver):
    from signflow.demo import links_in_outbox

    register(client, auth, receiver.url, events=["signer.declined", "round.declined"])
    from tests.test_workflows import MEETING, municipal_signers

    signers = municipal_signers("declined")
    create_round(client, auth, protocol_pdf, signers=signers, workflow="protokoll", **MEETING)
    token = links_in_outbox(runtime.settings.data_dir / "outbox")[signers[0]["email"]]
    assert client.post(f"/sign/{token}/decline", json={"reason": "Sjuk"}).status_code == 200
    receiver.wait_for(1)
    assert receiver.events() == ["signer.declined"]  # the round itself goes on
    data = as_described(receiver.got[0]["body"])["data"]
    assert data["round_continues"] is True and data["reason"] == "Sjuk"


def test_webhooks_are_checked_and_belong_to_one_organisation(client, auth, runtime, receiver):
    for bad in ({"url": "ftp://example.se/x"}, {"url": "https://"},
                {"url": "https://exa mple.se/x"}, {"url": "https://example.se/x y"},
                {"url": "https://example.se/\x00"}, {"url": "https://ex<am>ple.se/"},
                {"url": "https://example.se/x", "events": ["round.exploded"]},
                {"url": "https://example.se/x", "events": []}, {"urls": "x"},
                {"url": "https://diarium:hemligt@example.se/x"}):
        resp = client.post("/api/v1/webhooks", headers=auth, json=bad)
        assert resp.status_code == 400, bad
    lone = client.post("/api/v1/webhooks", headers=auth, content_type="application/json",
                       data='{"url": "https://example.se/\\ud800"}')  # not text: not a 500
    assert lone.status_code == 400, lone.get_json()
    hook = register(client, auth, receiver.url)
    other = {"Authorization": "Bearer " + make_user(runtime, "annan@example.se",
                                                    org="Annan kommun")}
    assert client.get("/api/v1/webhooks", headers=other).get_json()["webhooks"] == []
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=other).status_code == 404
    removed = client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth)
    assert removed.status_code == 200 and removed.get_json()["active"] is False


def test_a_stale_signature_is_refused_by_the_receivers_check():
    body = b'{"event": "round.completed"}'
    header = webhooks.sign("whsec_k", 1_700_000_000, body)
    assert webhooks.signature_valid("whsec_k", header, body, 1_700_000_100)
    assert not webhooks.signature_valid("whsec_k", header, body, 1_700_000_000 + 301)
    assert not webhooks.signature_valid("whsec_k", "v1=abc", body, 1_700_000_000)
    assert not webhooks.signature_valid("whsec_k", "garbage", body, 1_700_000_000)
