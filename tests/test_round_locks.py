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

from signflow.core import rounds, signing
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


def cancel_elsewhere(runtime, user_email: str, round_id: str) -> None:
    from signflow.core.models import User

    with runtime.sessions() as s:
        user = s.scalars(select(User).where(User.email == user_email)).one()
        rounds.cancel(s, runtime.services, user, round_id)
        s.commit()


def test_a_signer_who_read_the_round_before_it_was_cancelled_cannot_sign(runtime, round_id):
    """What a request read before the lock is read again under it: no stale "pending"."""
    from signflow.errors import IllegalTransition

    svc = runtime.services
    with runtime.sessions() as s:
        signer = s.scalars(select(Signer).where(Signer.round_id == round_id)).first()
        assert signer is not None and signer.round.status == "pending"  # the sign page's read
        creator = signer.round.created_by.email
        cancel_elsewhere(runtime, creator, round_id)
        open_before = {o.order_ref for o in runtime.simulator.open_orders()}
        with pytest.raises(IllegalTransition) as caught:
            signing.start_signing(s, svc, signer, end_user_ip="127.0.0.1")
        assert caught.value.code == "round_closed"
        # the order the provider had already started is cancelled again
        assert {o.order_ref for o in runtime.simulator.open_orders()} <= open_before
        s.rollback()
        with pytest.raises(IllegalTransition):
            rounds.decline(s, svc, s.get(Signer, signer.id), "too late")
        s.rollback()
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert round_ is not None and round_.status == "cancelled"
        assert all(x.status != "declined" for x in round_.signers)
    events = chain_of(runtime, round_id)
    assert events[-1]["type"] == "round.cancelled" and verify_chain(events).intact


def test_expiry_leaves_fully_signed_and_closed_rounds_alone(runtime, round_id, client, auth,
                                                           protocol_pdf, monkeypatch):
    """A round whose signers all signed is finished, not expired, when its job was lost."""
    from datetime import timedelta

    from signflow.core.models import utcnow
    from signflow.core.rounds import expire_due

    other = create_round(client, auth, protocol_pdf).get_json()["id"]
    closed = create_round(client, auth, protocol_pdf).get_json()["id"]
    assert client.post(f"/api/v1/rounds/{closed}/cancel", headers=auth).status_code == 200
    with runtime.sessions() as s:
        for signer in s.scalars(select(Signer).where(Signer.round_id == round_id)):
            signer.status = "signed"  # signed, but the PDF job never ran
        s.commit()
    enqueued: list[tuple] = []
    monkeypatch.setattr(runtime.services, "jobs", type("Jobs", (), {
        "enqueue": lambda self, job, *args: enqueued.append((job, *args))})())
    with runtime.sessions() as s:
        expired = expire_due(s, runtime.services, utcnow() + timedelta(days=31))
        s.commit()
    assert expired == [other]
    assert enqueued == [("apply_signatures", round_id)]
    with runtime.sessions() as s:
        assert s.get(Round, round_id).status == "pending"
        assert s.get(Round, other).status == "expired"
        assert s.get(Round, closed).status == "cancelled"


def test_a_signature_whose_job_was_lost_is_applied_by_the_housekeeping(
        client, auth, runtime, settings, round_id, monkeypatch):
    """Queue down when a signer finished: the hourly run sends the PDF work again."""
    from datetime import timedelta

    from signflow.core.models import utcnow
    from signflow.core.rounds import resume_stalled
    from signflow.demo import links_in_outbox, sign_over_http
    from tests.conftest import approve_with

    real_jobs = runtime.services.jobs
    lost: list[tuple] = []
    monkeypatch.setattr(runtime.services, "jobs", type("Down", (), {
        "enqueue": lambda self, job, *args: lost.append((job, *args))})())
    first = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()["signers"][0]["email"]
    link = links_in_outbox(settings.data_dir / "outbox")[first]
    assert sign_over_http(client, link, approve_with(runtime))["status"] == "complete"
    assert lost == [("apply_signatures", round_id)]
    monkeypatch.setattr(runtime.services, "jobs", real_jobs)

    with runtime.sessions() as s:
        assert resume_stalled(s, runtime.services, timedelta(minutes=10)) == []  # still fresh
        assert resume_stalled(s, runtime.services, timedelta(minutes=10),
                              now=utcnow() + timedelta(minutes=11)) == [round_id]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        types = [e["type"] for e in chain_of(runtime, round_id)]
        if "signature.applied" in types:
            break
        time.sleep(0.1)
    assert types.count("signature.applied") == 1, types
    with runtime.sessions() as s:
        assert resume_stalled(s, runtime.services, timedelta(0),
                              now=utcnow() + timedelta(hours=1)) == []  # nothing left
