"""Mailers: SMTP for production, a browsable file outbox for development."""

from __future__ import annotations

import base64
import email.generator
import email.policy
import email.utils
import functools
import hashlib
import html
import io
import json
import logging
import re
import secrets
import smtplib
import ssl
import threading
import time
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from signflow.core.models import new_id, utcnow
from signflow.core.ports import Mail
from signflow.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)


class _Headers(HeaderRegistry):
    """The email package's header registry, making each header's class once: the
    stock one builds a new class with ``type()`` for every header it parses."""

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one registry for the process
    def __getitem__(self, name: str) -> type:
        return super().__getitem__(name)


_POLICY = email.policy.default.clone(header_factory=_Headers())


def _message(mail: Mail, sender: str) -> tuple[EmailMessage, dict[bytes, bytes]]:
    """Text and HTML parts (the HTML made from the text), then any attachments.

    Each attachment holds a short random stand-in, and the second value maps
    the stand-in's base64 line to the attachment's own base64 (CRLF lines):
    :func:`wire` splices it in.  The email package writes a part's base64
    line by line in Python, 7,000 lines for a signed protocol, and scans it
    for a boundary; four such mails a round made that most of a dispatcher's
    CPU.
    """
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain="signflow")
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    msg.set_content(mail.body)
    msg.add_alternative(html_of(mail.subject, mail.body, mail.language), subtype="html")
    spliced: dict[bytes, bytes] = {}
    for part in mail.attachments:
        maintype, _, subtype = part.content_type.partition("/")
        stand_in = secrets.token_bytes(24)  # base64: one line of 32 characters
        msg.add_attachment(stand_in, maintype=maintype, subtype=subtype,
                           filename=part.filename)
        spliced[base64.b64encode(stand_in)] = _base64_lines(part.data)
    if mail.language:  # last: set_content and add_attachment move Content-* headers inward
        msg["Content-Language"] = mail.language
    return msg, spliced


#: The last few attachments encoded, with their base64, newest first: a completed
#: round's signed protocol goes to every signer and the secretariat, mail after mail.
_encoded: list[tuple[bytes, bytes]] = []
_KEEP_ENCODED = 4, 16 << 20  # at most so many files, so many bytes of them together


def _base64_lines(data: bytes) -> bytes:
    """*data* in base64, lines of 76 characters joined by CRLF (RFC 2045)."""
    kept = list(_encoded)  # another thread may be replacing it
    for known, lines in kept:
        if known == data:
            return lines
    encoded = base64.b64encode(data)
    lines = b"\r\n".join([encoded[i:i + 76] for i in range(0, len(encoded), 76)])
    most, room = _KEEP_ENCODED
    newest = []
    for entry in [(data, lines), *kept][:most]:
        room -= len(entry[0])
        if room < 0:
            break
        newest.append(entry)
    _encoded[:] = newest
    return lines


def wire(msg: EmailMessage, spliced: dict[bytes, bytes], *, utf8: bool = False) -> bytes:
    """The message as it goes over SMTP: CRLF lines, attachments spliced in (a
    base64 line never begins with a dot, so none needs SMTP's dot-stuffing)."""
    out = io.BytesIO()
    policy = _POLICY.clone(utf8=True) if utf8 else None
    email.generator.BytesGenerator(out, policy=policy).flatten(msg, linesep="\r\n")
    flat = out.getvalue()
    for stand_in, data in spliced.items():
        head, found, tail = flat.partition(stand_in)
        if not found:
            raise RuntimeError("an attachment's place in the message was not found")
        flat = head + data + tail
    return flat


_URL = re.compile(r"https?://[^\s<>\"]+")


def html_of(subject: str, text: str, language: str = "") -> str:
    """The text as a plain HTML page: paragraphs kept, addresses as links."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        lines = []
        for line in block.split("\n"):
            pieces, last = [], 0
            for m in _URL.finditer(line):
                pieces.append(html.escape(line[last:m.start()]))
                url = html.escape(m.group(0))
                pieces.append(f'<a href="{url}">{url}</a>')
                last = m.end()
            pieces.append(html.escape(line[last:]))
            lines.append("".join(pieces))
        paragraphs.append("<p>" + "<br>\n".join(lines) + "</p>")
    lang = f' lang="{html.escape(language)}"' if language else ""
    return (f"<!doctype html>\n<html{lang}><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(subject)}</title></head>\n"
            "<body style=\"font-family: sans-serif; line-height: 1.5; max-width: 40em\">\n"
            + "\n".join(paragraphs) + "\n</body></html>\n")


class OutboxMailer:
    """Writes each mail as JSON into ``<data_dir>/outbox``; shown at ``/dev/outbox``."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, mail: Mail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"from": self.sender, "to": mail.to, "subject": mail.subject,
                  "body": mail.body, "at": utcnow().isoformat(),
                  "reply_to": mail.reply_to, "language": mail.language,
                  "attachments": [{"filename": a.filename, "content_type": a.content_type,
                                   "size": len(a.data),
                                   "sha256": hashlib.sha256(a.data).hexdigest()}
                                  for a in mail.attachments]}
        name = f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{new_id()[:8]}.json"
        tmp = self.directory / f".{name}.part"  # (not *.json until it is whole)
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.rename(self.directory / name)
        log.info("mail to outbox: %s", mail.subject)

    def messages(self) -> list[dict[str, str]]:
        if not self.directory.exists():
            return []
        return [json.loads(p.read_text(encoding="utf-8"))
                for p in sorted(self.directory.glob("*.json"))]


class _Smtp(smtplib.SMTP):
    """smtplib's ``DATA``, its dot-stuffing done with :meth:`bytes.replace`.

    smtplib doubles a line's leading dot with a multi-line regular expression,
    4 ms for a message carrying a 400 KB protocol, more than the rest of its
    sending.  On bytes that is exactly what replacing ``\\n.`` with ``\\n..``
    does, with the first line checked apart.
    """

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if not isinstance(msg, bytes):  # not how SmtpMailer sends: smtplib's own way
            return super().data(msg)
        code, reply = self.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        quoted = msg.replace(b"\n.", b"\n..")
        if quoted.startswith(b"."):
            quoted = b"." + quoted
        if not quoted.endswith(b"\r\n"):
            quoted += b"\r\n"
        self.send(quoted + b".\r\n")
        return self.getreply()


class _SmtpSsl(_Smtp, smtplib.SMTP_SSL):
    pass


class SmtpMailer:
    """Sends through ``smtp://[user:pass@]host:port`` (STARTTLS when offered) or ``smtps://``.

    Each thread keeps its connection for the next mail (the dispatcher sends a
    round's mails one after another): a new one costs a TLS handshake and four
    round trips, a kept one a ``RSET``.  One unused for :attr:`IDLE` seconds,
    or that fails in any way, is closed and never used again.
    """

    #: Seconds a kept connection is trusted to be open (servers end idle ones,
    #: RFC 5321 after five minutes, some far sooner).
    IDLE = 30.0

    def __init__(self, url: str, sender: str, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("SIGNFLOW_SMTP_URL must look like smtp://host:port or smtps://…")
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout
        self._kept = threading.local()

    @functools.cached_property
    def tls_context(self) -> ssl.SSLContext:
        """Made once, when TLS is first used: it reads the system's CA certificates,
        tens of milliseconds of CPU that every mail used to pay for."""
        return ssl.create_default_context()

    def _open(self) -> smtplib.SMTP:
        if self.tls:
            smtp: smtplib.SMTP = _SmtpSsl(self.host, self.port, timeout=self.timeout,
                                          context=self.tls_context)
        else:
            smtp = _Smtp(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()  # the server's extensions are known only after EHLO
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=self.tls_context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connection(self) -> smtplib.SMTP:
        """This thread's kept connection if it was used lately and answers ``RSET``;
        else a new one."""
        smtp: smtplib.SMTP | None = getattr(self._kept, "smtp", None)
        self._kept.smtp = None
        if smtp is not None:
            if time.monotonic() - self._kept.used < self.IDLE and smtp.sock is not None:
                try:  # a server that takes seconds to answer RSET is not kept waiting on
                    smtp.sock.settimeout(min(self.timeout, 5.0))
                    if smtp.rset()[0] == 250:
                        smtp.sock.settimeout(self.timeout)
                        return smtp
                except (smtplib.SMTPException, OSError):
                    pass
            smtp.close()
        return self._open()

    def send(self, mail: Mail) -> None:
        msg, spliced = _message(mail, self.sender)
        sender = email.utils.parseaddr(self.sender)[1]
        recipients = [addr for _, addr in email.utils.getaddresses([mail.to])]
        international = not all(a.isascii() for a in (sender, *recipients))
        smtp = self._connection()
        try:
            options: tuple[str, ...] = ()
            if international:  # as smtplib's send_message does it
                if not smtp.has_extn("smtputf8"):
                    raise smtplib.SMTPNotSupportedError(
                        "an address is not ASCII and the server lacks SMTPUTF8")
                options = ("SMTPUTF8", "BODY=8BITMIME")
            smtp.sendmail(sender, recipients, wire(msg, spliced, utf8=international), options)
        except BaseException:
            smtp.close()  # whatever state it is in, it is not used again
            raise
        self._kept.smtp, self._kept.used = smtp, time.monotonic()
        log.info("mail sent via SMTP: %s", mail.subject)
