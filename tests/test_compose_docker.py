"""docker-compose.yml on a real Docker engine: built, started, used, broken, re-created.

tests/test_compose.py rehearses the compose file with local processes; this
module runs it as an operator does, wherever a Docker engine answers
(``make test`` installs and starts one where it may: ``make docker-engine``):

* ``docker compose up -d --build`` (or the older ``docker-compose``) in a copy
  of this checkout's tracked files with ``.env.example`` as ``.env`` plus a
  secret key and free host ports: the image built from the Dockerfile with
  ``pip install '.[prod]'``, every service started in ``depends_on`` order,
  the healthchecks passing;
* a round: the secretariat's user made with ``signflow users add`` in the web
  container, three signers invited by mail (read from Mailpit's API) and
  signing on the BankID simulator the staging settings allow, the signed PDF
  with one signature per signer, the audit chain intact;
* the services run as the Dockerfile's user; no container collects zombies;
* faults as Docker makes them: a worker killed (its restart policy brings it
  back), Redis restarted while signature jobs wait for a stopped worker (the
  append-only file keeps them);
* the README's backup, ``down -v`` and its restore: the rounds, the audit
  chains, the keys and the signed PDF come back, and the next round signs;
* no signing-link token and no personal number in any container's log.

Images named by the compose file and the Dockerfile come from the local cache
or a registry.  Where no registry answers (this machine and its CI reach only
PyPI, Debian and npm), each is replaced by a stand-in built from
``tests/standins/<name>`` on Debian bookworm (``debootstrap``; it trusts the CAs
this machine trusts, so that ``pip install`` passes the machine's proxy) and
labelled ``org.signflow.standin``: Python 3.11.2, PostgreSQL 15 with the
official image's first-start settings, Redis 7.0, and a Mailpit answering the
part of its API read here.  The test says which it used.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from fault_services import LINK, ROOT, free_port, wait_until
from fault_stack import PEOPLE, Api, assert_signed_once_each, launch, sign

STANDINS = ROOT / "tests" / "standins"
BASE_IMAGE = "signflow-standin/debian:bookworm"
LABEL = "org.signflow.standin"
PROJECT = f"signflow-test-{secrets.token_hex(3)}"


def _run(argv: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def engine_problem() -> str:
    """Why no Docker engine can be used here ('' when one can)."""
    if shutil.which("docker") is None:
        return "no docker command (make docker-engine installs Debian's docker.io as root)"
    try:
        info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0 or not info.stdout.strip():
        return ("no Docker engine answers (`docker info`: "
                f"{(info.stderr or info.stdout).strip()[:200]}); make docker-engine starts one")
    if compose_cli() is None:
        return "neither `docker compose` nor `docker-compose` is installed"
    return ""


def compose_cli() -> list[str] | None:
    try:
        if _run(["docker", "compose", "version"], timeout=20).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ["docker-compose"] if shutil.which("docker-compose") else None


PROBLEM = engine_problem()
pytestmark = [
    pytest.mark.docker,  # its own pass in make test, after the others (tests/passes.py)
    pytest.mark.slow,
    pytest.mark.skipif(bool(PROBLEM), reason=f"LOUD SKIP: docker-compose.yml on a real "
                       f"engine cannot run here: {PROBLEM}"),
]


# -- the images ---------------------------------------------------------------------------

def public_images() -> list[str]:
    """The images docker-compose.yml and the Dockerfile name that are not built here."""
    names = re.findall(r"^\s+image:\s*(\S+)", (ROOT / "docker-compose.yml").read_text(), re.M)
    names += re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    return [n for n in dict.fromkeys(names) if not n.startswith("signflow:")]


def standin_dir(image: str) -> Path:
    """tests/standins/<the image's last path part, without its tag>."""
    return STANDINS / image.rsplit("/", 1)[-1].split(":", 1)[0]


def has_image(name: str) -> bool:
    return _run(["docker", "image", "inspect", name]).returncode == 0


def is_standin(name: str) -> bool:
    found = _run(["docker", "image", "inspect", "--format",
                  f'{{{{index .Config.Labels "{LABEL}"}}}}', name])
    return found.returncode == 0 and found.stdout.strip() not in ("", "<no value>")


def build_base() -> None:
    """Debian bookworm by debootstrap, trusting the CAs this machine trusts."""
    if has_image(BASE_IMAGE):
        return
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("LOUD SKIP: no image registry answers and the stand-in images need "
                    "debootstrap as root (make docker-engine installs it)")
    with tempfile.TemporaryDirectory(prefix="signflow-rootfs-") as root:
        done = _run(["debootstrap", "--variant=minbase", "--include=ca-certificates",
                     "bookworm", root, "http://deb.debian.org/debian"], timeout=900)
        assert done.returncode == 0, f"debootstrap failed:\n{done.stdout[-2000:]}{done.stderr}"
        local = Path("/usr/local/share/ca-certificates")
        for cert in local.glob("*.crt") if local.is_dir() else ():
            shutil.copy(cert, Path(root) / "usr/local/share/ca-certificates" / cert.name)
        _run(["chroot", root, "update-ca-certificates"], timeout=120)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for junk in (Path(root) / cache).glob("*"):
                if junk.is_file():
                    junk.unlink()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout,
                                  capture_output=True, text=True, timeout=600)
        tar.wait()
        assert imported.returncode == 0, imported.stderr


def provide(image: str) -> str:
    """*image* in the local cache: 'local', 'pulled' or 'stand-in'."""
    if has_image(image):
        return "stand-in" if is_standin(image) else "local"
    try:
        if _run(["docker", "pull", "-q", image], timeout=300).returncode == 0:
            return "pulled"
    except subprocess.TimeoutExpired:
        pass
    context = standin_dir(image)
    assert (context / "Dockerfile").is_file(), \
        f"{image} cannot be pulled here and tests/standins has no stand-in for it"
    build_base()
    built = _run(["docker", "build", "-q", "--label", f"{LABEL}={image}", "-t", image,
                  str(context)], timeout=900)
    assert built.returncode == 0, f"building the stand-in for {image}:\n{built.stderr[-3000:]}"
    return "stand-in"


# -- the deployment -------------------------------------------------------------------------

class Mailpit:
    """Mail as Mailpit's API shows it, in fault_stack's SmtpSink terms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._bodies: dict[str, dict] = {}

    def messages(self) -> list[dict]:
        listed = requests.get(f"{self.url}/api/v1/messages", params={"limit": 1000},
                              timeout=10).json()["messages"]
        for m in listed:
            if m["ID"] not in self._bodies:
                self._bodies[m["ID"]] = requests.get(f"{self.url}/api/v1/message/{m['ID']}",
                                                     timeout=10).json()
        return [self._bodies[m["ID"]] for m in listed]

    def to(self, address: str) -> list[dict]:
        return [m for m in self.messages()
                if any(t["Address"] == address for t in m["To"])]

    def invitations(self, address: str) -> list[dict]:
        return [m for m in self.to(address)
                if LINK.search(m["Text"]) and "signed.pdf" not in m["Text"]]

    def link(self, address: str) -> str:
        found = self.invitations(address)
        if not found:
            raise LookupError(f"no invitation to {address}")
        match = LINK.search(found[0]["Text"])  # newest first
        assert match is not None
        return match.group(1)


class Deployment:
    """The compose project in a copy of this checkout, on the engine."""

    def __init__(self) -> None:
        self.cli = compose_cli() or []
        self.dir = Path(tempfile.mkdtemp(prefix="signflow-compose-"))
        self.web_port, self.mail_port = free_port(), free_port()
        self.url = f"http://localhost:{self.web_port}"
        self.smtp = Mailpit(f"http://localhost:{self.mail_port}")
        self.token = ""
        self.images: dict[str, str] = {}

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        done = _run([*self.cli, "-p", PROJECT, *args], timeout=timeout, cwd=self.dir)
        if check:
            assert done.returncode == 0, (f"{' '.join(args)}: exit {done.returncode}\n"
                                          f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout

    def checkout(self) -> None:
        """This checkout's tracked files (a fresh clone's), .env.example as .env."""
        listed = _run(["git", "ls-files", "-z"], cwd=ROOT)
        assert listed.returncode == 0, f"git ls-files: {listed.stderr}"
        for name in filter(None, listed.stdout.split("\0")):
            if (ROOT / name).is_file():
                (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.dir / name)
        env = (ROOT / ".env.example").read_text()
        for key, value in {"SIGNFLOW_SECRET_KEY": secrets.token_hex(32),
                           "SIGNFLOW_BASE_URL": self.url,
                           "WEB_PORT": str(self.web_port),
                           "MAILPIT_PORT": str(self.mail_port)}.items():
            env, found = re.subn(rf"^#?\s*{key}=.*$", f"{key}={value}", env, flags=re.M)
            if not found:
                env += f"\n{key}={value}\n"
        (self.dir / ".env").write_text(env)

    def containers(self) -> dict[str, str]:
        """Service -> its container's id (not one-off ``run`` containers), from the
        labels compose puts on them: the docker CLI, not compose's, which costs a
        second of CPU a call in its Python form."""
        listed = _run(["docker", "ps", "-a", "--filter",
                       f"label=com.docker.compose.project={PROJECT}", "--filter",
                       "label=com.docker.compose.oneoff=False", "--format",
                       '{{.Label "com.docker.compose.service"}} {{.ID}}']).stdout
        return dict(line.split() for line in sorted(listed.splitlines()) if line.strip())

    def container(self, service: str) -> str:
        found = self.containers().get(service)
        assert found, f"no container for {service}: {self.containers()}"
        return found

    def state(self, service: str) -> dict:
        return json.loads(_run(["docker", "inspect", "--format", "{{json .State}}",
                                self.container(service)]).stdout)

    def restarts(self, service: str) -> int:
        return int(_run(["docker", "inspect", "--format", "{{.RestartCount}}",
                         self.container(service)]).stdout.strip())

    def running(self) -> dict[str, str]:
        """Service -> its container's status (and health, where it has a check)."""
        out = {}
        for service, cid in self.containers().items():
            state = json.loads(_run(["docker", "inspect", "--format", "{{json .State}}",
                                     cid]).stdout)
            health = (state.get("Health") or {}).get("Status")
            out[service] = state["Status"] + (f"/{health}" if health else "")
        return out

    def wait(self, check, timeout: float, what: str) -> None:
        """wait_until, the services' states added to the message when it times out."""
        try:
            wait_until(check, timeout, what, every=1.0)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; services: {self.running()}") from None

    def wait_healthy(self, service: str, timeout: float = 180) -> None:
        self.wait(lambda: (self.state(service).get("Health") or {}).get("Status") == "healthy",
                  timeout, f"{service} never became healthy")

    def exec(self, service: str, *argv: str, timeout: float = 120) -> str:
        """*argv* in the service's running container (``docker exec``)."""
        done = _run(["docker", "exec", self.container(service), *argv], timeout=timeout)
        assert done.returncode == 0, f"{service}: {argv}: {done.stderr[-2000:]}"
        return done.stdout

    def piped(self, *args: str, into: Path | None = None, source: Path | None = None,
              timeout: float = 300) -> None:
        """``compose *args*`` with its output into a file or its input from one
        (bytes, as the README's backup and restore lines pipe them)."""
        with (into.open("wb") if into else source.open("rb")) as file:  # type: ignore[union-attr]
            done = subprocess.run([*self.cli, "-p", PROJECT, *args], cwd=self.dir,
                                  timeout=timeout, stderr=subprocess.PIPE,
                                  **({"stdout": file} if into else {"stdin": file,
                                                                     "stdout": subprocess.PIPE}))
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.decode()[-2000:]}"

    def up(self) -> Deployment:
        for image in public_images():
            self.images[image] = provide(image)
        self.checkout()
        self.compose("up", "-d", "--build", timeout=1500)
        self.wait_healthy("web")
        out = self.compose("exec", "-T", "web", "signflow", "users", "add",
                           "sekretariatet@example.se", "--role", "secretariat",
                           "--organisation", "Familjen Helsingborg")
        self.token = out.strip().splitlines()[-1]
        return self

    def api(self) -> Api:  # what fault_stack's launch() and sign() ask of a stack
        return Api(self.url, self.token, patience=60)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", timeout=120)

    def close(self) -> None:
        if os.environ.get("SIGNFLOW_COMPOSE_KEEP", "") in ("", "0"):
            self.compose("down", "-v", "--remove-orphans", timeout=300, check=False)
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"kept: {self.dir} (project {PROJECT})")


@pytest.fixture(scope="module")
def deployment():
    began = time.monotonic()
    stack = Deployment()
    try:
        stack.up()
    except BaseException:
        print(stack.compose("logs", "--no-color", "--tail", "40", check=False))
        stack.close()
        raise
    print(f"docker compose up on a real engine ({' '.join(stack.cli)}): "
          f"{time.monotonic() - began:.0f} s; images: {stack.images}")
    try:
        yield stack
    finally:
        stack.close()


def complete(stack: Deployment, tag: str, pdf: bytes, timeout: float = 120):
    flight = launch(stack, tag, pdf)
    sign(stack, flight, 0, 1, 2)
    api = stack.api()
    stack.wait(lambda: api.round(flight.round_id)["status"] == "completed", timeout,
               f"round {flight.round_id} never completed")
    return flight


@pytest.fixture(scope="module")
def protocol() -> bytes:
    from signflow.pdf.pages import sample_protocol

    return sample_protocol()


@pytest.fixture(scope="module")
def signed_round(deployment, protocol):
    return complete(deployment, "docker", protocol)


# -- the tests ------------------------------------------------------------------------------

def test_every_service_is_up_and_migrate_ran_once_to_success(deployment):
    states = deployment.running()
    assert states.pop("migrate") == "exited", states
    assert deployment.state("migrate")["ExitCode"] == 0
    assert states == {"db": "running/healthy", "redis": "running/healthy",
                      "mailpit": "running/healthy", "web": "running/healthy",
                      "worker": "running", "dispatcher": "running", "scheduler": "running"}
    ready = requests.get(f"{deployment.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"], ready.text
    for service, port in (("web", 8000), ("mailpit", 8025)):  # this host only
        published = _run(["docker", "port", deployment.container(service), str(port)])
        assert published.stdout.strip().startswith("127.0.0.1:"), published.stdout


def test_three_signers_complete_a_round(deployment, signed_round):
    api = deployment.api()
    assert_signed_once_each(api, deployment.smtp, signed_round)
    assert api.audit(signed_round.round_id)["intact"]


def test_the_service_verifies_its_pdf_in_its_sandbox_on_a_read_only_root(deployment,
                                                                         signed_round):
    """The verification's isolated child runs under the compose file's hardening
    (read-only root, /tmp a tmpfs, no capabilities, no new privileges)."""
    pdf = deployment.api().document(signed_round.round_id)
    resp = requests.post(f"{deployment.url}/api/v1/verify", timeout=120,
                         files={"document": ("signed.pdf", pdf, "application/pdf")})
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["valid"] is True, resp.text[:1000]


def test_the_signflow_services_run_as_the_dockerfiles_user_and_write_only_to_volumes(
        deployment, signed_round):
    """``docker diff``: what a container changed in its image, outside its volumes
    (a round has run; only the temporary directory may hold anything)."""
    for service in ("web", "worker", "dispatcher", "scheduler"):
        assert deployment.exec(service, "id", "-u").strip() == "10001", service
        changed = _run(["docker", "diff", deployment.container(service)]).stdout.split("\n")
        assert [c for c in changed if c and not c[2:].startswith("/tmp")] == [], service


def test_no_container_gathers_zombies(deployment, signed_round):
    """A process as PID 1 inherits every orphan; the PDF work's isolation children
    must not be left for it to reap (none is: their parent reaps or detaches them)."""
    count = ("import pathlib; print(sum(p.read_text().rsplit(')', 1)[1].split()[0] == 'Z' "
             "for p in pathlib.Path('/proc').glob('[0-9]*/stat')))")
    for service in ("web", "worker", "dispatcher", "scheduler"):
        assert deployment.exec(service, "python", "-c", count).strip() == "0", service


def test_no_log_line_holds_a_link_token_or_a_personal_number(deployment, signed_round):
    """Before the faults and the re-creation below: their logs go with the containers."""
    logs = deployment.logs()
    assert "POST /api/v1/rounds" in logs and "/sign/[link]" in logs  # logged, redacted
    secrets_ = {deployment.smtp.link(p["email"]) for p in signed_round.people}
    for number in PEOPLE.values():
        secrets_ |= {number, number[2:], f"{number[:8]}-{number[8:]}"}
    assert not [s for s in secrets_ if s in logs]


def test_a_killed_worker_comes_back_and_signs(deployment, signed_round, protocol):
    """The worker's process dies as in a crash or the OOM killer (SIGKILL from the
    host: ``docker kill`` is an operator's stop, which the policy honours)."""
    before = deployment.restarts("worker")
    os.kill(deployment.state("worker")["Pid"], 9)
    deployment.wait(lambda: deployment.restarts("worker") > before
                    and deployment.state("worker")["Running"], 60,
                    "the worker's restart policy did not bring it back")
    complete(deployment, "docker-killed", protocol)


def test_signature_jobs_survive_a_redis_restart(deployment, signed_round, protocol):
    """With the worker stopped, the three signatures wait in Redis; Redis restarts
    (its append-only file: compose's command); the worker starts and finishes them."""
    deployment.compose("stop", "worker")
    flight = launch(deployment, "docker-redis", protocol)
    sign(deployment, flight, 0, 1, 2)
    time.sleep(2)  # appendfsync everysec
    deployment.compose("restart", "redis")
    deployment.wait_healthy("redis", 60)
    deployment.compose("start", "worker")
    api = deployment.api()
    deployment.wait(lambda: api.round(flight.round_id)["status"] == "completed", 120,
                    "the round never completed after Redis restarted")
    assert_signed_once_each(api, deployment.smtp, flight)


def test_backup_then_restore_on_an_empty_host_as_the_readme_says(deployment, signed_round,
                                                                  protocol):
    """The README's backup (the database first, then the data and keys volumes,
    and .env), ``down -v`` (nothing left), and its restore: the rounds, the audit
    chains and the signed PDF are back byte for byte, and new rounds are signed
    under the same root."""
    api, backup = deployment.api(), deployment.dir / "backup"
    before = api.document(signed_round.round_id)
    root = deployment.exec("web", "cat", "/keys/root-ca.pem")
    backup.mkdir()
    deployment.piped("exec", "-T", "db", "pg_dump", "-U", "signflow", "-Fc", "signflow",
                     into=backup / "signflow.dump")
    deployment.piped("exec", "-T", "web", "tar", "-C", "/", "-cf", "-", "data", "keys",
                     into=backup / "files.tar")
    shutil.copy(deployment.dir / ".env", backup / ".env")
    deployment.compose("down", "-v", timeout=300)

    shutil.copy(backup / ".env", deployment.dir / ".env")
    deployment.compose("up", "-d", "db", timeout=300)
    deployment.wait_healthy("db", 120)
    deployment.piped("run", "--rm", "--no-deps", "-T", "web", "tar", "-C", "/", "-xf", "-",
                     source=backup / "files.tar")
    deployment.piped("exec", "-T", "db", "pg_restore", "-U", "signflow", "-d", "signflow",
                     "--clean", "--if-exists", "--no-owner", source=backup / "signflow.dump")
    deployment.compose("up", "-d", timeout=600)
    deployment.wait_healthy("web")

    assert deployment.exec("web", "cat", "/keys/root-ca.pem") == root
    assert api.round(signed_round.round_id)["status"] == "completed"
    assert api.audit(signed_round.round_id)["intact"]
    assert api.document(signed_round.round_id) == before
    complete(deployment, "docker-restored", protocol)

