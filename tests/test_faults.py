"""Fault tests (issue 10) on a deployment of our own: PostgreSQL, Redis, gunicorn,
workers, dispatcher and scheduler, started by :mod:`fault_stack` on free
ports (never the shared services on 5432 and 6379).

Each scenario has three rounds in flight when the fault hits: one signed by
all (its last PDF job queued or running), one half signed, one just created.
After recovery every round must be ``completed`` within a minute, its PDF must
hold exactly one approval signature per signer, each invitation must have
reached the SMTP sink exactly once, and the audit chain must be intact.

The two-minute TSA outage runs on a second stack in the background while the
other scenarios run, so the module takes about five minutes.

    .venv/bin/pytest -q -p no:cacheprovider tests/test_faults.py
    SIGNFLOW_FAULTS_KEEP=1 …  keeps each stack's temp dir (logs) for a look afterwards
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
from fault_stack import (  # tests/ is on sys.path under pytest (rootdir conftest)
    INTERRUPTED,
    FaultStack,
    Flight,
    StackOptions,
    assert_signed_once_each,
    launch,
    missing_tools,
    sign,
    wait_invited,
    wait_until,
)

MISSING = missing_tools()
pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(bool(MISSING), reason="LOUD SKIP: the fault tests start their own "
                       "PostgreSQL and Redis, and this machine lacks " + ", ".join(MISSING)),
]

#: Every round is completed this long after the fault ended (issue 10: a minute).
RECOVERY = 60.0
#: How long the TSA stays down (issue 10: two minutes).
TSA_OUTAGE = 120.0
KEEP = os.environ.get("SIGNFLOW_FAULTS_KEEP", "") not in ("", "0")
TSA_TEST = "test_rounds_held_up_by_a_two_minute_tsa_outage_complete_after_it"


@pytest.fixture(scope="module")
def pdf() -> bytes:
    from signflow.pdf.pages import sample_protocol

    return sample_protocol()


@pytest.fixture(scope="module")
def whole_stack():
    stack = FaultStack(StackOptions(keep=KEEP))
    try:
        yield stack.start()
    finally:
        stack.close()


@pytest.fixture
def stack(whole_stack):
    """The module's stack with everything a previous test broke brought back."""
    whole_stack.heal()
    started = time.monotonic()
    yield whole_stack
    print(f"wall time {time.monotonic() - started:.1f} s; logs in {whole_stack.logs}")


# -- what recovery means ---------------------------------------------------------------

def events(stack: FaultStack, flight: Flight) -> list[dict]:
    return stack.api().audit(flight.round_id)["events"]


def applied(stack: FaultStack, flight: Flight) -> int:
    return sum(e["type"] == "signature.applied" for e in events(stack, flight))


def wait_applied(stack: FaultStack, flights: list[Flight], count: int) -> None:
    for flight in flights:
        wait_until(lambda f=flight: applied(stack, f) >= count, 60,
                   f"round {flight.round_id}: {count} signature(s) never applied", every=0.3)


def diagnosis(stack: FaultStack) -> str:
    """Warnings and errors of the signflow processes, for a failure's message."""
    lines = []
    for proc in stack.processes():
        found = [line for line in stack.log_lines(proc.name)
                 if '"WARNING"' in line or '"ERROR"' in line or "Traceback" in line]
        lines += [f"{proc.name}: {line[:400]}" for line in found[-8:]]
    return "\n".join(lines)


def completion(stack: FaultStack, flights: list[Flight], recovered_at: float) -> dict:
    """Seconds after *recovered_at* at which each round read ``completed`` (None: not
    within :data:`RECOVERY`)."""
    api, seen = stack.api(), {}
    deadline = recovered_at + RECOVERY
    while True:
        for flight in flights:
            if flight.round_id not in seen and \
                    api.round(flight.round_id)["status"] == "completed":
                seen[flight.round_id] = time.monotonic() - recovered_at
        if len(seen) == len(flights) or time.monotonic() > deadline:
            return {f.round_id: seen.get(f.round_id) for f in flights}
        time.sleep(0.5)


def assert_recovered(stack: FaultStack, flights: list[Flight], recovered_at: float,
                     times: dict | None = None) -> None:
    """Issue 10's four promises, for *flights*, the fault having ended at *recovered_at*."""
    api = stack.api()
    times = times if times is not None else completion(stack, flights, recovered_at)
    late = []
    for flight in flights:
        if times[flight.round_id] is None:
            body = api.round(flight.round_id)
            late.append(f"{flight.round_id}: {body['status']}, signers "
                        f"{[s.get('status') for s in body['signers']]}, "
                        f"{applied(stack, flight)} applied")
    assert not late, (f"not completed {RECOVERY:g} s after recovery:\n" + "\n".join(late)
                      + "\n" + diagnosis(stack))
    print(f"completed {sorted(round(t, 1) for t in times.values())} s after recovery")
    for flight in flights:
        assert_signed_once_each(api, stack.smtp, flight)
        audit = api.audit(flight.round_id)
        assert audit["intact"], audit
        kinds = Counter(e["type"] for e in audit["events"])
        assert kinds["signer.signed"] == kinds["signature.applied"] == 3, kinds
        assert kinds["round.completed"] == 1, kinds
        invited = Counter(e["data"].get("signer") for e in audit["events"]
                          if e["type"] == "mail.sent" and e["data"].get("kind") == "invitation")
        assert sorted(invited.values()) == [1, 1, 1], invited


def in_flight(stack: FaultStack, pdf: bytes, tag: str) -> list[Flight]:
    """Three rounds as the fault hits: B half signed, its PDF job waiting on a slow TSA
    (5 s an answer); A signed by all, its last PDF job queued behind B's; C invited."""
    a, b, c = flights = [launch(stack, f"{tag}-{x}", pdf) for x in "abc"]
    wait_invited(stack, flights)
    sign(stack, a, 0, 1)
    sign(stack, b, 0)
    wait_applied(stack, [a], 2)
    wait_applied(stack, [b], 1)
    stack.tsa.delay = 5.0
    sign(stack, b, 1)
    wait_until(lambda: stack.tsa.in_flight, 30, "B's PDF job never reached the TSA")
    sign(stack, a, 2)
    wait_until(stack.queued, 10, "A's last PDF job was not queued")
    return flights


def finish(stack: FaultStack, flights: list[Flight]) -> None:
    """Everyone who has not signed yet signs."""
    for flight in flights:
        rest = [i for i, p in enumerate(flight.people) if p["email"] not in flight.signed]
        sign(stack, flight, *rest)


# -- the scenarios ---------------------------------------------------------------------

def test_a_worker_killed_while_applying_a_signature_leaves_it_to_the_other(stack, pdf):
    """The worker applying a signature dies (SIGKILL) and stays dead: the other
    worker finishes every round, none signed twice."""
    stack.start_worker()  # a second worker, which lives on
    flights = [launch(stack, f"dead-{x}", pdf) for x in "abc"]
    wait_invited(stack, flights)
    for flight in flights:
        sign(stack, flight, 0, 1)
    wait_applied(stack, flights, 2)
    stack.tsa.delay = 5.0
    for flight in flights:  # each round's last job, so no later job repairs it
        sign(stack, flight, 2)
    victim = wait_until(lambda: stack.tsa.in_flight and stack.busy_worker(), 30,
                        "no worker was waiting on the TSA")
    victim.kill()
    stack.workers.remove(victim)
    stack.tsa.delay = 0.0
    recovered = time.monotonic()
    assert [w.alive() for w in stack.workers] == [True]
    assert_recovered(stack, flights, recovered)


@pytest.mark.parametrize("aof", [pytest.param(True, id="with-aof"),
                                 pytest.param(False, id="without-persistence")])
def test_a_redis_restart_mid_round_loses_nothing(stack, pdf, aof):
    if not aof:
        stack.redis.persist(False)
    flights = in_flight(stack, pdf, f"redis-{'aof' if aof else 'mem'}")
    stack.redis.stop()
    stack.tsa.delay = 0.0
    time.sleep(3)
    stack.redis.start()
    recovered = time.monotonic()
    finish(stack, flights)
    assert_recovered(stack, flights, recovered)


def test_a_postgresql_restart_mid_round_loses_nothing(stack, pdf):
    flights = in_flight(stack, pdf, "pg")
    stack.pg.stop("fast")  # every connection is cut, as `docker restart db` does
    stack.tsa.delay = 0.0
    time.sleep(5)
    stack.pg.start()
    recovered = time.monotonic()
    finish(stack, flights)
    assert_recovered(stack, flights, recovered)


def test_invitations_wait_for_smtp_to_come_back(stack, pdf):
    a = launch(stack, "smtp-down-a", pdf)
    wait_invited(stack, [a])
    sign(stack, a, 0, 1)
    stack.smtp.down()
    sign(stack, a, 2)  # the round completes with its mails undeliverable
    flights = [a, *(launch(stack, f"smtp-down-{x}", pdf) for x in "bc")]
    time.sleep(8)
    for flight in flights[1:]:
        sent = [e for e in events(stack, flight) if e["type"] == "mail.sent"]
        assert not sent, f"the audit says sent while SMTP was down: {sent}"
    stack.smtp.up()
    recovered = time.monotonic()
    finish(stack, flights)
    assert_recovered(stack, flights, recovered)


def test_a_hanging_smtp_server_holds_up_no_request(stack, pdf):
    a = launch(stack, "smtp-hang-a", pdf)
    wait_invited(stack, [a])
    sign(stack, a, 0, 1)
    stack.smtp.hang()
    sign(stack, a, 2)
    began = time.monotonic()
    flights = [a, *(launch(stack, f"smtp-hang-{x}", pdf) for x in "bc")]
    creating = (time.monotonic() - began) / 2
    time.sleep(max(0.0, 25 - (time.monotonic() - began)))
    stack.smtp.up()
    recovered = time.monotonic()
    finish(stack, flights)
    assert_recovered(stack, flights, recovered)
    assert creating < 5, f"POST /api/v1/rounds took {creating:.1f} s while SMTP hung"


def test_a_hanging_smtp_server_holds_up_no_pdf_work(stack, pdf):
    a, b = flights = [launch(stack, f"smtp-stall-{x}", pdf) for x in "ab"]
    wait_invited(stack, flights)
    sign(stack, a, 0, 1)
    wait_applied(stack, [a], 2)
    stack.smtp.hang()
    sign(stack, a, 2)  # A completes: its four mails go to the hanging server
    wait_until(lambda: stack.api().round(a.round_id)["status"] == "completed", 30,
               "A did not complete")
    signed = time.monotonic()
    sign(stack, b, 0)
    try:
        wait_until(lambda: applied(stack, b), 30, "not applied", every=0.3)
        waited = time.monotonic() - signed
    except TimeoutError:
        waited = float("inf")
    stack.smtp.up()
    recovered = time.monotonic()
    finish(stack, flights)
    assert_recovered(stack, flights, recovered)
    assert waited < 10, (f"B's signature waited {waited:.0f} s for its PDF job while SMTP "
                         "hung:\n" + "\n".join(line[:300] for line in stack.log_lines(
                             stack.workers[0].name, "not delivered")[-6:]))


def test_a_whole_worker_killed_while_applying_a_signature_loses_nothing(stack, pdf):
    flights = [launch(stack, f"worker-{x}", pdf) for x in "abc"]
    wait_invited(stack, flights)
    for flight in flights:
        sign(stack, flight, 0, 1)
    wait_applied(stack, flights, 2)
    stack.tsa.delay = 5.0
    for flight in flights:
        sign(stack, flight, 2)
    worker = stack.workers[0]
    wait_until(lambda: stack.tsa.in_flight, 30, "no PDF job was waiting on the TSA")
    worker.kill()  # SIGKILL to the group: the worker and its sandbox, as the OOM killer would
    stack.workers.remove(worker)
    stack.tsa.delay = 0.0
    stack.start_worker()  # as `restart: unless-stopped` would
    assert_recovered(stack, flights, time.monotonic())


# -- the TSA outage, on a second stack in the background ---------------------------------

class TsaOutage:
    """Rounds held up by a two-minute TSA outage on a stack of their own, driven in
    a thread so that the other scenarios run meanwhile."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.stack = FaultStack(StackOptions(keep=KEEP))
        self.flights: list[Flight] = []
        self.recovered = 0.0
        self.times: dict = {}
        self.create_while_down = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="tsa-outage", daemon=True)

    def _run(self) -> None:
        try:
            self._outage()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            self.error = exc

    def _outage(self) -> None:
        stack = self.stack.start()
        self.flights = flights = in_flight(stack, self.pdf, "tsa")
        stack.tsa.down()
        went_down = time.monotonic()
        sign(stack, flights[1], 2)  # B's last and C's first two sign while it is down
        sign(stack, flights[2], 0, 1)
        try:
            launch(stack, "tsa-while-down", self.pdf, timeout=60)
            self.create_while_down = "created"
        except Exception as exc:  # noqa: BLE001 - reported, not a promise of issue 10
            self.create_while_down = str(exc)[:200]
        time.sleep(max(0.0, went_down + TSA_OUTAGE - time.monotonic()))
        stack.tsa.delay = 0.0
        stack.tsa.up()
        self.recovered = time.monotonic()
        finish(stack, flights)
        self.times = completion(stack, flights, self.recovered)


@pytest.fixture(scope="module", autouse=True)
def tsa_outage(request, pdf):
    """Started with the module when its test is among those run."""
    if not any(item.name == TSA_TEST and item.module is request.module
               for item in request.session.items):
        yield None
        return
    outage = TsaOutage(pdf)
    outage.thread.start()
    try:
        yield outage
    finally:
        # interrupted: its stack is closed under the thread, which then fails unheard
        outage.thread.join(timeout=0 if INTERRUPTED.is_set() else TSA_OUTAGE + 60)
        outage.stack.close()


def test_rounds_held_up_by_a_two_minute_tsa_outage_complete_after_it(tsa_outage):
    tsa_outage.thread.join(timeout=TSA_OUTAGE + 120)
    assert not tsa_outage.thread.is_alive(), "the TSA outage scenario did not finish"
    if tsa_outage.error is not None:
        raise tsa_outage.error
    print(f"creating a round while the TSA was down: {tsa_outage.create_while_down}")
    assert_recovered(tsa_outage.stack, tsa_outage.flights, tsa_outage.recovered,
                     tsa_outage.times)
