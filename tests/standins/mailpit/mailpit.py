#!/usr/bin/python3
"""A stand-in for Mailpit where its image cannot be pulled.

    /mailpit            SMTP on :1025, the messages over HTTP on :8025
    /mailpit readyz     exit 0 when the HTTP side answers (the compose healthcheck)

Keeps every message in memory and answers the part of Mailpit's API that
tests/test_compose_docker.py reads, in Mailpit's shapes: ``GET /readyz``,
``GET /api/v1/messages`` (newest first) and ``GET /api/v1/message/<ID>``.
"""

import email
import email.policy
import json
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES: list[dict] = []
LOCK = threading.Lock()


def address(pair) -> dict:
    return {"Name": pair.display_name or "", "Address": pair.addr_spec}


def summary(msg: dict) -> dict:
    return {k: msg[k] for k in ("ID", "From", "To", "Subject", "Created", "Size")}


class Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        sender = parsed["From"].addresses[0] if parsed["From"] else None
        with LOCK:
            MESSAGES.insert(0, {
                "ID": uuid.uuid4().hex, "Subject": str(parsed["Subject"] or ""),
                "From": address(sender) if sender else {"Name": "", "Address": ""},
                "To": [{"Name": "", "Address": rcpt} for rcpt in envelope.rcpt_tos],
                "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Size": len(raw),
                "Text": text.get_content() if text is not None else "",
                "HTML": html.get_content() if html is not None else "",
                "Attachments": [{"FileName": part.get_filename() or "",
                                 "ContentType": part.get_content_type()}
                                for part in parsed.iter_attachments()],
            })
        return "250 OK"


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server
        path = self.path.split("?", 1)[0]
        with LOCK:
            messages = list(MESSAGES)
        if path in ("/readyz", "/livez"):
            self.answer(200, b"ok")
        elif path == "/api/v1/messages":
            self.answer(200, {"total": len(messages), "count": len(messages),
                              "messages": [summary(m) for m in messages]})
        elif path.startswith("/api/v1/message/"):
            found = [m for m in messages if m["ID"] == path.rsplit("/", 1)[1]]
            self.answer(200, found[0]) if found else self.answer(404, b"message not found")
        else:
            self.answer(404, b"not found")


def main() -> int:
    if sys.argv[1:] == ["readyz"]:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8025/readyz", timeout=3):
                return 0
        except OSError:
            return 1
    from aiosmtpd.controller import Controller

    Controller(Sink(), hostname="0.0.0.0", port=1025).start()
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
