"""The hash chain, recomputed the way CONTRACT.md tells any outsider to."""

import hashlib
import json

from signflow.core.audit import GENESIS, canonical_hash, verify_chain


def outsider_hash(event: dict) -> str:
    body = {k: v for k, v in event.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain(n: int) -> list[dict]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        e = {"seq": i, "type": "round.created", "at": "2026-11-26T10:00:00.000000Z",
             "actor": "user:å@example.se", "data": {"n": i, "title": "Protokoll åäö"},
             "prev_hash": prev}
        e["hash"] = canonical_hash(e)
        prev = e["hash"]
        events.append(e)
    return events


def test_canonical_hash_is_the_contracts():
    e = chain(1)[0]
    assert e["hash"] == outsider_hash(e)


def test_intact_chain_verifies():
    report = verify_chain(chain(4))
    assert report.intact and report.count == 4 and report.head == chain(4)[-1]["hash"]


def test_changed_data_is_found():
    events = chain(3)
    events[1]["data"]["title"] = "Protokoll nr 3"
    report = verify_chain(events)
    assert not report.intact
    assert any("event 2: hash" in p for p in report.problems)


def test_removed_event_is_found():
    events = chain(3)
    del events[1]
    assert not verify_chain(events).intact


def test_rehashed_forgery_breaks_the_link():
    events = chain(3)
    events[1]["data"]["n"] = 99
    events[1]["hash"] = canonical_hash(events[1])  # forger recomputes this one hash
    report = verify_chain(events)
    assert not report.intact
    assert any("event 3: prev_hash" in p for p in report.problems)
