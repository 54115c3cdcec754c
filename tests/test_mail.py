"""Invitations over SMTP to a real SMTP server (aiosmtpd)."""

import base64
import email
import email.policy

import pytest

from tests.conftest import create_round, free_port, signers_spec

# these runtimes send to an SMTP server of the test's own, from this process: on the
# RQ pass the dispatcher process (whose mail goes elsewhere) waits meanwhile
pytestmark = pytest.mark.usefixtures("dispatcher_paused")


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", received
    controller.stop()


def test_invitations_go_out_over_smtp(smtp_server, settings, protocol_pdf, worker):
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    url, received = smtp_server
    settings = settings.with_overrides(smtp_url=url, mail_from="sekretariatet@example.se",
                                       redis_url="")  # mail to this SMTP, from this process
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "smtp@example.se")}
        signers = signers_spec()
        resp = create_round(client, auth, protocol_pdf, signers=signers)
        assert resp.status_code == 201
    finally:
        rt.close()
    assert sorted(m["To"] for m in received) == sorted(s["email"] for s in signers)
    msg = email.message_from_string(received[0].as_string(), policy=email.policy.default)
    assert msg["From"] == "sekretariatet@example.se"
    body = msg.get_body(("plain",)).get_content()
    assert f"{settings.base_url}/sign/" in body
    assert "Mobilt BankID" in body
    page = msg.get_body(("html",)).get_content()  # the same words, the link a link
    assert '<a href="' + settings.base_url + "/sign/" in page and "Mobilt BankID" in page
    # an answer reaches the secretariat who started the round, not the service's address;
    # and a mail reader (and its screen reader) knows the language
    assert msg["Reply-To"] == "smtp@example.se"
    assert msg["Content-Language"] == "sv" and '<html lang="sv">' in page


def test_everyone_gets_the_signed_protocol_attached_in_text_and_html(
        smtp_server, settings, protocol_pdf, worker):
    """Issue 12: at completion each signer and the secretariat get the signed PDF:
    their link, and the file itself below the size limit."""
    import hashlib
    import re

    from signflow import create_app
    from signflow.demo import sign_over_http
    from signflow.runtime import build_runtime
    from tests.conftest import approve_with, make_user, wait_for_status

    url, received = smtp_server
    settings = settings.with_overrides(smtp_url=url, mail_from="sekretariatet@example.se",
                                       redis_url="")
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "klart@example.se")}
        signers = signers_spec()
        round_id = create_round(client, auth, protocol_pdf, signers=signers).get_json()["id"]
        for s in signers:
            invitation = email.message_from_string(
                next(m for m in received if m["To"] == s["email"]).as_string(),
                policy=email.policy.default).get_body(("plain",)).get_content()
            token = re.search(r"/sign/([A-Za-z0-9_\-]+)", invitation)[1]
            assert sign_over_http(client, token, approve_with(rt))["status"] == "complete"
        wait_for_status(client, auth, round_id, "completed")
        final = client.get(f"/api/v1/rounds/{round_id}/document", headers=auth).data
    finally:
        rt.close()
    done = [email.message_from_string(m.as_string(), policy=email.policy.default)
            for m in received if "Signerat" in m["Subject"]]
    assert sorted(m["To"] for m in done) == sorted([s["email"] for s in signers]
                                                    + ["klart@example.se"])
    for msg in done:
        assert msg.get_body(("plain",)).get_content().strip()
        assert "<p>" in msg.get_body(("html",)).get_content()
        assert msg["Content-Language"] == "sv"  # on the whole mail, attachment and all
        [pdf] = list(msg.iter_attachments())
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_filename() == "Protokoll-nr-2-2026-signerat.pdf"
        assert hashlib.sha256(pdf.get_content()).digest() == hashlib.sha256(final).digest()


def test_nothing_is_sent_when_the_round_is_refused(smtp_server, settings, worker):
    import io
    import json

    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    url, received = smtp_server
    settings = settings.with_overrides(smtp_url=url, redis_url="")
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "smtp2@example.se")}
        resp = client.post("/api/v1/rounds", headers=auth, data={
            "round": json.dumps({"title": "t", "signers": signers_spec()}),
            "document": (io.BytesIO(b"no pdf"), "x.pdf")})
        assert resp.status_code == 415
    finally:
        rt.close()
    assert received == []


def test_a_mail_server_that_is_down_fails_no_request(settings, protocol_pdf, worker, caplog):
    """The round is committed before mail goes out: a dead SMTP server is logged, not a 500,
    and the invitations wait in the outbox."""
    from signflow import create_app
    from signflow.runtime import build_runtime
    from tests.conftest import make_user

    dead = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    settings = settings.with_overrides(smtp_url=dead, mail_from="sekretariatet@example.se",
                                       redis_url="")
    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "smtp-down@example.se")}
        resp = create_round(client, auth, protocol_pdf, signers=signers_spec())
        assert resp.status_code == 201, resp.get_json()
        round_id = resp.get_json()["id"]
        listed = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
        assert [s["status"] for s in listed["signers"]] == ["invited"] * 3
    finally:
        rt.close()
    # each invitation tried, none stopping the others; all wait in the outbox (test_outbox)
    failures = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(failures) == 3
    assert "ConnectionRefusedError" in failures[0].getMessage()


def test_a_three_step_protocol_over_smtp(smtp_server, settings, protocol_pdf, worker):
    """Issue 12, end to end on a real SMTP server: the protokoll workflow's steps
    (secretary, justerare, chair) each invited in turn, nobody out of turn; a
    reminder on the workflow's schedule (a controlled clock) with the link the
    signer already has; the justerare replaced (old link dead, new one works);
    and the signed protocol to everyone at the end."""
    import re
    from datetime import timedelta

    from signflow import create_app
    from signflow.core.housekeeping import tick
    from signflow.core.models import Round
    from signflow.demo import sign_over_http
    from signflow.runtime import build_runtime
    from tests.conftest import approve_with, make_user, wait_for_status
    from tests.test_workflows import MEETING, STAND_IN, municipal_signers

    url, received = smtp_server
    settings = settings.with_overrides(smtp_url=url, mail_from="sekretariatet@example.se",
                                       redis_url="")  # mail to this SMTP, from this process

    def mails_to(address: str, subject: str = "") -> list[email.message.EmailMessage]:
        parsed = [email.message_from_string(m.as_string(), policy=email.policy.default)
                  for m in received if m["To"] == address]
        return [m for m in parsed if str(m["Subject"]).startswith(subject)]  # decoded

    def link_in(msg) -> str:
        return re.search(r"/sign/([A-Za-z0-9_\-]+)", msg.get_body(("plain",)).get_content())[1]

    rt = build_runtime(settings)
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "steg@example.se")}
        secretary, justerare, chair = municipal_signers("smtp-steps")
        resp = create_round(client, auth, protocol_pdf, signers=[secretary, justerare, chair],
                            workflow="protokoll", **MEETING)
        assert resp.status_code == 201, resp.get_json()
        round_id = resp.get_json()["id"]
        # step 1 only: the others have no link to sign out of turn with
        assert [m["To"] for m in received] == [secretary["email"]]
        first = link_in(mails_to(secretary["email"])[0])

        # the workflow's reminder plan, on a clock of the test's own: two days after
        with rt.sessions() as s:
            invited_at = s.get(Round, round_id).signers[0].invited_at
        for days, reminded in ((1.9, 0), (2.01, 1)):
            with rt.sessions() as s:
                tick(s, rt.services, now=invited_at + timedelta(days=days))
                s.commit()
            assert len(mails_to(secretary["email"], "Påminnelse")) == reminded
        assert link_in(mails_to(secretary["email"], "Påminnelse")[0]) == first

        assert sign_over_http(client, first, approve_with(rt))["status"] == "complete"
        [invitation] = mails_to(justerare["email"])  # step 2's turn now, not the chair's
        assert mails_to(chair["email"]) == []
        old = link_in(invitation)

        # the justerare falls ill: another person in the place, the old link dead
        body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
        replaced = client.post(
            f"/api/v1/rounds/{round_id}/signers/{body['signers'][1]['id']}/replace",
            headers=auth, json={"name": "Test Person", "email": "ersattare@example.se",
                                "personal_number": STAND_IN})
        assert replaced.status_code == 200, replaced.get_json()
        assert client.get(f"/sign/{old}").status_code == 410
        new = link_in(mails_to("ersattare@example.se")[0])
        assert sign_over_http(client, new, approve_with(rt))["status"] == "complete"

        chair_link = link_in(mails_to(chair["email"])[0])
        assert sign_over_http(client, chair_link, approve_with(rt))["status"] == "complete"
        wait_for_status(client, auth, round_id, "completed")
    finally:
        rt.close()
    done = [m for m in (email.message_from_string(m.as_string(), policy=email.policy.default)
                        for m in received) if str(m["Subject"]).startswith("Signerat")]
    assert sorted(m["To"] for m in done) == sorted(
        [secretary["email"], "ersattare@example.se", chair["email"], "steg@example.se"])
    for msg in done:
        assert [a.get_content_type() for a in msg.iter_attachments()] == ["application/pdf"]


def test_starttls_when_offered_with_tls_settings_made_once(keys_dir, tmp_path, monkeypatch):
    """A server that offers STARTTLS gets it (the mailer asked before EHLO, so it
    never saw the offer and sent in the clear).  Making the TLS settings reads the
    system's CA certificates, tens of milliseconds of CPU that every mail used to
    pay for, whether or not the server spoke TLS: now once, when first needed."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from signflow.adapters.mail import SmtpMailer
    from signflow.core.ports import Mail
    from signflow.pdf.pki import issue_tls_certificate, load_pki, write_pair

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    pki = load_pki(keys_dir)
    cert, key = write_pair(tmp_path, "smtp", issue_tls_certificate(pki.root, "localhost",
                                                                   server=True))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    made = []
    real = ssl.create_default_context

    def counted(*args, **kwargs):  # trusting our root, as a deployment trusts its server's
        made.append(args)
        context = real(*args, **kwargs)
        context.load_verify_locations(keys_dir / "root-ca.pem")
        return context

    monkeypatch.setattr(ssl, "create_default_context", counted)
    mail = Mail(to="a@example.se", subject="Hej", body="Hej!")
    for tls in (None, server_tls):
        made.clear()
        port = free_port()
        controller = Controller(Collect(), hostname="127.0.0.1", port=port, tls_context=tls)
        controller.start()
        try:
            mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "signflow@example.se")
            for _ in range(3):
                mailer.send(mail)
        finally:
            controller.stop()
        assert len(made) == (0 if tls is None else 1)
    assert len(received) == 6


def test_an_attachment_goes_over_the_wire_whole_in_standard_lines(smtp_server):
    """The mailer splices each attachment's base64 into the message the email package
    wrote around a stand-in: what arrives is one well-formed message (CRLF lines of at
    most 78 characters, the file byte for byte), not the stand-in.  Lines that begin
    with a dot arrive as written (SMTP doubles the dot on the way), and the same file
    sent again (it was encoded once) arrives whole again."""
    import os

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from signflow.adapters.mail import SmtpMailer
    from signflow.core.ports import Attachment, Mail

    raw: list[bytes] = []

    class Keep(Message):
        async def handle_DATA(self, server, session, envelope):
            raw.append(envelope.original_content)
            return await super().handle_DATA(server, session, envelope)

        def handle_message(self, message):
            pass

    data = os.urandom(300_000) + b"\n.\r\n.."  # lines a naive mailer would dot-stuff
    body = "Hej!\n\nHär är protokollet.\n.\n..två punkter\n.\n"
    sent = [("Åsa Öberg <asa@example.se>", data), ("Bo Ek <bo@example.se>", data),
            ("Cecilia Al <cecilia@example.se>", data[:-1] + b"!")]
    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "Sekretariatet <signflow@example.se>")
        for to, pdf in sent:
            mailer.send(Mail(to=to, subject="Signerat: Protokoll §§ 1–9", body=body,
                             attachments=(Attachment("protokoll.pdf", "application/pdf", pdf),
                                          Attachment("bilaga.pdf", "application/pdf", b"%PDF"))))
    finally:
        controller.stop()
    assert len(raw) == len(sent)
    for wire, (to, pdf) in zip(raw, sent, strict=True):
        lines = wire.split(b"\r\n")
        assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")
        assert max(len(line) for line in lines) <= 78
        assert b"." in lines and b"..tv\xc3\xa5 punkter" in lines  # the dots as the text has them
        msg = email.message_from_bytes(wire, policy=email.policy.default)
        assert msg["To"] == to
        assert msg["Subject"] == "Signerat: Protokoll §§ 1–9"
        assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == body
        got = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
        assert got == {"protokoll.pdf": pdf, "bilaga.pdf": b"%PDF"}


def test_an_address_that_is_not_ascii_needs_a_server_that_takes_it():
    """As smtplib's own send_message: SMTPUTF8 where the server offers it, and a
    clear refusal (the outbox tries again later) where it does not."""
    import smtplib

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from signflow.adapters.mail import SmtpMailer
    from signflow.core.ports import Mail

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    mail = Mail(to="Åsa <åsa@exempel.se>", subject="Hej", body="Hej!")
    for utf8 in (True, False):
        port = free_port()
        controller = Controller(Collect(), hostname="127.0.0.1", port=port,
                                enable_SMTPUTF8=utf8)
        controller.start()
        try:
            mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "signflow@example.se")
            if utf8:
                mailer.send(mail)
            else:
                with pytest.raises(smtplib.SMTPNotSupportedError):
                    mailer.send(mail)
        finally:
            controller.stop()
    [msg] = received
    assert msg["X-RcptTo"] == "åsa@exempel.se"


def test_one_connection_carries_mail_after_mail_and_a_lost_one_is_replaced(monkeypatch):
    """A thread's mails share its connection (a RSET between them, not a TLS
    handshake and four round trips each); a connection the server dropped, or one
    idle past IDLE seconds, is replaced and the mail still goes, once."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from signflow.adapters.mail import SmtpMailer
    from signflow.core.ports import Mail

    received: list[tuple[str, tuple]] = []

    class Collect(Message):
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos[0], session.peer))
            return await super().handle_DATA(server, session, envelope)

        def handle_message(self, message):
            pass

    port = free_port()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "signflow@example.se")

    def send(n: int) -> None:
        mailer.send(Mail(to=f"m{n}@example.se", subject="Hej", body="Hej!"))

    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for n in range(3):
            send(n)
        assert len({peer for _, peer in received}) == 1
        controller.stop()  # the server goes away with our connection, and comes back
        controller = Controller(Collect(), hostname="127.0.0.1", port=port)
        controller.start()
        send(3)
        monkeypatch.setattr(SmtpMailer, "IDLE", 0.0)  # from now on every connection is stale
        send(4)
    finally:
        controller.stop()
    assert [to for to, _ in received] == [f"m{n}@example.se" for n in range(5)]
    peers = [peer for _, peer in received]
    assert len(set(peers)) == 3 and peers[3] != peers[4]


def test_encoded_attachments_kept_are_few_and_small(monkeypatch):
    """The base64 kept for the next mail is bounded in files and in bytes: a
    large protocol is encoded anew for each mail rather than held."""
    from signflow.adapters import mail

    monkeypatch.setattr(mail, "_encoded", [])
    monkeypatch.setattr(mail, "_KEEP_ENCODED", (2, 100))
    for data in (b"a" * 40, b"b" * 40, b"c" * 40):
        assert base64.b64decode(mail._base64_lines(data).replace(b"\r\n", b"")) == data
    assert [known for known, _ in mail._encoded] == [b"c" * 40, b"b" * 40]
    mail._base64_lines(b"d" * 70)  # it and the newest before it would be 110 bytes
    assert [known for known, _ in mail._encoded] == [b"d" * 70]
    mail._base64_lines(b"e" * 101)
    assert mail._encoded == []
