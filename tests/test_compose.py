"""``docker compose up`` rehearsed without Docker, from the files themselves.

tests/test_compose_docker.py runs docker-compose.yml on a real engine where one
can run (as root, with apt).  Where none can, this module still reads it as
compose does and starts its services as compose would, as local processes, so
that drift between compose, the Dockerfile, .env.example and the code fails:

* compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` with
  .env.example as the ``.env`` (plus a generated ``SIGNFLOW_SECRET_KEY``, which
  it leaves empty), YAML anchors and merge keys;
* the shape: ``depends_on`` and its conditions, restart policies, Redis's
  append-only file;
* each service built from the project (``build: .``) run with its ``command``
  or the Dockerfile's ``CMD``, the Dockerfile's ``ENV`` then the service's
  ``environment``, in the Dockerfile's ``WORKDIR`` holding what its ``COPY``
  lines copy, with its volumes owned and moded as the Dockerfile leaves
  ``/data`` and ``/keys``, and, when the test runs as root, as the Dockerfile's
  ``USER`` (uid 10001); started in ``depends_on`` order, each condition met the
  way compose checks it (``service_healthy``: the service's own healthcheck),
  the one-shot ``migrate`` run twice (compose runs it on every ``up``);
* PostgreSQL, Redis and Mailpit by stand-ins: a cluster of our own with
  compose's role, password and database, ``redis-server`` with compose's
  ``command``, an SMTP sink where Mailpit listens;
* then a round, three signers through the BankID simulator the staging
  settings allow, the signed PDF, the mail, the logs, and ``docker compose
  stop`` (each service's stop signal, compose's ten-second grace period).

What it cannot rehearse: the images (``python:3.11-slim`` and ``pip install
'.[prod]'``: signflow runs from this checkout's venv, installed editable),
Docker's networking (service names become 127.0.0.1 on free ports; a URL is
rewritten only where its port is the one the container listens on, so a wrong
port still fails), the volumes' persistence across re-created containers (they
are temp dirs living as long as this module), restart policies in action,
healthcheck timing (interval, retries, start_period), and Mailpit itself.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from fault_services import ROOT, Postgres, Process, SmtpSink, free_port, missing_tools
from fault_stack import Api, assert_signed_once_each, launch, sign, wait_until

COMPOSE, DOTENV, DOCKERFILE = (ROOT / "docker-compose.yml", ROOT / ".env.example",
                               ROOT / "Dockerfile")
MISSING = missing_tools()
pytestmark = [
    pytest.mark.faults,  # a deployment of its own: `make test` runs it once, first pass
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason="LOUD SKIP: rehearsing docker-compose.yml "
                       "starts its own PostgreSQL and Redis, and this machine lacks "
                       + ", ".join(MISSING)),
]

#: The port each stand-in's image listens on (Mailpit: its SMTP port).
IMAGES = {"postgres": 5432, "redis": 6379, "axllent/mailpit": 1025}
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "smtp": 25,
                 "smtps": 465, "http": 80, "https": 443}
URL = re.compile(r"(?P<head>\b(?P<scheme>[a-z][a-z0-9.-]*)(?:\+[a-z0-9.-]+)?://"
                 r"(?:[^\s/@'\"]*@)?)(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?")
BIND = re.compile(r"^(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d+)$")


# -- reading the files as compose and docker do ------------------------------------------

def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as compose reads ``.env``: comments, quotes, ``export``."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        assert sep, f"{path.name}: compose refuses a line that is not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key.strip()] = value
    return values


VAR = re.compile(r"\$(?:(?P<dollar>\$)|(?P<name>[A-Za-z_]\w*)|\{(?P<braced>[A-Za-z_]\w*)"
                 r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<invalid>))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR[:]-default}``, ``${VAR[:]?error}``,
    ``${VAR[:]+alt}`` and ``$$``; the ``:`` forms also treat an empty value as unset."""
    def one(m: re.Match) -> str:
        if m["dollar"]:
            return "$"
        if m["name"]:
            return env.get(m["name"], "")
        if m["braced"] is None:
            raise ValueError(f"invalid interpolation format in {text!r}")
        name, op, arg = m["braced"], m["op"] or "", m["arg"] or ""
        if "$" in arg:
            raise ValueError(f"nested interpolation in {text!r}: teach this rehearsal")
        value = env.get(name)
        given = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if given else arg  # type: ignore[return-value]
        if op.endswith("?"):
            if not given:
                raise ValueError(f"required variable {name} is missing a value: {arg}")
            return value  # type: ignore[return-value]
        if op.endswith("+"):
            return arg if given else ""
        return value or ""
    return VAR.sub(one, text)


def interpolated(node: object, env: dict[str, str]) -> object:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value, env) for value in node]
    return node


def load_compose(path: Path, env: dict[str, str]) -> dict:
    """The compose file as compose sees it: anchors and ``<<`` merged, then interpolated."""
    return interpolated(yaml.safe_load(path.read_text()), env)  # type: ignore[return-value]


def environment(service: dict) -> dict[str, str]:
    found = service.get("environment") or {}
    if isinstance(found, list):
        found = dict(item.split("=", 1) for item in found)
    return {key: "" if value is None else str(value) for key, value in found.items()}


def depends(service: dict) -> dict[str, str]:
    found = service.get("depends_on") or {}
    if isinstance(found, list):
        return dict.fromkeys(found, "service_started")
    return {name: (how or {}).get("condition", "service_started") for name, how in found.items()}


def start_order(services: dict[str, dict]) -> list[str]:
    """The services in an order compose may start them: each after what it depends on."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on goes round in a circle: {path}"
        for dep in depends(services[name]):
            visit(dep, (*path, name))
        if name not in done:
            done.append(name)
    for name in services:
        visit(name, ())
    return done


def command(service: dict) -> list[str] | None:
    found = service.get("command")
    return shlex.split(found) if isinstance(found, str) else found


def healthcheck(service: dict) -> tuple[str, list[str]]:
    """(``CMD`` or ``CMD-SHELL``, its words) of the service's healthcheck."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return "CMD-SHELL", [test]
    return test[0], list(test[1:])


@dataclass
class Image:
    """What the Dockerfile says about the container signflow runs in."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "root"
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    @property
    def uid(self) -> int:
        if self.user.isdigit():
            return int(self.user)
        m = re.search(r"useradd [^&;|]*--uid[ =](\d+)[^&;|]*\s" + re.escape(self.user) + r"\b",
                      " ".join(self.runs))
        assert m, f"the Dockerfile's USER {self.user} has no `useradd --uid` to read it from"
        return int(m[1])

    def directory(self, path: str) -> tuple[bool, int]:
        """(owned by USER, mode) of a directory the image makes; a fresh named volume
        mounted there starts out with both."""
        runs = " ".join(self.runs)
        owned = any(path in m[1].split() for m in
                    re.finditer(r"chown \S*" + re.escape(self.user) + r"\S* ([^&;|]+)", runs))
        modes = [int(m[1], 8) for m in re.finditer(r"chmod (0?[0-7]{3}) ([^&;|]+)", runs)
                 if path in m[2].split()]
        return owned, modes[-1] if modes else 0o755


def read_dockerfile(path: Path) -> Image:
    image = Image()
    text = re.sub(r"\\\n", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ENV":
            parts = shlex.split(rest)
            if "=" in parts[0]:
                image.env.update(part.split("=", 1) for part in parts)
            else:  # the legacy ``ENV KEY value``
                image.env[parts[0]] = rest.split(None, 1)[1]
        elif word in ("CMD", "ENTRYPOINT"):
            argv = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            if word == "CMD":
                image.cmd = argv
            else:
                image.entrypoint, image.cmd = argv, []
        elif word == "WORKDIR":
            image.workdir = posixpath.join(image.workdir, rest)
        elif word == "USER":
            image.user = rest
        elif word in ("COPY", "ADD"):
            *sources, dest = shlex.split(rest)
            image.copies.append((sources, posixpath.join(image.workdir, dest)))
        elif word == "RUN":
            image.runs.append(rest)
    return image


# -- the deployment ------------------------------------------------------------------------

class Service(Process):
    """A signflow container's process: its working directory, as the image's user."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path, as_user: dict) -> None:
        super().__init__(name, argv, env, log)
        self.cwd, self.as_user = cwd, as_user

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         **self.as_user)
        return self


def out_of_reach(uid: int, *paths: Path) -> str:
    """Why *uid* cannot run *paths* (a directory on the way others may not enter)."""
    for path in paths:
        for place in [*reversed(Path(os.path.realpath(path)).parents),
                      Path(os.path.realpath(path))]:
            mode = place.stat().st_mode
            if place.is_dir() and not mode & 0o001 and place.stat().st_uid != uid:
                return f"{place} is mode {mode & 0o777:04o} (on the way to {path})"
    return ""


class Deployment:
    """docker-compose.yml's services on this machine: :meth:`up`, :meth:`close`."""

    def __init__(self, compose: Path = COMPOSE, dotenv: Path = DOTENV,
                 dockerfile: Path = DOCKERFILE, *, bin_dir: Path | None = None) -> None:
        self.dotenv = read_dotenv(dotenv)
        if not self.dotenv.get("SIGNFLOW_SECRET_KEY"):
            self.dotenv["SIGNFLOW_SECRET_KEY"] = secrets.token_hex(32)
        self.compose = load_compose(compose, self.dotenv)
        self.services: dict[str, dict] = self.compose["services"]
        self.image = read_dockerfile(dockerfile)
        self.context = dockerfile.parent
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.base = Path(tempfile.mkdtemp(prefix="signflow-compose-"))
        self.base.chmod(0o755)  # the postgres user and the image's user walk in
        self.root = self.base / "root"  # the containers' file system: /app, /data, /keys …
        self.logs = self.base / "logs"
        self.logs.mkdir()
        self.processes: dict[str, Service | Process] = {}
        self.exits: dict[str, list[subprocess.CompletedProcess]] = {}
        self.pg: Postgres | None = None
        self.smtp: SmtpSink | None = None
        self.ports: dict[str, int] = {}  # service → the free port standing in for it
        self.as_user: dict = {}
        self.not_as_user = "the test does not run as root"
        self.token = ""

    # -- the container world, mapped onto this machine ----------------------------
    def built(self, name: str) -> bool:
        return self.services[name].get("build") is not None

    def path(self, container_path: str) -> str:
        """A container path under the image's WORKDIR or a volume, in :attr:`root`."""
        mounts = [self.image.workdir] + [volume.split(":")[1] for svc in self.services.values()
                                         if svc.get("build") for volume in svc.get("volumes", [])]
        for mount in mounts:
            if container_path == mount or container_path.startswith(mount.rstrip("/") + "/"):
                return str(self.root) + container_path
        return container_path

    def endpoints(self, own: str | None) -> dict[tuple[str, int], int]:
        """(host, port) as a container *own* (or the host) sees it → our local port."""
        found: dict[tuple[str, int], int] = {}
        for name, svc in self.services.items():
            if name not in self.ports:
                continue
            if not self.built(name):
                found[name, IMAGES[svc["image"].split(":")[0]]] = self.ports[name]
            for published in svc.get("ports", []):
                outside, inside = (int(p) for p in str(published).split(":")[-2:])
                found[name, inside] = found["localhost", outside] = self.ports[name]
                if name == own:
                    for host in ("127.0.0.1", "0.0.0.0", "localhost"):
                        found[host, inside] = self.ports[name]
        return found

    def rewrite(self, text: str, own: str | None) -> str:
        """URLs (and ``host:port`` binds) to a service, pointed at its stand-in's port."""
        table = self.endpoints(own)

        def url(m: re.Match) -> str:
            port = int(m["port"]) if m["port"] else DEFAULT_PORTS.get(m["scheme"], 0)
            local = table.get((m["host"], port))
            return f"{m['head']}127.0.0.1:{local}" if local else m[0]

        bind = BIND.match(text)
        if bind and (bind["host"], int(bind["port"])) in table:
            return f"127.0.0.1:{table[bind['host'], int(bind['port'])]}"
        return URL.sub(url, text)

    def argv(self, name: str) -> list[str]:
        svc = self.services[name]
        words = self.image.entrypoint + (command(svc) or self.image.cmd)
        return [self.path(self.rewrite(word, name)) for word in words]

    def env(self, name: str) -> dict[str, str]:
        env = {"PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOSTNAME": name,
               "HOME": str(self.home)}
        svc = self.services[name]
        for key, value in {**self.image.env, **self.env_files(svc), **environment(svc)}.items():
            env[key] = self.path(self.rewrite(value, name))
        return env

    def env_files(self, service: dict) -> dict[str, str]:
        """What the service's ``env_file`` gives, in order (here only the ``.env`` the
        rehearsal reads: compose's own file beside docker-compose.yml)."""
        named = service.get("env_file") or []
        found: dict[str, str] = {}
        for entry in [named] if isinstance(named, str) else named:
            path = entry if isinstance(entry, str) else entry["path"]
            assert path == ".env", f"the rehearsal reads only .env, not {path}"
            found.update(self.dotenv)
        return found

    @property
    def home(self) -> Path:
        return self.root / "home" / self.image.user

    @property
    def url(self) -> str:
        web = next(n for n, s in self.services.items() if s.get("build") and s.get("ports"))
        return f"http://127.0.0.1:{self.ports[web]}"

    def run(self, name: str, argv: list[str], timeout: float = 120) -> \
            subprocess.CompletedProcess:
        """*argv* in a fresh container of service *name* (``docker compose run``)."""
        return subprocess.run(argv, env=self.env(name), cwd=self.path(self.image.workdir),
                              capture_output=True, text=True, timeout=timeout, **self.as_user)

    # -- building the image's file system ---------------------------------------------
    def build(self) -> None:
        """WORKDIR with what COPY copies; each volume as the image leaves its mount point."""
        for sources, dest in self.image.copies:
            for source in sources:
                src = self.context / source
                target = Path(self.path(dest))
                if dest.endswith("/") or len(sources) > 1:
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(src, target)
        uid = self.image.uid
        self.home.mkdir(parents=True)
        mounts = {volume.split(":")[1] for name, svc in self.services.items()
                  if self.built(name) for volume in svc.get("volumes", [])}
        for mount in mounts:
            owned, mode = self.image.directory(mount)
            place = Path(self.path(mount))
            place.mkdir(parents=True, exist_ok=True)
            place.chmod(mode)
            if os.geteuid() == 0:
                os.chown(place, uid if owned else 0, uid if owned else 0)
        if os.geteuid() == 0:
            os.chown(self.home, uid, uid)
            self.as_user = {"user": uid, "group": uid, "extra_groups": []}
            try:
                probe = subprocess.run(
                    [str(self.bin_dir / "python"), "-c", "import signflow, gunicorn"],
                    cwd=self.path(self.image.workdir), capture_output=True, text=True,
                    env={"HOME": str(self.home)}, **self.as_user)
                failed = probe.stderr[-300:] if probe.returncode else ""
            except OSError as exc:
                failed = str(exc)
            if not failed:
                self.not_as_user = ""
            else:
                self.as_user = {}
                self.not_as_user = (
                    f"uid {uid} cannot run this venv: "
                    f"{out_of_reach(uid, self.bin_dir / 'python') or failed}; "
                    "the services run as root instead, so what running as the Dockerfile's "
                    "USER shows (nothing needs root, nothing is written outside the volumes) "
                    "is not rehearsed on this machine")

    # -- the stand-ins for the images we cannot run ------------------------------------
    def start_standin(self, name: str) -> None:
        svc = self.services[name]
        kind = svc["image"].split(":")[0]
        self.ports[name] = port = free_port()
        if kind == "postgres":
            self.start_postgres(svc, port)
        elif kind == "redis":
            self.processes[name] = Process(name, [
                shutil.which(command(svc)[0]) or command(svc)[0], *command(svc)[1:],
                "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(self.base / "redisdata")], dict(os.environ),
                self.logs / f"{name}.log")
            (self.base / "redisdata").mkdir()
            self.processes[name].start()
        elif kind == "axllent/mailpit":
            self.smtp = SmtpSink(port)
            self.smtp.up()
        else:
            raise AssertionError(f"no stand-in for {name}'s image {svc['image']}: teach "
                                 "tests/test_compose.py one")

    def start_postgres(self, svc: dict, port: int) -> None:
        """A cluster of ours, then what the postgres image makes of POSTGRES_*: the
        superuser with its password, its database, passwords from other containers."""
        import psycopg
        from psycopg import sql

        env = environment(svc)
        user, password = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]
        self.pg = Postgres(self.base, port)
        self.pg.init()
        with psycopg.connect(host="127.0.0.1", port=port, user="signflow", dbname="postgres",
                             autocommit=True) as conn:
            known = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            conn.execute(sql.SQL("{} ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(
                sql.SQL("ALTER" if known else "CREATE"), sql.Identifier(user),
                sql.Literal(password)))
            database = env.get("POSTGRES_DB", user)
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(user)))
            (self.pg.data / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
            conn.execute("SELECT pg_reload_conf()")

    def healthy(self, name: str) -> bool:
        """The service's own healthcheck, run where it would run, exit 0."""
        svc = self.services[name]
        form, words = healthcheck(svc)
        argv = ["sh", "-c", words[0]] if form == "CMD-SHELL" else words
        if self.built(name):
            return self.run(name, [self.rewrite(w, name) for w in argv], 30).returncode == 0
        kind = svc["image"].split(":")[0]
        env = dict(os.environ)
        if kind == "axllent/mailpit":
            return self.smtp is not None and self.smtp.mode == "up"  # no /mailpit here
        if kind == "postgres":  # inside its container: the server's own socket
            assert self.pg is not None
            env.update(PGHOST=str(self.pg.dir), PGPORT=str(self.pg.port))
        if kind == "redis":
            argv = [argv[0], "-p", str(self.ports[name]), *argv[1:]]
        return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode == 0

    # -- up and down -----------------------------------------------------------------------
    def wait_for(self, name: str, dep: str, condition: str) -> None:
        what = f"{name} waits for {dep} ({condition})"
        if condition == "service_completed_successfully":
            done = self.exits[dep][-1]
            assert done.returncode == 0, f"{what}: exit {done.returncode}\n{done.stdout}" \
                                         f"{done.stderr}"
        elif condition == "service_healthy":
            proc = self.processes.get(dep)

            def state() -> str:
                if proc is not None and not proc.alive():
                    return "exited"
                return "healthy" if self.healthy(dep) else ""
            try:
                found = wait_until(state, 90, what, every=0.5)
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}; its log ends:\n{self.tail(dep)}") from None
            assert found == "healthy", f"{what}: {dep} exited:\n{self.tail(dep)}"
        else:
            assert dep in self.ports or dep in self.processes or dep in self.exits, what

    def one_shot(self, name: str) -> subprocess.CompletedProcess:
        done = self.run(name, self.argv(name))
        self.exits.setdefault(name, []).append(done)
        with open(self.logs / f"{name}.log", "a") as log:
            log.write(done.stdout + done.stderr)
        return done

    def up(self) -> Deployment:
        try:
            self.build()
            for name in start_order(self.services):
                for dep, condition in depends(self.services[name]).items():
                    self.wait_for(name, dep, condition)
                svc = self.services[name]
                if not self.built(name):
                    self.start_standin(name)
                elif svc.get("restart") == "no":
                    self.one_shot(name)
                else:
                    if svc.get("ports"):
                        self.ports[name] = free_port()
                    self.processes[name] = Service(
                        name, self.argv(name), self.env(name), self.logs / f"{name}.log",
                        Path(self.path(self.image.workdir)), self.as_user).start()
            for name, svc in self.services.items():  # nobody waits on web's health but us
                if self.built(name) and "healthcheck" in svc:
                    self.wait_for("the test", name, "service_healthy")
            web = next(n for n, s in self.services.items() if s.get("build") and s.get("ports"))
            added = self.run(web, ["signflow", "users", "add", "sekretariatet@example.se",
                                   "--role", "secretariat", "--organisation",
                                   "Familjen Helsingborg"])
            assert added.returncode == 0, added.stderr
            self.token = added.stdout.strip().splitlines()[-1]
            assert not self.exited(), self.exited()
        except BaseException:
            self.close()
            raise
        return self

    def tail(self, name: str) -> str:
        proc = self.processes.get(name)
        return proc.tail() if proc is not None else ""

    def exited(self) -> str:
        """Long-running services that exited (compose would restart them, over and over)."""
        return "".join(f"{name} exited with {proc.proc.returncode}:\n{proc.tail(15)}\n"
                       for name, proc in self.processes.items()
                       if proc.proc is not None and not proc.alive())

    def signflow(self) -> dict[str, Service]:
        return {n: p for n, p in self.processes.items() if isinstance(p, Service)}

    def api(self) -> Api:  # what fault_stack's launch() and sign() ask a stack for
        return Api(self.url, self.token)

    def close(self) -> None:
        for proc in reversed(self.processes.values()):
            proc.stop(timeout=5)
        if self.smtp is not None:
            self.smtp.down()
        if self.pg is not None:
            self.pg.close()
        if os.environ.get("SIGNFLOW_COMPOSE_KEEP", "") in ("", "0"):
            shutil.rmtree(self.base, ignore_errors=True)


# -- the tests ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployment():
    started = time.monotonic()
    stack = Deployment().up()
    print(f"docker compose up, rehearsed: {time.monotonic() - started:.1f} s; "
          f"logs in {stack.logs}")
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def signed_round(deployment):
    """A round of three signers, each signing through the BankID simulator in web."""
    from signflow.pdf.pages import sample_protocol

    flight = launch(deployment, "compose", sample_protocol())
    sign(deployment, flight, 0, 1, 2)
    api = deployment.api()
    try:
        wait_until(lambda: api.round(flight.round_id)["status"] == "completed", 60,
                   f"round {flight.round_id} never completed", every=0.5)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; the worker's log ends:\n{deployment.tail('worker')}") \
            from None
    return flight


def test_compose_refuses_to_start_while_the_env_example_leaves_the_secret_key_empty():
    with pytest.raises(ValueError, match="required variable SIGNFLOW_SECRET_KEY"):
        load_compose(COMPOSE, read_dotenv(DOTENV))


def test_the_compose_file_holds_together():
    services = load_compose(COMPOSE, {**read_dotenv(DOTENV), "SIGNFLOW_SECRET_KEY": "x"})[
        "services"]
    image = read_dockerfile(DOCKERFILE)
    for name, svc in services.items():
        for dep, condition in depends(svc).items():
            assert dep in services, f"{name} depends on {dep}, which is no service"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
            if condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} would restart forever"
        if svc.get("build") and svc.get("restart") != "no":
            assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name
        for key, value in environment(svc).items():
            assert isinstance(value, str), f"{name}: {key} is not a string"
        if svc.get("build"):
            # every setting of .env reaches signflow, not only those listed (an HSM's, OIDC's)
            assert svc.get("env_file") == ".env", f"{name} does not read .env"
            mounts = [volume.split(":")[1] for volume in svc.get("volumes", [])]
            for key in ("SIGNFLOW_DATA_DIR", "SIGNFLOW_KEYS_DIR"):
                where = {**image.env, **environment(svc)}[key]
                assert any(where.startswith(m) for m in mounts), f"{name}: {key} on no volume"
    redis = command(next(s for s in services.values() if s.get("image", "").startswith("redis")))
    assert "--appendonly yes" in " ".join(redis or []), f"redis runs {redis}: no AOF"
    start_order(services)  # no circle


def test_a_dotenv_without_the_demo_lines_allows_no_stand_in():
    """Fail closed: an .env written from scratch, or with the demo's lines left out
    or blanked, allows no development stand-in and names no mail server (signflow
    then refuses to start), and publishes nothing beyond this host."""
    demo = ("SIGNFLOW_ALLOW_DEV_", "SIGNFLOW_SMTP_URL", "PUBLISH_ADDRESS")
    for blank in (False, True):
        env = {k: ("" if blank and k.startswith(demo) else v)
               for k, v in read_dotenv(DOTENV).items() if blank or not k.startswith(demo)}
        services = load_compose(COMPOSE, {**env, "SIGNFLOW_SECRET_KEY": "x"})["services"]
        for name, svc in services.items():
            if svc.get("build"):
                settings = environment(svc)
                assert {k: v for k, v in settings.items() if k.startswith(demo)} == {
                    "SIGNFLOW_ALLOW_DEV_BANKID": "false", "SIGNFLOW_ALLOW_DEV_TSA": "false",
                    "SIGNFLOW_ALLOW_DEV_SEAL": "false", "SIGNFLOW_ALLOW_DEV_SMTP": "false",
                    "SIGNFLOW_SMTP_URL": ""}, name
            for published in svc.get("ports", []):
                assert str(published).startswith("127.0.0.1:"), (name, published)


def test_migrate_exits_0_and_again_on_the_next_up(deployment):
    first = deployment.exits["migrate"][0]
    assert first.returncode == 0, first.stderr
    again = deployment.one_shot("migrate")
    assert again.returncode == 0, f"{again.stdout}{again.stderr}"


def test_redis_keeps_its_append_only_file(deployment):
    from redis import Redis

    assert Redis(port=deployment.ports["redis"]).config_get("appendonly") == {
        "appendonly": "yes"}


def test_the_web_healthcheck_passes_and_readyz_says_ready(deployment):
    assert deployment.healthy("web")
    ready = requests.get(f"{deployment.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def test_three_signers_complete_a_round_on_the_deployed_services(deployment, signed_round):
    assert_signed_once_each(deployment.api(), deployment.smtp, signed_round)
    assert not deployment.exited(), deployment.exited()


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_every_service_logs_json_lines_gunicorn_s_own_too(deployment, signed_round):
    """Compose asks for JSON logs; gunicorn's own lines (its start, workers booting,
    exiting, timing out) were text in web's stream until gunicorn.conf.py."""
    for name, proc in deployment.signflow().items():
        lines = [line for line in proc.log.read_text().splitlines() if line.strip()]
        assert lines, f"{name} logged nothing"
        bad = [line[:300] for line in lines if not is_json_object(line)]
        assert not bad, f"{name} logged lines that are no JSON object:\n" + "\n".join(bad)
    web = deployment.signflow()["web"].log.read_text()
    assert '"logger": "gunicorn.error"' in web  # gunicorn spoke, in JSON


def test_the_services_run_as_the_dockerfiles_user_and_write_only_to_their_volumes(
        deployment, signed_round):
    if deployment.not_as_user:
        pytest.skip(f"LOUD SKIP: {deployment.not_as_user}")
    uid = deployment.image.uid
    for name, proc in deployment.signflow().items():
        for pid in (proc.pid, *proc.descendants()):
            status = Path(f"/proc/{pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{uid}\s", status, re.MULTILINE), (name, pid)
    for mount in ("/data", "/keys"):
        place = Path(deployment.path(mount))
        by_root = [str(p) for p in (place, *place.rglob("*")) if p.lstat().st_uid == 0]
        assert not by_root, f"owned by root in {mount}: {by_root}"
    files = [str(p) for p in deployment.home.rglob("*") if p.is_file()]  # not sockets
    assert not files, f"written outside the volumes, in HOME: {files}"


def test_compose_stop_ends_every_service_within_its_grace_period(deployment):
    for name, proc in reversed(deployment.processes.items()):
        svc = deployment.services[name]
        sig = getattr(signal, svc.get("stop_signal", "SIGTERM"))
        os.kill(proc.pid, sig)  # docker signals the container's first process only
        try:
            proc.proc.wait(10)  # compose's stop_grace_period
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still runs 10 s after {sig.name}:\n{proc.tail()}")
