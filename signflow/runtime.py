"""Everything a process needs, built once from settings: db, services, keys.

The web app, the CLI and the RQ worker each build one :class:`Runtime`; the
adapters behind the ports are chosen here and nowhere else.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from signflow.adapters.bankid import BankIDClient
from signflow.adapters.bankid_sim import Simulator, create_simulator_app
from signflow.adapters.mail import OutboxMailer, SmtpMailer
from signflow.adapters.storage import FileBlobStore
from signflow.adapters.wsgi_transport import in_process_session
from signflow.config import Settings
from signflow.core.ports import Clockwork, IdentityProvider, Services
from signflow.db import make_engine, make_session_factory, session_scope
from signflow.errors import ConfigError
from signflow.pdf.keys import make_timestamper
from signflow.pdf.pki import Pki, load_pki
from signflow.pdf.seal import load_seal
from signflow.pdf.service import PdfWorks

log = logging.getLogger(__name__)
SIMULATOR_URL = "http://bankid-simulator.invalid"


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    pki: Pki
    #: The in-process BankID simulator, when no outside BankID URL is set.
    simulator: Simulator | None = None
    simulator_app: object | None = None

    def provider_roots(self) -> list[x509.Certificate]:
        """Roots the identity provider's own signatures (BankID XML) chain to."""
        return list(getattr(self.services.identity, "roots", []) or [])

    def trust_anchors(self) -> list[x509.Certificate]:
        """Roots that the service's signatures chain to (published and used to verify)."""
        extra = _read_pem_certs(self.settings.trust_roots) if self.settings.trust_roots else []
        return [self.pki.root.cert, *extra]

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(settings.effective_database_url)
    sessions = make_session_factory(engine)
    pki = load_pki(settings.keys_dir)
    identity, simulator, sim_app = _identity(settings, pki)
    services = Services(
        blobs=FileBlobStore(settings.data_dir / "documents"),
        pdf=PdfWorks(pki, make_timestamper(pki, settings.tsa_url), base_url=settings.base_url,
                     max_bytes=settings.max_upload_bytes, max_pages=settings.max_pages,
                     seal=load_seal(settings, pki)),
        mailer=(SmtpMailer(settings.smtp_url, settings.mail_from) if settings.smtp_url
                else OutboxMailer(settings.data_dir / "outbox", settings.mail_from)),
        jobs=None,  # type: ignore[arg-type]  # set just below: the queue needs the runtime
        identity=identity,
        clock=Clockwork(),
        base_url=settings.base_url,
        invitation_days=settings.invitation_days,
    )
    runtime = Runtime(settings, engine, sessions, services, pki, simulator, sim_app)
    if settings.redis_url:
        from signflow.adapters.queue import RQQueue

        services.jobs = RQQueue(settings.redis_url, settings.rq_queue)
    else:
        from signflow.adapters.queue import InProcessQueue

        services.jobs = InProcessQueue(lambda job, args: run_job(runtime, job, args))
    return runtime


def _read_pem_certs(path: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read certificates from {path}: {exc}") from None


def _identity(settings: Settings, pki: Pki) -> tuple[IdentityProvider, Simulator | None, object]:
    if not settings.bankid_url:
        sim = Simulator(pki.bankid_sim)
        app = create_simulator_app(sim)
        roots = ([pki.bankid_sim.cert] if not settings.bankid_root
                 else _read_pem_certs(settings.bankid_root))
        client = BankIDClient(SIMULATOR_URL, session=in_process_session(app, SIMULATOR_URL),
                              roots=roots)
        return client, sim, app
    cert = None
    if settings.bankid_cert:
        if not settings.bankid_key:
            raise ConfigError("SIGNFLOW_BANKID_CERT needs SIGNFLOW_BANKID_KEY (PEM)")
        cert = (settings.bankid_cert, settings.bankid_key)
    if settings.bankid_url.startswith("http://") and "127.0.0.1" not in settings.bankid_url \
            and "localhost" not in settings.bankid_url:
        log.warning("SIGNFLOW_BANKID_URL is plain http: only for simulators")
    roots = _read_pem_certs(settings.bankid_root) if settings.bankid_root else []
    return (BankIDClient(settings.bankid_url, cert=cert, ca=settings.bankid_ca or None,
                         roots=roots), None, None)


def run_job(runtime: Runtime, job: str, args: tuple[str, ...]) -> None:
    from signflow.jobs import JOBS

    with session_scope(runtime.sessions) as session:
        JOBS[job](session, runtime.services, *args)


_worker_runtime: Runtime | None = None
_worker_lock = threading.Lock()


def worker_runtime() -> Runtime:
    """The runtime of an RQ worker process, built on first use from the environment."""
    global _worker_runtime
    with _worker_lock:
        if _worker_runtime is None:
            from signflow.config import ensure_secret_key, load_settings

            _worker_runtime = build_runtime(ensure_secret_key(load_settings()))
        return _worker_runtime
