"""Writers to one round take turns: the audit chain never races, nobody deadlocks.

CI once lost a round to a PostgreSQL deadlock: a signer pressed "sign" while
the worker wrote the previous signer's signature, and the web request had
computed its chain position without locking the round.  These tests hold a
round in one transaction and act on it from another, on whichever database
the pass runs (row locks on PostgreSQL, the writer lock on SQLite).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from signflow.core import signing
from signflow.core.audit import EventType, append_event, event_dict, lock_round, verify_chain
from signflow.core.models import AuditEvent, Round, Signer
from tests.conftest import create_round


@pytest.fixture
def round_id(client, auth, protocol_pdf) -> str:
    resp = create_round(client, auth, protocol_pdf)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def chain_of(runtime, round_id: str) -> list[dict]:
    with runtime.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.round_id == round_id)
                           .order_by(AuditEvent.seq))
        return [event_dict(e) for e in events]


def test_appending_without_the_round_lock_is_refused(runtime, round_id):
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        with pytest.raises(RuntimeError, match="without holding"):
            append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {})
        s.rollback()
        round_ = lock_round(s, round_id)
        append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {})
        s.commit()
        # the lock, and the permission to append, end with the transaction
        with pytest.raises(RuntimeError, match="without holding"):
            append_event(s, s.get(Round, round_id), EventType.SIGNER_REMINDED, "user:x", {})
    assert verify_chain(chain_of(runtime, round_id)).intact


def test_signing_waits_for_a_round_held_by_the_worker(runtime, round_id):
    """A signer starting BankID while another writer holds the round waits, then follows."""
    svc = runtime.services
    failures: list[BaseException] = []

    def start_as_signer() -> None:
        try:
            with runtime.sessions() as s:
                signer = s.scalars(select(Signer).where(Signer.round_id == round_id)
                                   .order_by(Signer.position)).first()
                assert signer is not None
                signing.start_signing(s, svc, signer, end_user_ip="127.0.0.1")
                s.commit()
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    before = len(chain_of(runtime, round_id))
    with runtime.sessions() as worker:
        round_ = lock_round(worker, round_id)
        append_event(worker, round_, EventType.SIGNER_REMINDED, "system", {"held": True})
        worker.flush()
        signer_thread = threading.Thread(target=start_as_signer)
        signer_thread.start()
        time.sleep(0.5)
        assert signer_thread.is_alive(), "the signer wrote while the round was held"
        worker.commit()
    signer_thread.join(timeout=30)
    assert not signer_thread.is_alive(), "the signer never got the round"
    assert not failures, failures
    events = chain_of(runtime, round_id)
    assert verify_chain(events).intact
    assert [e["type"] for e in events[before:]] == ["signer.reminded", "bankid.started"]


def test_two_signers_and_a_reminder_at_once_keep_one_chain(client, auth, runtime, round_id):
    """Concurrent writers through the real use cases: every event lands, in one chain."""
    svc = runtime.services
    with runtime.sessions() as s:
        ids = list(s.scalars(select(Signer.id).where(Signer.round_id == round_id)))
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(ids))

    def start(signer_id: str) -> None:
        try:
            with runtime.sessions() as s:
                signer = s.get(Signer, signer_id)
                assert signer is not None
                barrier.wait(timeout=10)
                for _ in range(3):
                    signing.start_signing(s, svc, signer, end_user_ip="127.0.0.1")
                    s.commit()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    reminded = client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth)
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    assert reminded.status_code == 200, reminded.get_json()
    events = chain_of(runtime, round_id)
    assert verify_chain(events).intact
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert sum(e["type"] == "bankid.started" for e in events) == 3 * len(ids)
