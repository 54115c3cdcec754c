"""The stand-ins keep their orders in the database: every process sees them.

Two runtimes built from the same settings are two gunicorn workers: an order
started through one is approved and collected through the other, two people
acting on one order at once get one outcome, and finished orders are forgotten.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, false, select, update

from signflow.adapters import bankid_sim, freja_fake
from signflow.adapters.bankid_sim import PERSONAS, ApiError, Order
from signflow.adapters.freja_fake import FrejaError
from signflow.adapters.secrets_at_rest import FieldCipher
from signflow.adapters.sim_store import DatabaseOrders, in_memory, shared_orders
from signflow.core.models import SimulatorOrder, User
from signflow.core.ports import SignRequest
from signflow.errors import ProviderError
from signflow.runtime import build_runtime
from tests.conftest import runtime_for_tests

ARDIANA = PERSONAS[1]


@pytest.fixture
def workers(settings, worker):
    """Two runtimes on one database, as two gunicorn workers are."""
    first, second = runtime_for_tests(settings), runtime_for_tests(settings)
    yield first, second
    first.close()
    second.close()


def _request(pnr: str = "") -> SignRequest:
    return SignRequest(end_user_ip="192.0.2.4", visible_text="Justera protokollet",
                       non_visible_data=b"\x05" * 32, personal_number=pnr)


def _freja(rt):
    return rt.providers.build("freja").simulator


def _stored_refs(rt, provider: str) -> set[str]:
    with rt.providers.stand_in_orders.engine.connect() as conn:
        return set(conn.scalars(select(SimulatorOrder.order_ref)
                                .where(SimulatorOrder.provider == provider)))


# --- one order, two workers --------------------------------------------------------------

def test_a_bankid_order_started_in_one_worker_is_approved_and_collected_in_another(workers):
    one, other = workers
    order = one.providers["bankid"].start_sign(_request(ARDIANA.personal_number))
    assert order.order_ref in {o.order_ref for o in other.simulator.open_orders()}
    other.simulator.open(order.order_ref)
    assert one.providers["bankid"].collect(order.order_ref).hint_code == "started"
    other.simulator.approve(order.order_ref, ARDIANA)
    done = one.providers["bankid"].collect(order.order_ref)
    assert done.status == "complete" and done.signature_valid, done.signature_problems
    assert done.user["personalNumber"] == ARDIANA.personal_number
    assert other.providers["bankid"].collect(order.order_ref).status == "complete"
    assert one.simulator.orders[order.order_ref].status == "complete"
    assert one.simulator.open_orders() == other.simulator.open_orders() == []


def test_a_freja_request_started_in_one_worker_is_approved_and_collected_in_another(workers):
    one, other = workers
    order = one.providers["freja"].start_sign(_request(ARDIANA.personal_number))
    assert [o.sign_ref for o in _freja(other).open_orders()] == [order.order_ref]
    _freja(other).open(order.order_ref)
    assert one.providers["freja"].collect(order.order_ref).status == "pending"
    _freja(other).approve(order.order_ref, ARDIANA)
    done = one.providers["freja"].collect(order.order_ref)
    assert done.status == "complete" and done.signature_valid, done.signature_problems
    assert done.user["personalNumber"] == ARDIANA.personal_number
    assert _freja(one).orders[order.order_ref].attributes == {"SSN", "BASIC_USER_INFO"}
    assert _freja(one).open_orders() == []


def test_a_person_with_an_order_in_one_worker_cannot_start_another_in_the_other(workers):
    one, other = workers
    first = one.providers["bankid"].start_sign(_request(ARDIANA.personal_number))
    with pytest.raises(ProviderError) as err:
        other.providers["bankid"].start_sign(_request(ARDIANA.personal_number))
    assert err.value.fields["error_code"] == "alreadyInProgress"
    # as BankID does, the first order is cancelled too, and it stays cancelled
    result = one.providers["bankid"].collect(first.order_ref)
    assert (result.status, result.hint_code) == ("failed", "cancelled")


def test_a_signer_started_in_one_worker_finishes_through_another(workers, protocol_pdf):
    from signflow import create_app
    from signflow.demo import links_in_outbox, sign_over_http
    from tests.conftest import approve_with, create_round, invited_persona, make_user, signers_spec

    one, other = workers
    first, second = (create_app(one.settings, one).test_client(),
                     create_app(other.settings, other).test_client())
    auth = {"Authorization": "Bearer " + make_user(one, "workers@example.se")}
    signers = signers_spec()
    assert create_round(first, auth, protocol_pdf, signers=signers).status_code == 201
    token = links_in_outbox(one.settings.data_dir / "outbox")[signers[0]["email"]]
    ref = first.post(f"/sign/{token}/bankid").get_json()["order_ref"]
    assert second.get(f"/sign/{token}/bankid").get_json()["status"] == "pending"
    other.simulator.open(ref)
    other.simulator.approve(ref, invited_persona(other, ref))
    body = second.get(f"/sign/{token}/bankid").get_json()  # the poll lands on the other
    assert body["status"] == "complete", body
    # and a second signer, started on the other worker, finishes on the first
    token = links_in_outbox(one.settings.data_dir / "outbox")[signers[1]["email"]]
    assert sign_over_http(second, token, approve_with(one))["status"] == "complete"


# --- at once -------------------------------------------------------------------------------

def _at_once(*actions) -> list[str]:
    """Run *actions* in threads released together: each one's ``ok`` or error class."""
    gate = threading.Barrier(len(actions))
    outcomes = [""] * len(actions)

    def run(i: int) -> None:
        gate.wait()
        try:
            actions[i]()
            outcomes[i] = "ok"
        except (ApiError, FrejaError) as exc:
            outcomes[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_approve_and_cancel_at_once_in_two_workers_give_one_outcome(workers):
    one, other = workers
    for _ in range(4):
        ref = one.providers["bankid"].start_sign(_request()).order_ref
        outcomes = _at_once(lambda r=ref: one.simulator.approve(r, ARDIANA),
                            lambda r=ref: other.simulator.user_cancel(r),
                            lambda r=ref: other.simulator.cancel({"orderRef": r}))
        assert outcomes.count("ok") == 1, outcomes
        assert outcomes.count("ApiError") == 2, outcomes
        result = other.providers["bankid"].collect(ref)
        expected = [("complete", ""), ("failed", "userCancel"), ("failed", "cancelled")]
        assert (result.status, result.hint_code) == expected[outcomes.index("ok")]
        assert bool(result.completion) == (outcomes[0] == "ok")


def test_approve_and_reject_at_once_in_two_workers_give_one_outcome(workers):
    one, other = workers
    for _ in range(4):
        ref = one.providers["freja"].start_sign(_request()).order_ref
        outcomes = _at_once(lambda r=ref: _freja(one).approve(r, ARDIANA),
                            lambda r=ref: _freja(other).reject(r),
                            lambda r=ref: _freja(other).user_cancel(r))
        assert outcomes.count("ok") == 1 and outcomes.count("FrejaError") == 2, outcomes
        status = _freja(one).orders[ref].status
        assert status == ("APPROVED", "REJECTED", "CANCELED")[outcomes.index("ok")]


# --- forgotten -----------------------------------------------------------------------------

def _shared_clock(*stand_ins) -> list[float]:
    now = [time.time()]
    for s in stand_ins:
        s.clock = lambda: now[0]
    return now


def test_finished_and_expired_bankid_orders_are_forgotten(workers):
    one, other = workers
    now = _shared_clock(one.simulator, other.simulator)
    left = one.providers["bankid"].start_sign(_request()).order_ref
    done = one.providers["bankid"].start_sign(_request()).order_ref
    now[0] += 100
    other.simulator.approve(done, ARDIANA)
    now[0] += bankid_sim.ORDER_TIMEOUT - 100 + 1
    failed = other.providers["bankid"].collect(left)
    assert (failed.status, failed.hint_code) == ("failed", "startFailed")
    assert one.providers["bankid"].collect(done).status == "complete"
    assert _stored_refs(one, "bankid") == {left, done}  # still collectable
    now[0] += bankid_sim.FINISHED_TTL
    fresh = other.providers["bankid"].start_sign(_request()).order_ref
    assert _stored_refs(one, "bankid") == {fresh}
    with pytest.raises(ProviderError) as err:
        one.providers["bankid"].collect(done)
    assert err.value.fields["error_code"] == "invalidParameters"


def test_finished_and_expired_freja_requests_are_forgotten(workers):
    one, other = workers
    now = _shared_clock(_freja(one), _freja(other))
    left = one.providers["freja"].start_sign(_request()).order_ref
    done = one.providers["freja"].start_sign(_request()).order_ref
    now[0] += 100
    _freja(other).approve(done, ARDIANA)
    now[0] += freja_fake.ORDER_TIMEOUT - 100 + 1
    assert one.providers["freja"].collect(left).status == "failed"
    assert one.providers["freja"].collect(done).status == "complete"
    now[0] += freja_fake.FINISHED_TTL
    fresh = other.providers["freja"].start_sign(_request()).order_ref
    assert _stored_refs(one, "freja") == {fresh}
    assert _stored_refs(one, "bankid") == set()  # each stand-in its own orders


# --- the store itself ------------------------------------------------------------------

def test_an_order_is_sealed_at_rest(workers):
    one, _ = workers
    ref = one.providers["bankid"].start_sign(_request(ARDIANA.personal_number)).order_ref
    with one.providers.stand_in_orders.engine.connect() as conn:
        state = conn.scalar(select(SimulatorOrder.state)
                            .where(SimulatorOrder.order_ref == ref))
    assert state and ARDIANA.personal_number not in state


def test_a_stand_in_never_waits_for_the_apps_writer(workers):
    """As with the real BankID: an order starts and ends while the app holds its
    database (on SQLite, its one writer lock: the orders live in a file of their own)."""
    one, other = workers
    with one.sessions() as session:
        session.execute(update(User).where(false()).values(name=User.name))  # held
        started = time.monotonic()
        ref = other.providers["bankid"].start_sign(_request()).order_ref
        other.simulator.approve(ref, ARDIANA)
        assert other.providers["bankid"].collect(ref).status == "complete"
        assert time.monotonic() - started < 10
        session.rollback()


def test_an_in_memory_sqlite_app_keeps_its_stand_ins_orders_in_memory():
    engine = create_engine("sqlite://")
    assert shared_orders(engine, FieldCipher("k")) is in_memory
    engine.dispose()


@pytest.fixture(params=["memory", "database"])
def store(request, settings):
    """Each implementation of the order store, run through the same contract."""
    if request.param == "memory":
        yield in_memory("bankid", bankid_sim.ORDER_CODEC)
        return
    rt = build_runtime(settings)
    yield DatabaseOrders(rt.engine, FieldCipher("k"))("bankid", bankid_sim.ORDER_CODEC)
    rt.close()


def _order(ref: str, created: float) -> Order:
    return Order(order_ref=ref, kind="sign", end_user_ip="192.0.2.1", visible_b64="eA==",
                 non_visible_b64="", personal_number="", qr_start_token="q",
                 qr_start_secret="s", auto_start_token="a", created=created)


def test_every_order_store_keeps_changes_and_forgets_what_is_past(store):
    ref, later = str(uuid.uuid4()), str(uuid.uuid4())
    with store.changing(exclusive=True) as book:
        book.put(ref, _order(ref, 1000.0), keep_until=2000.0)
        book.put(later, _order(later, 1500.0), keep_until=3000.0)
    with store.changing() as book:
        order = book.get(ref)
        order.status = "complete"
        book.put(ref, order, keep_until=2500.0)
    with store.reading() as book:
        assert book.get(ref).status == "complete"
        assert book.get("no-such-ref") is None
        assert {o.order_ref for o in book.all()} == {ref, later}
    assert store.view()[ref].status == "complete" and set(store.view()) == {ref, later}
    assert store.purge(2600.0) == 1
    assert list(store.view()) == [later]


def test_a_failed_block_stores_nothing_in_the_database(workers):
    one, _ = workers
    store = DatabaseOrders(one.engine, FieldCipher("k"))("bankid", bankid_sim.ORDER_CODEC)
    ref = str(uuid.uuid4())
    with store.changing() as book:
        book.put(ref, _order(ref, 1000.0), keep_until=2000.0)
    with pytest.raises(RuntimeError), store.changing() as book:
        book.put(ref, replace(_order(ref, 1000.0), status="failed"), keep_until=2000.0)
        raise RuntimeError("the block failed")
    assert store.view()[ref].status == "pending"


def test_without_a_database_a_stand_in_keeps_its_orders_in_memory(keys_dir):
    from signflow.adapters.providers import Providers
    from signflow.config import Settings
    from signflow.pdf.pki import load_pki

    providers = Providers(Settings(keys_dir=keys_dir, dev_mode=True), load_pki(keys_dir))
    sim = providers.build("bankid").simulator
    ref = providers["bankid"].start_sign(_request()).order_ref
    assert isinstance(sim.orders, dict) and ref in sim.orders
