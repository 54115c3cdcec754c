"""Work the database promised is never lost: mail and jobs wait in the outbox
while SMTP or the queue is down, and go out once each after recovery."""

from __future__ import annotations

import dataclasses
import io
import socket
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from signflow.core import outbox
from signflow.core.audit import verify_chain
from signflow.core.models import OutboxMessage, utcnow
from signflow.core.ports import Mail
from signflow.demo import links_in_outbox
from tests.conftest import PG_URL, create_round, signers_spec, wait_for_status
from tests.test_round_locks import chain_of


class FlakyMailer:
    """The real mailer behind a switch: while down, refuses like a dead SMTP server,
    naming the mail's link in its error as careless servers and libraries do."""

    def __init__(self, real, *, down: bool = True, pause: float = 0.0) -> None:
        self.real, self.down, self.pause = real, down, pause
        self.sent: list[Mail] = []
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> None:
        if self.down:
            raise ConnectionRefusedError(f"421 try later, mail was: {mail.body}")
        time.sleep(self.pause)
        with self._lock:
            self.sent.append(mail)
        self.real.send(mail)


pytestmark = pytest.mark.usefixtures("outbox_here")


def rows_of(runtime, round_id: str) -> list[OutboxMessage]:
    with runtime.sessions() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.round_id == round_id)
                              .order_by(OutboxMessage.id)))


def later(minutes: float = 1):
    return utcnow() + timedelta(minutes=minutes)


def round_with_smtp_down(client, auth, runtime, protocol_pdf, monkeypatch, **mailer):
    mailer_ = FlakyMailer(runtime.services.mailer, **mailer)
    monkeypatch.setattr(runtime.services, "mailer", mailer_)
    signers = signers_spec()
    resp = create_round(client, auth, protocol_pdf, signers=signers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"], signers, mailer_


def test_invitations_wait_while_smtp_is_down_and_go_out_once_after_recovery(
        client, auth, runtime, settings, protocol_pdf, monkeypatch):
    round_id, signers, mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                     monkeypatch)
    waiting = rows_of(runtime, round_id)
    assert [(r.kind, r.delivered_at, r.attempts) for r in waiting] == [("mail", None, 1)] * 3
    assert all(r.last_error.startswith("ConnectionRefusedError: 421") for r in waiting)
    assert all("/sign/[link]" in r.last_error for r in waiting)  # the link redacted
    types = [e["type"] for e in chain_of(runtime, round_id)]
    assert types.count("signer.invited") == 3 and "mail.sent" not in types
    assert mailer.sent == []

    mailer.down = False
    assert outbox.deliver_due(runtime.sessions, runtime.services, now=later()) == 3
    assert outbox.deliver_due(runtime.sessions, runtime.services, now=later(5)) == 0
    assert sorted(m.to for m in mailer.sent) == sorted(s["email"] for s in signers)
    assert {s["email"] for s in signers} <= set(links_in_outbox(settings.data_dir / "outbox"))
    events = chain_of(runtime, round_id)
    sent = [e["data"] for e in events if e["type"] == "mail.sent"]
    signer_ids = [e["data"]["signer"] for e in events if e["type"] == "signer.invited"]
    assert sorted(d["signer"] for d in sent) == sorted(signer_ids)
    assert all(d == {"signer": d["signer"], "kind": "invitation"} for d in sent)
    assert verify_chain(events).intact
    assert all(r.delivered_at is not None for r in rows_of(runtime, round_id))


def test_a_reminder_is_recorded_as_sent_when_it_was(client, auth, runtime, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    assert client.post(f"/api/v1/rounds/{round_id}/remind", headers=auth).status_code == 200
    kinds = [e["data"]["kind"] for e in chain_of(runtime, round_id) if e["type"] == "mail.sent"]
    assert kinds == ["invitation"] * 3 + ["reminder"] * 3


def test_link_tokens_are_never_in_clear_in_the_outbox(client, auth, runtime, settings,
                                                      protocol_pdf):
    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    links = links_in_outbox(settings.data_dir / "outbox")
    tokens = [links[s["email"]] for s in signers]
    with runtime.engine.connect() as conn:
        raw = [" ".join(map(str, row)) for row in conn.execute(
            text("SELECT * FROM outbox WHERE round_id = :r"), {"r": round_id})]
    assert len(raw) == 3
    assert not [t for t in tokens for row in raw if t in row]
    opened = [runtime.services.sealer.open(r.payload_sealed, bound_to=f"outbox:{r.ref}")
              for r in rows_of(runtime, round_id)]
    assert all(any(t in body for body in opened) for t in tokens)  # sealed, not lost


def test_the_backoff_grows_and_is_capped():
    no_jitter = [outbox.backoff(n, jitter=lambda: 0.0).total_seconds() for n in range(1, 9)]
    assert no_jitter == [2, 4, 8, 16, 32, 60, 60, 60]
    assert outbox.backoff(1000, jitter=lambda: 0.0) == timedelta(seconds=60)
    assert outbox.backoff(10, jitter=lambda: 1.0) == timedelta(seconds=45)  # jitter: -25 % at most


def test_a_failing_row_is_retried_with_growing_then_capped_delays(
        client, auth, runtime, protocol_pdf, monkeypatch):
    round_id, _signers, _mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                       monkeypatch)
    ref, delays = rows_of(runtime, round_id)[0].ref, []

    def row() -> OutboxMessage:
        return next(r for r in rows_of(runtime, round_id) if r.ref == ref)

    for _ in range(8):
        now = row().next_attempt_at
        outbox.deliver_due(runtime.sessions, runtime.services, now=now, only=[ref])
        delays.append((row().next_attempt_at - now).total_seconds())
    assert row().attempts == 9  # the first, in the request, and 8 more
    assert all(1.5 <= d <= 60 for d in delays), delays
    assert delays[0] < delays[3] and all(d >= 45 for d in delays[-3:]), delays


def test_delivering_just_committed_rows_claims_each_once_and_no_more(
        client, auth, runtime, protocol_pdf, monkeypatch):
    """After a commit the outbox delivers the rows it recorded (by ref): one claim
    each, not one more that finds nothing (a transaction per request saved)."""
    from sqlalchemy import event

    round_id, _signers, mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                      monkeypatch)
    mailer.down = False
    refs = [row.ref for row in rows_of(runtime, round_id)]
    claims: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "FROM outbox" in statement and "ORDER BY outbox.next_attempt_at" in statement:
            claims.append(statement)

    engine = runtime.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        done = outbox.deliver_due(runtime.sessions, runtime.services, now=later(),
                                  only=[*refs, refs[0]])  # a ref named twice counts once
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert done == len(refs) == 3
    assert len(claims) == len(refs)


def test_a_job_whose_enqueue_failed_is_delivered_later_and_the_round_completes(
        client, auth, runtime, settings, protocol_pdf, monkeypatch):
    from tests.conftest import sign_all

    class QueueDown:
        def enqueue(self, job: str, *args: str) -> None:
            raise ConnectionError("Redis is restarting")

    signers = signers_spec()
    round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
    real = runtime.services.jobs
    monkeypatch.setattr(runtime.services, "jobs", QueueDown())
    sign_all(client, runtime, settings, signers)
    jobs = [r for r in rows_of(runtime, round_id) if r.kind == "job"]
    assert [(r.delivered_at, r.attempts) for r in jobs] == [(None, 1)] * 3
    assert jobs[0].last_error == "ConnectionError: Redis is restarting"
    assert client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()["status"] == "pending"

    monkeypatch.setattr(runtime.services, "jobs", real)
    assert outbox.deliver_due(runtime.sessions, runtime.services, now=later()) >= 3
    wait_for_status(client, auth, round_id, "completed")
    types = [e["type"] for e in chain_of(runtime, round_id)]
    assert types.count("signature.applied") == 3 and types.count("round.completed") == 1


def test_two_dispatchers_deliver_each_row_once(client, auth, runtime, protocol_pdf,
                                               monkeypatch):
    """On PostgreSQL two dispatchers race (SKIP LOCKED); SQLite has one writer, so in turn."""
    round_id, _signers, mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                      monkeypatch, pause=0.2)
    mailer.down = False
    now = later()
    counts: list[int] = []

    def dispatch() -> None:
        counts.append(outbox.deliver_due(runtime.sessions, runtime.services, now=now))

    if PG_URL:
        threads = [threading.Thread(target=dispatch) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    else:
        dispatch()
        dispatch()
    assert sorted(counts) in ([0, 3], [1, 2]) and sum(counts) == 3
    assert len(mailer.sent) == 3 and len({m.to for m in mailer.sent}) == 3
    sent = [e for e in chain_of(runtime, round_id) if e["type"] == "mail.sent"]
    assert len(sent) == 3


def test_the_embedded_dispatcher_retries_on_its_own(client, auth, runtime, protocol_pdf,
                                                    monkeypatch):
    """`make run` (no Redis): a thread delivers what failed once the mail server is back."""
    round_id, _signers, mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                      monkeypatch)
    mailer.down = False
    runtime.dispatcher.start(0.2)
    try:
        # the first retry is due within 2 s; a row is delivered once the thread has
        # committed, a moment after the mail server took the mail
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                len(mailer.sent) >= 3 and all(r.delivered_at for r in rows_of(runtime, round_id))):
            time.sleep(0.1)
    finally:
        runtime.dispatcher.stop()
    assert len(mailer.sent) == 3
    assert all(r.delivered_at for r in rows_of(runtime, round_id))


def test_the_embedded_server_sends_mail_in_its_delivery_thread_not_the_request(
        client, auth, runtime, protocol_pdf, monkeypatch):
    """Without Redis a slow SMTP server (or webhook receiver) holds up no request."""
    from signflow.dispatch import start_delivery

    sent_from: list[str] = []
    mailer = runtime.services.mailer

    class Recording:
        def send(self, mail) -> None:
            sent_from.append(threading.current_thread().name)
            mailer.send(mail)

    monkeypatch.setattr(runtime.services, "mailer", Recording())
    before = runtime.dispatcher._handoff
    monkeypatch.setattr(runtime.settings.__class__, "embedded", property(lambda self: True))
    stop = start_delivery(runtime, interval=0.2)
    assert stop is not None
    try:
        assert create_round(client, auth, protocol_pdf).status_code == 201
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(sent_from) < 3:
            time.sleep(0.05)
    finally:
        stop.set()
        runtime.dispatcher.hand_off(before)
    assert sent_from == ["signflow-dispatcher"] * 3


def test_the_dispatcher_command_delivers_what_waits(client, auth, runtime, settings,
                                                    protocol_pdf, monkeypatch, capsys):
    from signflow import cli, logs
    from tests.test_cli import env_for

    monkeypatch.setattr(logs, "configure", lambda *a, **k: "text")  # keep pytest's logging

    round_id, signers, _mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                      monkeypatch)
    with runtime.sessions() as s, s.begin():  # their retry is due
        for row in s.scalars(select(OutboxMessage)):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
    env_for(monkeypatch, settings)
    monkeypatch.setenv("SIGNFLOW_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SIGNFLOW_DEV_MODE", "true")
    assert cli.main(["dispatcher", "--once"]) == 0
    assert "3 outbox message(s) delivered" in capsys.readouterr().out
    assert {s["email"] for s in signers} <= set(links_in_outbox(settings.data_dir / "outbox"))
    assert [e["type"] for e in chain_of(runtime, round_id)].count("mail.sent") == 3


class HangingSmtp:
    """A mail server that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_hanging_mail_server_never_holds_a_request(settings, protocol_pdf):
    """Production (Redis configured): the web process leaves mail to the dispatcher
    process and never talks SMTP itself, so the request answers at once (even with
    Redis unreachable too) and the rows wait, due, for the dispatcher."""
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import free_port, make_user

    smtp = HangingSmtp()
    prod = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
                               redis_url=f"redis://127.0.0.1:{free_port()}/0")
    runtime = build_runtime(prod)
    try:
        client = create_app(prod, runtime).test_client()
        auth = {"Authorization": f"Bearer {make_user(runtime, 'sekretariat@example.se')}"}
        started = time.monotonic()
        resp = create_round(client, auth, protocol_pdf)
        took = time.monotonic() - started
        assert resp.status_code == 201, resp.get_json()
        assert took < 8, f"the request took {took:.1f} s"  # SMTP would hold it 20 s, Redis 3 s
        assert smtp.held == []  # the web process never connected to the mail server
        rows = rows_of(runtime, resp.get_json()["id"])
        assert [(r.kind, r.delivered_at, r.attempts) for r in rows] == [("mail", None, 0)] * 3
    finally:
        runtime.close()
        smtp.close()


def test_a_timestamp_service_that_is_down_refuses_a_new_round_with_503(settings, protocol_pdf):
    """The prepared PDF is certified with a timestamp: without the TSA the round cannot
    start.  The client is told to come back (503, Retry-After), not given a 500, and
    nothing is stored."""
    from sqlalchemy import func

    from signflow import create_app
    from signflow.core.models import Round
    from signflow.runtime import build_runtime
    from tests.conftest import free_port, make_user

    down = settings.with_overrides(tsa_url=f"http://127.0.0.1:{free_port()}/tsa")
    runtime = build_runtime(down)
    try:
        client = create_app(down, runtime).test_client()
        auth = {"Authorization": f"Bearer {make_user(runtime, 'tsa-nere@example.se')}"}
        with runtime.sessions() as s:
            before = s.scalar(select(func.count()).select_from(Round))
        resp = create_round(client, auth, protocol_pdf)
        assert resp.status_code == 503, resp.get_json()
        assert resp.get_json()["error"]["code"] == "timestamp_unavailable"
        assert resp.headers["Retry-After"] == "60"
        with runtime.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Round)) == before
            assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    finally:
        runtime.close()


def test_sealed_downloads_while_the_timestamp_service_is_down_say_come_back(
        settings, completed_round, auth):
    """The Händelselogg, the evidence ZIP (which holds it) and the PDF verdict are
    sealed with a timestamp: without the TSA each answers 503 with Retry-After, not
    500, and the evidence download is not recorded as made."""
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import free_port, make_user

    body, pdf = completed_round
    down = settings.with_overrides(tsa_url=f"http://127.0.0.1:{free_port()}/tsa")
    runtime = build_runtime(down)
    try:
        client = create_app(down, runtime).test_client()
        auditor = {"Authorization": "Bearer " + make_user(runtime, "revisor-tsa@example.se",
                                                          "auditor")}
        events_before = len(client.get(f"/api/v1/rounds/{body['id']}/audit",
                                       headers=auth).get_json()["events"])
        for resp in (client.get(f"/api/v1/rounds/{body['id']}/events.pdf", headers=auth),
                     client.get(f"/api/v1/rounds/{body['id']}/evidence", headers=auditor),
                     client.post("/api/v1/verify?format=pdf",
                                 data={"document": (io.BytesIO(pdf), "p.pdf")})):
            assert resp.status_code == 503, (resp.request.path, resp.get_data()[:300])
            assert resp.get_json()["error"]["code"] == "timestamp_unavailable"
            assert resp.headers["Retry-After"] == "60"
        events = client.get(f"/api/v1/rounds/{body['id']}/audit", headers=auth).get_json()
        assert len(events["events"]) == events_before  # no evidence.downloaded recorded
    finally:
        runtime.close()


def test_a_long_delivered_message_keeps_that_it_went_out_but_not_what_it_said(
        client, auth, runtime, protocol_pdf, settings):
    """The archivist's review: every mail ever sent (names, addresses, signing
    links) was kept, sealed, for good.  After outbox.KEEP_DELIVERED only that it
    went out, when and after how many tries is kept."""
    from signflow.core.housekeeping import tick

    body = create_round(client, auth, protocol_pdf).get_json()
    round_id = body["id"]
    deadline = time.monotonic() + 30
    while True:  # the invitations go out just after the answer
        with runtime.sessions() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.round_id == round_id,
                                                         OutboxMessage.kind == "mail")).all()
            if rows and all(r.delivered_at for r in rows):
                sent = {r.id for r in rows}
                break
        assert time.monotonic() < deadline, "the invitations never went out"
        time.sleep(0.1)
    later = utcnow() + outbox.KEEP_DELIVERED + timedelta(days=1)
    with runtime.sessions() as s:
        assert outbox.forget_delivered(s, utcnow()) == 0  # too new yet
        assert tick(s, runtime.services, now=later, renew=True).forgotten >= len(sent)
        s.commit()
    with runtime.sessions() as s:
        kept = [s.get(OutboxMessage, i) for i in sent]
        assert all(r is not None and r.payload_sealed == "" and r.delivered_at for r in kept)


def test_readyz_and_metrics_show_mail_waiting_in_the_outbox(client, auth, runtime,
                                                             protocol_pdf, monkeypatch):
    """A stopped dispatcher or a mail server down left /readyz 'ready' with nothing
    to see: the outbox's waiting rows are shown (informational: this process still
    serves) and exported for an alert on their age."""
    from tests.test_production import _sample

    _round_id, _signers, mailer = round_with_smtp_down(client, auth, runtime, protocol_pdf,
                                                       monkeypatch)
    body = client.get("/readyz").get_json()
    assert body["ready"] is True
    mail = body["checks"]["outbox"]["waiting"]["mail"]
    assert mail["count"] == 3 and mail["retrying"] == 3 and mail["oldest_seconds"] >= 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert _sample(metrics, "signflow_outbox_waiting", kind="mail") == 3
    assert _sample(metrics, "signflow_outbox_retrying", kind="mail") == 3

    mailer.down = False
    assert outbox.deliver_due(runtime.sessions, runtime.services, now=later()) == 3
    assert "mail" not in client.get("/readyz").get_json()["checks"]["outbox"]["waiting"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert _sample(metrics, "signflow_outbox_waiting", kind="mail") == 0
