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
from datetime import timedelta

import pytest
from sqlalchemy import select

from signflow.core import rounds, signing
from signflow.core.audit import EventType, append_event, event_dict, lock_round, verify_chain
from signflow.core.models import AuditEvent, Round, Signer
from tests.conftest import create_round

# the queue is faked here: the outbox goes out in this process (and the RQ pass's
# dispatcher process, which would enqueue with the real queue, waits)
pytestmark = pytest.mark.usefixtures("outbox_here")


@pytest.fixture
def round_id(client, auth, protocol_pdf) -> str:
    resp = create_round(client, auth, protocol_pdf)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def queue_down(runtime, monkeypatch) -> list[tuple]:
    """Replace the job queue with one that loses every job; return what it lost."""
    lost: list[tuple] = []

    class Down:
        def enqueue(self, job: str, *args: str) -> None:
            lost.append((job, *args))

    monkeypatch.setattr(runtime.services, "jobs", Down())
    return lost


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
        s.rollback()
        # a savepoint's rollback would release the lock and keep the permission
        with pytest.raises(RuntimeError, match="outside savepoints"), s.begin_nested():
            lock_round(s, round_id)
    assert verify_chain(chain_of(runtime, round_id)).intact


def test_the_chain_head_is_read_once_per_hold_and_again_after_a_savepoint(runtime, round_id):
    """Holding the round, nobody else appends: its chain's head is read once and
    carried from append to append.  A savepoint's rollback may undo an append, so
    the head is read again after one; a new transaction reads it again too."""
    from sqlalchemy import event

    reads: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().startswith("SELECT audit_events.seq"):
            reads.append(statement)

    engine = runtime.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(2):  # two transactions, three appends each
            with runtime.sessions() as s:
                round_ = lock_round(s, round_id)
                for _ in range(3):
                    append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {})
                s.commit()
        assert len(reads) == 2
        with runtime.sessions() as s:
            round_ = lock_round(s, round_id)
            append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {})
            savepoint = s.begin_nested()
            append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {"undone": True})
            savepoint.rollback()
            append_event(s, round_, EventType.SIGNER_REMINDED, "user:x", {"kept": True})
            s.commit()
        assert len(reads) == 4
    finally:
        event.remove(engine, "before_cursor_execute", count)
    events = chain_of(runtime, round_id)
    assert verify_chain(events).intact
    assert events[-1]["data"] == {"kept": True}
    assert not any(e["data"].get("undone") for e in events)


def test_signing_waits_for_a_round_held_by_the_worker(runtime, round_id, monkeypatch):
    """A signer starting BankID while another writer holds the round waits, then follows."""
    svc = runtime.services
    failures: list[BaseException] = []
    asking = threading.Event()

    def lock_round_noted(session, rid):
        asking.set()
        return lock_round(session, rid)

    monkeypatch.setattr(signing, "lock_round", lock_round_noted)

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
        assert asking.wait(timeout=30), "the signer never asked for the round"
        time.sleep(0.3)  # time to get past the lock, were it not held
        assert signer_thread.is_alive(), "the signer wrote while the round was held"
        worker.commit()
    signer_thread.join(timeout=30)
    assert not signer_thread.is_alive(), "the signer never got the round"
    assert not failures, failures
    events = chain_of(runtime, round_id)
    assert verify_chain(events).intact
    assert [e["type"] for e in events[before:]] == ["signer.reminded", "identity.started"]


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
    assert sum(e["type"] == "identity.started" for e in events) == 3 * len(ids)


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
    # nothing after the cancellation but the mails that tell the signers of it
    acts = [e["type"] for e in events if e["type"] != "mail.sent"]
    assert acts[-1] == "round.cancelled" and verify_chain(events).intact


def test_expiry_leaves_fully_signed_and_closed_rounds_alone(runtime, round_id, client, auth,
                                                           protocol_pdf, monkeypatch):
    """A round whose signers all signed is not expired when its PDF job was lost.

    Its PDF work is restarted by resume_stalled, tested below."""
    from datetime import timedelta

    from signflow.core.housekeeping import expire_due
    from signflow.core.models import utcnow

    other = create_round(client, auth, protocol_pdf).get_json()["id"]
    closed = create_round(client, auth, protocol_pdf).get_json()["id"]
    assert client.post(f"/api/v1/rounds/{closed}/cancel", headers=auth).status_code == 200
    with runtime.sessions() as s:
        for signer in s.scalars(select(Signer).where(Signer.round_id == round_id)):
            signer.status = "signed"  # signed, but the PDF job never ran
        s.commit()
    enqueued = queue_down(runtime, monkeypatch)
    with runtime.sessions() as s:
        expired = expire_due(s, runtime.services, utcnow() + timedelta(days=31))
        s.commit()
    assert expired == [other]
    assert enqueued == []
    with runtime.sessions() as s:
        assert s.get(Round, round_id).status == "pending"
        assert s.get(Round, other).status == "expired"
        assert s.get(Round, closed).status == "cancelled"


def test_a_signature_whose_job_was_lost_is_applied_by_the_housekeeping(
        client, auth, runtime, settings, round_id, monkeypatch):
    """Queue down when a signer finished: the hourly run sends the PDF work again."""
    from datetime import timedelta

    from signflow.core.housekeeping import resume_stalled
    from signflow.core.models import utcnow

    real_jobs = runtime.services.jobs
    lost = signed_without_job(client, auth, runtime, settings, round_id, 0, monkeypatch)
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


def test_the_scheduler_restarts_lost_work_soon_and_one_scheduler_acts_per_tick(
        client, auth, runtime, settings, round_id, monkeypatch, capsys):
    """`signflow scheduler` runs this tick every 30 s: a signature whose PDF job was
    lost (Redis or TSA down) is sent again once it waited STALL_GRACE, not an hour."""
    from signflow import cli, logs
    from signflow.core.housekeeping import STALL_GRACE, tick
    from signflow.core.models import utcnow
    from tests.conftest import PG_URL
    from tests.test_cli import env_for

    real_jobs = runtime.services.jobs
    signed_without_job(client, auth, runtime, settings, round_id, 0, monkeypatch)
    monkeypatch.setattr(runtime.services, "jobs", real_jobs)
    assert STALL_GRACE.total_seconds() <= 120
    soon = utcnow() + STALL_GRACE + timedelta(seconds=1)
    with runtime.sessions() as first, runtime.sessions() as second:
        done = tick(first, runtime.services, now=soon)
        assert done.ran and done.resumed == [round_id] and done.expired == []
        if PG_URL:  # the other scheduler waits for the next tick, enqueues nothing
            assert tick(second, runtime.services, now=soon).ran is False
        first.commit()
    deadline = time.monotonic() + 60
    while "signature.applied" not in [e["type"] for e in chain_of(runtime, round_id)]:
        assert time.monotonic() < deadline, "the restarted PDF work did not run"
        time.sleep(0.1)

    monkeypatch.setattr(logs, "configure", lambda *a, **k: "text")  # keep pytest's logging
    env_for(monkeypatch, settings)
    monkeypatch.setenv("SIGNFLOW_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")
    assert cli.main(["scheduler", "--once"]) == 0
    assert cli.main(["rounds", "expire"]) == 0
    assert "0 round(s) expired" in capsys.readouterr().out


class GatedPdf:
    """The real PDF works, but sign_field waits on *gate* in the thread named *gated*."""

    def __init__(self, real, gated: str) -> None:
        self.real, self.gated = real, gated
        self.gate, self.reached = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def sign_field(self, data, **kwargs):
        if threading.current_thread().name == self.gated:
            self.reached.set()
            assert self.gate.wait(timeout=60), "the test never opened the gate"
        return self.real.sign_field(data, **kwargs)


def signed_without_job(client, auth, runtime, settings, round_id, position, monkeypatch):
    """Sign as the signer at *position* with the job queue down; return the lost jobs."""
    from signflow.demo import links_in_outbox, sign_over_http
    from tests.conftest import approve_with

    lost = queue_down(runtime, monkeypatch)
    email = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()[
        "signers"][position]["email"]
    link = links_in_outbox(settings.data_dir / "outbox")[email]
    assert sign_over_http(client, link, approve_with(runtime))["status"] == "complete"
    return lost


def apply_in_thread(runtime, round_id: str, name: str) -> tuple[threading.Thread, list]:
    from signflow.db import session_scope

    failures: list[BaseException] = []

    def run() -> None:
        try:
            with session_scope(runtime.sessions) as s:
                signing.apply_signatures(s, runtime.services, round_id)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, failures


def test_a_signer_finishing_never_waits_for_the_pdf_work(
        client, auth, runtime, settings, round_id, monkeypatch):
    """While the job signs the PDF for one signer, the next signer's completion goes through."""
    signed_without_job(client, auth, runtime, settings, round_id, 0, monkeypatch)
    pdf = GatedPdf(runtime.services.pdf, gated="slow-job")
    monkeypatch.setattr(runtime.services, "pdf", pdf)
    job, failures = apply_in_thread(runtime, round_id, "slow-job")
    try:
        assert pdf.reached.wait(timeout=30)
        # the job is inside sign_field now; a round lock held here would block this
        signed_without_job(client, auth, runtime, settings, round_id, 1, monkeypatch)
    finally:
        pdf.gate.set()
        job.join(timeout=60)
    assert not failures, failures
    types = [e["type"] for e in chain_of(runtime, round_id)]
    assert types.count("signer.signed") == 2 and types.count("signature.applied") == 1
    assert types.index("signature.applied") > [
        i for i, t in enumerate(types) if t == "signer.signed"][1]
    assert verify_chain(chain_of(runtime, round_id)).intact


def test_a_job_that_loses_the_race_builds_on_the_winners_document(
        client, auth, runtime, settings, round_id, monkeypatch):
    """Two jobs for one signature: the PDF changes once, the signature is applied once."""
    signed_without_job(client, auth, runtime, settings, round_id, 0, monkeypatch)
    pdf = GatedPdf(runtime.services.pdf, gated="late-job")
    monkeypatch.setattr(runtime.services, "pdf", pdf)
    late, failures = apply_in_thread(runtime, round_id, "late-job")
    try:
        assert pdf.reached.wait(timeout=30)
        early, early_failures = apply_in_thread(runtime, round_id, "early-job")
        early.join(timeout=60)
        assert not early_failures, early_failures
    finally:
        pdf.gate.set()
        late.join(timeout=60)
    assert not failures, failures
    types = [e["type"] for e in chain_of(runtime, round_id)]
    assert types.count("signature.applied") == 1
    from signflow.core.models import Document

    with runtime.sessions() as s:
        kinds = list(s.scalars(select(Document.kind).where(Document.round_id == round_id)))
    assert kinds.count("signed") == 1, kinds


def test_expiry_cancels_every_open_order_after_commit(client, auth, protocol_pdf, runtime,
                                                      round_id, caplog):
    """Open BankID orders of every expired round are cancelled once the expiry commits."""
    from datetime import timedelta

    from signflow.core.housekeeping import expire_due
    from signflow.core.models import utcnow

    rounds_ = [round_id, create_round(client, auth, protocol_pdf).get_json()["id"]]
    refs = []
    for rid in rounds_:
        with runtime.sessions() as s:
            signer = s.scalars(select(Signer).where(Signer.round_id == rid)).first()
            refs.append(signing.start_signing(s, runtime.services, signer,
                                              end_user_ip="127.0.0.1").order_ref)
            s.commit()
    assert set(refs) <= {o.order_ref for o in runtime.simulator.open_orders()}
    with runtime.sessions() as s:
        assert sorted(expire_due(s, runtime.services, utcnow() + timedelta(days=31))) \
            == sorted(rounds_)
        assert set(refs) <= {o.order_ref for o in runtime.simulator.open_orders()}  # not yet
        s.commit()
    assert not set(refs) & {o.order_ref for o in runtime.simulator.open_orders()}
    assert not [r for r in caplog.records if "after the commit" in r.getMessage()]


def test_the_embedded_mode_runs_the_scheduler_in_a_thread(runtime, client, auth, protocol_pdf,
                                                          monkeypatch):
    """`make run` has no scheduler process: a thread of the app ticks, so deadlines,
    reminders and notices happen there too."""
    from datetime import timedelta

    from signflow import scheduler
    from signflow.core.models import utcnow

    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    with runtime.sessions() as s, s.begin():
        s.get(Round, round_id).expires_at = utcnow() - timedelta(minutes=1)
    embedded = runtime.settings.with_overrides(testing=False, redis_url="")
    monkeypatch.setattr(runtime, "settings", embedded)
    stop = scheduler.start(runtime, interval=0.1)
    assert stop is not None
    try:
        deadline = time.monotonic() + 20
        while client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()["status"] \
                != "expired":
            assert time.monotonic() < deadline, "the scheduler thread did not expire the round"
            time.sleep(0.1)
    finally:
        stop.set()
    with_redis = embedded.with_overrides(redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setattr(runtime, "settings", with_redis)
    assert scheduler.start(runtime) is None  # there, `signflow scheduler` does it


# -- what the race review found (helper's scripts in the session notes) ----------------

def all_signed_but_not_sealed(runtime, round_id: str) -> None:
    with runtime.sessions() as s:
        for signer in s.scalars(select(Signer).where(Signer.round_id == round_id)):
            signer.status = "signed"  # signed, the sealing job not yet run
        s.commit()


def test_a_round_everyone_has_signed_cannot_be_cancelled(runtime, round_id, client, auth,
                                                         monkeypatch):
    """Cancel raced the last signature and won 13 times in 28: the round ended
    cancelled with three signatures given and every signer told theirs would
    not be used.  Once all have signed, only the sealing is left."""
    queue_down(runtime, monkeypatch)
    all_signed_but_not_sealed(runtime, round_id)
    resp = client.post(f"/api/v1/rounds/{round_id}/cancel", headers=auth)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "all_signed"
    with runtime.sessions() as s:
        assert s.get(Round, round_id).status == "pending"
    # the round page offers no cancelling then, and a form sent before says why not
    from tests.staff_kit import sign_in_client
    from tests.test_secretariat_pages import csrf

    with runtime.sessions() as s:
        email = s.get(Round, round_id).created_by.email
    page_client = client.application.test_client()
    sign_in_client(page_client, runtime.settings, runtime, email)
    page = page_client.get(f"/rounds/{round_id}").get_data(as_text=True)
    assert "Avbryt signeringen" not in page and "Alla har signerat; protokollet förseglas." in page
    sent = page_client.post(f"/rounds/{round_id}/cancel", data={"csrf_token": csrf(page_client)},
                            follow_redirects=True).get_data(as_text=True)
    assert "Alla har signerat och protokollet förseglas" in sent


def while_the_round_is_held(runtime, round_id: str, module, change, act):
    """Run *act* in a thread while this test holds *round_id* and makes *change*
    (uncommitted), commit when *act* asks for the round, and return what it returned:
    the scheduler read its due list before taking the lock."""
    asking, got, failures = threading.Event(), [], []
    real_lock = module.lock_round

    def lock_noted(session, rid):
        asking.set()
        return real_lock(session, rid)

    def run() -> None:
        try:
            with runtime.sessions() as s:
                got.append(act(s))
                s.commit()
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    with runtime.sessions() as holder:
        change(holder, lock_round(holder, round_id))
        holder.flush()
        module.lock_round = lock_noted
        try:
            thread = threading.Thread(target=run)
            thread.start()
            assert asking.wait(timeout=30), "the scheduler never asked for the round"
            time.sleep(0.2)
            holder.commit()
        finally:
            module.lock_round = real_lock
    thread.join(timeout=30)
    assert not failures, failures
    return got[0]


def test_expiry_looks_at_the_deadline_again_once_it_holds_the_round(runtime, round_id,
                                                                    monkeypatch):
    """The secretariat moved the deadline while the scheduler waited for the round:
    the round was expired all the same, its event naming the new deadline."""
    from signflow.core import housekeeping
    from signflow.core.models import utcnow

    queue_down(runtime, monkeypatch)
    now = utcnow() + timedelta(days=31)  # past the deadline the round was made with

    def extend(session, round_):
        round_.expires_at = now + timedelta(days=7)

    expired = while_the_round_is_held(runtime, round_id, housekeeping, extend,
                                      lambda s: housekeeping.expire_due(s, runtime.services,
                                                                        now))
    assert round_id not in expired
    with runtime.sessions() as s:
        assert s.get(Round, round_id).status == "pending"


def test_a_decline_that_ends_the_round_ends_the_others_open_orders(runtime, round_id):
    """The chair's BankID order stayed open after the justerare's decline ended
    the round, and BankID then refused the chair's next order elsewhere."""
    with runtime.sessions() as s:
        chair, other = s.scalars(select(Signer).where(Signer.round_id == round_id)
                                 .order_by(Signer.position)).all()[:2]
        ref = signing.start_signing(s, runtime.services, chair,
                                    end_user_ip="127.0.0.1").order_ref
        other_id = other.id
        s.commit()
    assert ref in {o.order_ref for o in runtime.simulator.open_orders()}
    with runtime.sessions() as s:
        other = s.get(Signer, other_id)
        rounds.decline(s, runtime.services, other, "Jag var inte där")
        s.commit()
        assert s.get(Round, round_id).status == "declined"
    assert ref not in {o.order_ref for o in runtime.simulator.open_orders()}


def test_a_completed_order_signs_only_for_the_order_the_place_has_now(runtime, round_id):
    """The old justerare's order completed while the secretariat gave the place to
    someone else: it was recorded in the new person's place."""
    from tests.conftest import invited_persona

    svc = runtime.services
    with runtime.sessions() as s:
        signer = s.scalars(select(Signer).where(Signer.round_id == round_id)
                           .order_by(Signer.position)).first()
        ref = signing.start_signing(s, svc, signer, end_user_ip="127.0.0.1").order_ref
        s.commit()
        signer_id = signer.id
    runtime.simulator.open(ref)
    runtime.simulator.approve(ref, invited_persona(runtime, ref))
    with runtime.sessions() as s:
        signer = s.get(Signer, signer_id)
        result = signing.provider_for(svc, signer).collect(ref)
        assert result.status == "complete"
        signer.pending_order_ref = "a-newer-order"  # replaced, or a second tab, meanwhile
        s.commit()
    with runtime.sessions() as s:
        signer = s.get(Signer, signer_id)
        assert signing.record_signature(s, svc, signer, result) == "orderSuperseded"
        s.commit()
    with runtime.sessions() as s:
        assert s.get(Signer, signer_id).status != "signed"
        last = event_dict(s.scalars(select(AuditEvent).where(AuditEvent.round_id == round_id)
                                    .order_by(AuditEvent.seq.desc())).first())
        assert last["type"] == "identity.failed"
        assert last["data"]["hint_code"] == "orderSuperseded"
