"""A retried round creation makes one round (Idempotency-Key), and the audit
trail refuses change in the database itself (issue 12)."""

from __future__ import annotations

import io
import json
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from signflow.core.models import AuditEvent, Round
from tests.conftest import create_round, make_user, signers_spec


def post_round(client, auth, pdf: bytes, spec: dict, key: str | None):
    headers = dict(auth) | ({"Idempotency-Key": key} if key is not None else {})
    return client.post("/api/v1/rounds", headers=headers, data={
        "round": json.dumps(spec), "document": (io.BytesIO(pdf), "protokoll.pdf")})


def spec_for(tag: str) -> dict:
    return {"title": "Protokoll nr 2 2026", "language": "sv", "signers": signers_spec(tag)}


def count_rounds(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Round))


def invitations(settings, spec) -> int:
    emails = {s["email"] for s in spec["signers"]}
    return sum(1 for p in (settings.data_dir / "outbox").glob("*.json")
               if json.loads(p.read_text(encoding="utf-8"))["to"] in emails)


def test_a_retried_request_makes_one_round(client, auth, runtime, settings, protocol_pdf):
    spec = spec_for("retry")
    first = post_round(client, auth, protocol_pdf, spec, "skapa-2026-12-02-1")
    before = count_rounds(runtime)
    again = post_round(client, auth, protocol_pdf, spec, "skapa-2026-12-02-1")
    assert first.status_code == again.status_code == 201, (first.get_json(), again.get_json())
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_rounds(runtime) == before
    assert invitations(settings, spec) == 3  # each signer invited once
    # the same round written another way (spacing, key order) is the same request
    rewritten = client.post("/api/v1/rounds", headers={**auth,
                            "Idempotency-Key": "skapa-2026-12-02-1"}, data={
        "round": json.dumps(dict(reversed(spec.items())), indent=2),
        "document": (io.BytesIO(protocol_pdf), "protokoll.pdf")})
    assert rewritten.status_code == 201, rewritten.get_json()
    assert rewritten.get_json()["id"] == first.get_json()["id"]


def test_a_key_reused_for_another_request_is_refused_and_changes_nothing(
        client, auth, runtime, protocol_pdf):
    post_round(client, auth, protocol_pdf, spec_for("a"), "nyckel-1")
    before = count_rounds(runtime)
    other = post_round(client, auth, protocol_pdf, spec_for("b"), "nyckel-1")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert count_rounds(runtime) == before


@pytest.mark.parametrize("key", ["", "x" * 201, "nyckel med mellanslag", "nyckel-å"])
def test_a_malformed_key_is_refused(client, auth, runtime, protocol_pdf, key):
    before = count_rounds(runtime)
    resp = post_round(client, auth, protocol_pdf, spec_for("bad"), key)
    assert resp.status_code == 400 and "Idempotency-Key" in resp.get_json()["error"]["message"]
    assert count_rounds(runtime) == before


def test_keys_belong_to_one_organisation(client, auth, runtime, protocol_pdf):
    other = {"Authorization": "Bearer " + make_user(runtime, "annan@example.se",
                                                    org="Annan kommun")}
    spec = spec_for("orgs")
    mine = post_round(client, auth, protocol_pdf, spec, "delad-nyckel").get_json()["id"]
    theirs = post_round(client, other, protocol_pdf, spec, "delad-nyckel").get_json()["id"]
    assert mine != theirs


def test_twin_requests_racing_with_one_key_make_one_round(app, auth, runtime, protocol_pdf):
    spec, answers = spec_for("twins"), []
    before = count_rounds(runtime)

    def send() -> None:
        answers.append(post_round(app.test_client(), auth, protocol_pdf, spec, "tvilling"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a.status_code for a in answers] == [201, 201], [a.get_json() for a in answers]
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert count_rounds(runtime) == before + 1


def test_the_audit_trail_refuses_update_and_delete_in_the_database(client, auth, runtime,
                                                                   protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    for change in ("UPDATE audit_events SET actor = 'someone else' WHERE round_id = :r",
                   "DELETE FROM audit_events WHERE round_id = :r"):
        with pytest.raises(DatabaseError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.execute(text(change), {"r": round_id})
    with runtime.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.round_id == round_id)).all()
        assert events and all(e.actor != "someone else" for e in events)
    chain = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()
    assert chain["intact"]


def test_the_rounds_list_pages_and_filters(client, auth, runtime, protocol_pdf):
    ids = [create_round(client, auth, protocol_pdf, title=f"Protokoll {n}").get_json()["id"]
           for n in range(3)]
    client.post(f"/api/v1/rounds/{ids[0]}/cancel", headers=auth)
    first = client.get("/api/v1/rounds?per_page=2", headers=auth).get_json()
    assert (first["total"], first["pages"], first["page"]) == (3, 2, 1)
    assert [r["id"] for r in first["rounds"]] == [ids[2], ids[1]]  # newest first
    second = client.get("/api/v1/rounds?per_page=2&page=2", headers=auth).get_json()
    assert [r["id"] for r in second["rounds"]] == [ids[0]]
    cancelled = client.get("/api/v1/rounds?status=cancelled", headers=auth).get_json()
    assert [r["id"] for r in cancelled["rounds"]] == [ids[0]]
    named = client.get("/api/v1/rounds?q=Protokoll%201", headers=auth).get_json()
    assert [r["id"] for r in named["rounds"]] == [ids[1]]
    by_signer = client.get("/api/v1/rounds?q=Demjaha", headers=auth).get_json()
    assert by_signer["total"] == 3
    # past the last page: nothing (a client paging on stops), not the last page again
    beyond = client.get("/api/v1/rounds?per_page=2&page=5", headers=auth).get_json()
    assert (beyond["rounds"], beyond["page"], beyond["pages"]) == ([], 5, 2)
    # Swedish letters in any case, on SQLite too
    signers = signers_spec()
    signers[0]["name"] = "Åsa Öberg"
    swedish = create_round(client, auth, protocol_pdf, signers=signers,
                           title="Protokoll för Ängelholm").get_json()["id"]
    for query in ("åsa", "ÅSA", "öBERG", "ängelholm", "ÄNGELHOLM"):
        found = client.get(f"/api/v1/rounds?q={query}", headers=auth).get_json()
        assert [r["id"] for r in found["rounds"]] == [swedish], query
    for bad in ("status=lost", "page=0", "per_page=101", "page=x"):
        resp = client.get(f"/api/v1/rounds?{bad}", headers=auth)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_input"


def test_reads_carry_an_etag_and_answer_304_while_unchanged(client, auth, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    url = f"/api/v1/rounds/{round_id}"
    first = client.get(url, headers=auth)
    tag = first.headers["ETag"]
    same = client.get(url, headers=auth | {"If-None-Match": tag})
    assert same.status_code == 304 and same.data == b""
    client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth)  # the trail grows
    audit = client.get(f"{url}/audit", headers=auth)
    assert client.get(f"{url}/audit", headers=auth | {"If-None-Match": audit.headers["ETag"]}
                      ).status_code == 304
    client.post(f"{url}/cancel", headers=auth)  # the round changes: a new tag, a body
    changed = client.get(url, headers=auth | {"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.get_json()["status"] == "cancelled"
