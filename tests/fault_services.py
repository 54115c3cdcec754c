"""The outside services of a fault-test deployment, each under the test's control.

:class:`Postgres` (a cluster of its own, run as the unprivileged user
``postgres`` since PostgreSQL refuses root), :class:`RedisServer`, an SMTP sink
(:class:`SmtpSink`: ``up``, ``down`` or ``hang``) and a TSA (:class:`TsaServer`:
``up``, ``down`` or slow), and :class:`Process` for the long-running signflow
processes: each in a process group of its own, killed with what it forked.
Nothing here knows pytest; :mod:`fault_stack` puts them together.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_USER = "postgres"
LINK = re.compile(r"/sign/([A-Za-z0-9_\-]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def missing_tools() -> list[str]:
    """What this machine lacks to run a stack (empty: it can)."""
    missing = [t for t in ("redis-server",) if shutil.which(t) is None]
    missing += [t for t in ("initdb", "pg_ctl") if _pg_bin(t) is None]
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        missing.append(f"the unprivileged user {PG_USER!r} (PostgreSQL will not run as root)")
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        missing.append("aiosmtpd")
    return missing


def wait_until(check: Callable[[], object], timeout: float, what: str,
               every: float = 0.1) -> object:
    """*check*'s first truthy answer; exceptions count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:  # asked at least once, however short the timeout
        try:
            answer = check()
            if answer:
                return answer
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    raise TimeoutError(f"{what} after {timeout:g} s" + (f" (last: {last!r})" if last else ""))


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


class Process:
    """A long-running child in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the process and everything it forked, also in sessions of their own
        (RQ's work horse calls ``setsid``)."""
        if self.proc is None:
            return
        for pid in self.descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL what is left of the group."""
        if self.proc is None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def children(self) -> list[int]:
        """Pids whose parent is this process (an RQ worker's work horse and scheduler)."""
        return _children(self.pid)

    def descendants(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            kids = _children(todo.pop())
            found += kids
            todo += kids
        return found

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Postgres:
    """A cluster of our own, run by ``pg_ctl`` as :data:`PG_USER` (we may be root)."""

    def __init__(self, base: Path, port: int) -> None:
        self.dir, self.port = base / "pg", port
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.url = f"postgresql+psycopg://signflow@127.0.0.1:{port}/signflow"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        as_root = os.geteuid() == 0
        return subprocess.run(list(argv), check=check, capture_output=True, text=True,
                              timeout=120, cwd=self.dir,
                              user=PG_USER if as_root else None,
                              group=PG_USER if as_root else None,
                              extra_groups=[] if as_root else None)

    def init(self) -> None:
        self.dir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, PG_USER, PG_USER)
        self._run(_pg_bin("initdb") or "initdb", "-D", str(self.data), "-U", "signflow",
                  "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                       "max_connections = 200\n")
        self.start()
        self._run(_pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "signflow", "signflow")

    def start(self) -> None:
        self._run(_pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-l", str(self.log),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: as ``docker restart`` would; ``immediate``: as a crash would."""
        self._run(_pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", mode, "-w",
                  "stop", check=False)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")


class RedisServer:
    """``redis-server`` on its own port and dir, with or without the append-only file."""

    def __init__(self, base: Path, port: int, *, aof: bool) -> None:
        self.dir, self.port, self.aof = base / "redis", port, aof
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = Process("redis", [], dict(os.environ), self.dir / "redis.log")

    def persist(self, aof: bool) -> None:
        """Switch the append-only file on or off now and for the next start."""
        from redis import Redis

        self.aof = aof
        Redis(port=self.port).config_set("appendonly", "yes" if aof else "no")

    def start(self) -> None:
        from redis import Redis

        self.process.argv = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port),
            "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
            "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec"]
        self.process.start()
        wait_until(lambda: Redis(port=self.port, socket_connect_timeout=0.5).ping(), 15,
                   "redis-server did not answer")

    def stop(self) -> None:
        """SIGTERM, as ``docker restart`` does: with AOF on, what was written is kept."""
        self.process.stop()

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@dataclass(frozen=True)
class Message:
    to: tuple[str, ...]
    subject: str
    body: str
    at: float


class SmtpSink:
    """An SMTP server in this process recording every message; ``up``, ``down``
    (connections refused) or ``hang`` (connections accepted, never answered)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Message] = []
        self.mode = "down"
        self._lock = threading.Lock()
        self._controller = None
        self._hang_socket: socket.socket | None = None
        self._held: list[socket.socket] = []

    #: What of a message is parsed: its headers and text come first, an attached
    #: signed protocol last, and parsing that (7,000 base64 lines, each a Python
    #: step) cost this process, the load bench's driver, more CPU than signflow's
    #: dispatcher spent sending it.
    HEAD = 64 << 10

    def _record(self, to: list[str], raw: bytes) -> None:
        msg = email.message_from_bytes(raw[:self.HEAD], policy=email.policy.default)
        part = msg.get_body(("plain",))
        body = part.get_content() if part is not None else ""
        with self._lock:
            self.messages.append(Message(tuple(to), str(msg["Subject"]), body, time.monotonic()))

    def up(self) -> None:
        from aiosmtpd.controller import Controller

        self._leave()
        sink = self

        class Recorder:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd
                sink._record(list(envelope.rcpt_tos), envelope.original_content
                             or envelope.content)
                return "250 OK"

        self._controller = Controller(Recorder(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        self.mode = "up"

    def down(self) -> None:
        self._leave()
        self.mode = "down"

    def hang(self) -> None:
        """Accept every connection and never say a word (a wedged relay)."""
        self._leave()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._hang_socket = listener

        def hold() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                self._held.append(conn)

        threading.Thread(target=hold, daemon=True, name="smtp-hang").start()
        self.mode = "hang"

    def _leave(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._hang_socket is not None:
            for sock in (self._hang_socket, *self._held):
                try:  # wakes the accept() blocked in the hanging thread, frees the port
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._hang_socket, self._held = None, []

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if address in m.to]

    def invitations(self, address: str) -> list[Message]:
        """Mails to *address* carrying a signing link (not the signed copy's link)."""
        return [m for m in self.to(address)
                if LINK.search(m.body) and "signed.pdf" not in m.body]

    def link(self, address: str) -> str:
        found = self.invitations(address)
        if not found:
            raise LookupError(f"no invitation to {address}")
        match = LINK.search(found[-1].body)
        assert match is not None
        return match.group(1)


class _QuietServer(ThreadingHTTPServer):
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up (a killed work horse) is what the tests do


class TsaServer:
    """RFC 3161 over HTTP with the development TSA key: ``up``, ``down``
    (connections refused) or ``slow`` (each answer waits *delay* seconds)."""

    def __init__(self, port: int, keys_dir: Path) -> None:
        self.port, self.keys_dir = port, keys_dir
        self.url = f"http://127.0.0.1:{port}/tsa"
        self.delay = 0.0
        #: Requests answered, and requests being answered now.
        self.answered = 0
        self.in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._stamper = None
        self._lock = threading.Lock()

    def up(self) -> None:
        from asn1crypto import tsp

        from signflow.pdf.keys import dev_timestamper
        from signflow.pdf.pki import load_pki

        if self._server is not None:
            return
        if self._stamper is None:
            self._stamper = dev_timestamper(load_pki(self.keys_dir))
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with tsa._lock:
                    tsa.in_flight += 1
                try:
                    time.sleep(tsa.delay)
                    if tsa._server is None:  # went down meanwhile: hang up unanswered
                        self.close_connection = True
                        return
                    answer = tsa._stamper.request_tsa_response(
                        tsp.TimeStampReq.load(body)).dump()
                finally:
                    with tsa._lock:
                        tsa.in_flight -= 1
                tsa.answered += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="tsa").start()

    def down(self) -> None:
        """Refuse connections; a request being answered is hung up on."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
