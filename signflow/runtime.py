"""Everything a process needs, built once from settings: db, services, keys.

The web app, the CLI and the RQ worker each build one :class:`Runtime`; the
adapters behind the ports are chosen here and nowhere else (identity
providers through their entry points, see :mod:`signflow.adapters.providers`).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from signflow import jobs
from signflow.adapters.mail import OutboxMailer, SmtpMailer
from signflow.adapters.providers import Providers
from signflow.adapters.secrets_at_rest import FieldCipher
from signflow.adapters.sim_store import shared_orders
from signflow.adapters.storage import build_blob_store
from signflow.adapters.webhooks import HttpWebhooks
from signflow.config import (
    Settings,
    misspelled,
    require_production_ready,
    stand_ins,
)
from signflow.core.ports import Clockwork, JobQueue, Services
from signflow.core.workflows import load_workflows
from signflow.db import make_engine, make_session_factory
from signflow.dispatch import Dispatcher, leave_to_dispatcher
from signflow.errors import ConfigError
from signflow.metrics import CountingProviders
from signflow.pdf import speedups
from signflow.pdf.keys import make_timestamper
from signflow.pdf.pki import Pki, load_evidence_certificates, load_pki, named_base_url
from signflow.pdf.seal import check_seal_chain, load_seal
from signflow.pdf.service import PdfWorks
from signflow.trust import TrustSettings, trust_settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    pki: Pki
    providers: Providers
    #: Delivers this runtime's outbox: nudged after each commit that recorded work.
    dispatcher: Dispatcher

    @property
    def simulator(self):
        """The in-process BankID simulator, when no outside BankID URL is set."""
        return self.providers.build("bankid").simulator

    def trust_settings(self) -> TrustSettings:
        """What verification trusts: the same as ``signflow verify`` with these settings."""
        return self._trust

    @functools.cached_property
    def _trust(self) -> TrustSettings:
        # read once: each verification and trust-anchors request read the PEM files again
        return trust_settings(self.settings)

    def provider_roots(self) -> list[x509.Certificate]:
        """Roots the identity providers' own signatures (BankID XML, Freja JWS) chain to."""
        return list(self.trust_settings().provider_roots)

    def trust_anchors(self) -> list[x509.Certificate]:
        """Roots that the service's signatures chain to (published and used to verify)."""
        return list(self.trust_settings().anchors)

    def close(self) -> None:
        self.dispatcher.stop()  # what its thread was sending is sent first
        self.engine.dispose()

    @functools.cached_property
    def evidence_keys(self) -> list[bytes]:
        """Keys (PEM) the service's own verification opens sealed evidence with (read once)."""
        from pathlib import Path

        from signflow.pdf.envelope import EnvelopeError, unlocked_key_pem
        from signflow.pdf.pki import EVIDENCE

        if self.settings.evidence_key:
            path, password = Path(self.settings.evidence_key), self.settings.evidence_key_password
        elif self.settings.dev_mode:
            path, password = self.settings.keys_dir / f"{EVIDENCE}.key", ""
        else:
            return []
        try:
            return [unlocked_key_pem(path, password)]
        except EnvelopeError as exc:
            if not self.settings.evidence_key:
                return []  # no development key: sealed evidence is reported as sealed
            raise ConfigError(f"SIGNFLOW_EVIDENCE_KEY: {exc}") from None


def build_runtime(settings: Settings) -> Runtime:
    """Everything a process needs; outside development mode only what was configured.

    :raises ConfigError: a part (BankID, TSA, SMTP, seal) would fall back to its
        development stand-in without ``SIGNFLOW_ALLOW_DEV_<PART>``; the message
        names every missing setting.
    """
    require_production_ready(settings)
    _warn_of_stand_ins(settings)
    for warning in misspelled(settings):
        log.warning(warning)
    speedups.install()  # pyHanko's slowest readings of a PDF, done faster
    engine = make_engine(settings.effective_database_url)
    sessions = make_session_factory(engine)
    pki = load_pki(settings.keys_dir)
    named = named_base_url(pki)
    if named is not None and named != settings.base_url:
        log.warning("the certificates in %s name %s/pki/ for their revocation lists, but "
                    "SIGNFLOW_BASE_URL is %s: verifiers will look for them at the old "
                    "address (keys init keeps existing keys; serve that address too, or "
                    "start from new keys before the first real round)",
                    settings.keys_dir, named, settings.base_url)
    sealer = FieldCipher(settings.data_key or settings.secret_key)
    # counts each provider's errors (metrics); stand-ins keep their orders in the
    # database, where every worker process sees them
    providers = CountingProviders(settings, pki,
                                  stand_in_orders=shared_orders(engine, sealer))
    providers.build("bankid")  # the default: fail now on bad BankID configuration
    # jobs run in this process use the services that hold their queue: bound just below
    in_process = jobs.InProcessRunner(sessions)
    seal = load_seal(settings, pki)
    check_seal_chain(seal, trust_settings(settings).anchors)
    services = Services(
        blobs=build_blob_store(settings, engine),
        pdf=PdfWorks(pki, make_timestamper(pki, settings.tsa_url), base_url=settings.base_url,
                     max_bytes=settings.max_upload_bytes, max_pages=settings.max_pages,
                     evidence_recipients=load_evidence_certificates(settings.keys_dir,
                                                                    settings.evidence_certs),
                     seal=seal),
        mailer=(SmtpMailer(settings.smtp_url, settings.mail_from) if settings.smtp_url
                else OutboxMailer(settings.data_dir / "outbox", settings.mail_from)),
        jobs=_job_queue(settings, in_process),
        webhooks=HttpWebhooks(),
        providers=providers,
        workflows=load_workflows(settings.workflows_dir),
        clock=Clockwork(),
        base_url=settings.base_url,
        sealer=sealer,
        invitation_days=settings.invitation_days,
    )
    in_process.bind(services)
    dispatcher = Dispatcher(sessions, services, serial=engine.dialect.name == "sqlite")
    dispatcher.install()
    if settings.redis_url:  # a deployment: `signflow dispatcher` sends mail and webhooks
        dispatcher.hand_off(leave_to_dispatcher)
    return Runtime(settings, engine, sessions, services, pki, providers, dispatcher)


def _job_queue(settings: Settings, in_process: jobs.InProcessRunner) -> JobQueue:
    """RQ on Redis when ``SIGNFLOW_REDIS_URL`` is set, else *in_process* (the outbox
    enqueues after each commit)."""
    if settings.redis_url:
        from signflow.adapters.queue import RQQueue

        return RQQueue(settings.redis_url, settings.rq_queue)
    from signflow.adapters.queue import InProcessQueue

    return InProcessQueue(in_process)


def _warn_of_stand_ins(settings: Settings) -> None:
    """Outside development mode, say once which allowed stand-ins are in use."""
    if settings.dev_mode:
        return
    for part, _missing, allowing in stand_ins(settings):
        log.warning("%s is the development stand-in (%s): staging only", part, allowing)


def run_job(runtime: Runtime, job: str, args: tuple[str, ...]) -> None:
    """Run *job* now with *runtime*'s sessions and services (see :func:`signflow.jobs.run_job`)."""
    jobs.run_job(runtime.sessions, runtime.services, job, args)


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
