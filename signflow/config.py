"""Typed settings from ``SIGNFLOW_*`` environment variables.

This module is the one place in signflow that reads :data:`os.environ`; every
other module receives a :class:`Settings` object.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from signflow.errors import ConfigError

PREFIX = "SIGNFLOW_"


@dataclass(frozen=True)
class Settings:
    """Everything signflow can be configured with; see the README's table."""

    #: Where SQLite, stored documents and the dev outbox live.
    data_dir: Path = Path("instance")
    #: SQLAlchemy URL; empty means SQLite in the data dir.
    database_url: str = ""
    #: Redis for RQ; empty: jobs run in-process after commit.
    redis_url: str = ""
    #: Name of the RQ queue (lets test runs share one Redis without crosstalk).
    rq_queue: str = "signflow"
    #: Public URL used in e-mailed links and in certificates' CRL pointers.
    base_url: str = "http://127.0.0.1:5000"
    #: The operator's accessibility statement (tillgänglighetsredogörelse, DOS-lagen
    #: 12 §), linked from every page's footer; empty: no link.
    accessibility_url: str = ""
    #: The organisation (O=) in the certificates ``signflow keys init`` makes: the
    #: root auditors trust, the signer CA, the development seal.
    ca_organisation: str = "signflow"
    #: Session / token secret; empty means generated once into the data dir.
    secret_key: str = ""
    #: Seal key, CAs, TSA key.
    keys_dir: Path = Path("keys")
    #: ``smtp://[user:pass@]host:port`` or ``smtps://…``; empty: dev outbox.
    smtp_url: str = ""
    #: Sender address of every e-mail.
    mail_from: str = "signflow@localhost"
    #: BankID RP API base URL; empty: the built-in simulator, in-process.
    bankid_url: str = ""
    bankid_cert: str = ""
    bankid_key: str = ""
    bankid_cert_password: str = field(default="", repr=False)
    bankid_ca: str = ""
    #: PEM of the root BankID's XML signatures chain to; empty: the simulator's.
    bankid_root: str = ""
    #: Freja eID+ RP API base; empty: a built-in stand-in, in development only.
    freja_url: str = ""
    freja_cert: str = ""
    freja_key: str = ""
    freja_cert_password: str = field(default="", repr=False)
    freja_ca: str = ""
    #: PEM of the certificate(s) Freja signs its results (JWS) with.
    freja_jws_cert: str = ""
    #: Workflow templates (``*.toml``).
    workflows_dir: Path = Path("workflows")
    #: RFC 3161 time-stamping authority; empty: the built-in dev TSA.
    tsa_url: str = ""
    #: The service seal: certificate (PEM, chain may follow) and key (PEM or
    #: PKCS#12 .p12/.pfx); empty: the development seal in the keys dir.
    seal_cert: str = ""
    seal_key: str = ""
    seal_password: str = field(default="", repr=False)
    #: The seal key in an HSM instead: PKCS#11 module, token label, key label, PIN.
    seal_pkcs11_module: str = ""
    seal_pkcs11_token: str = ""
    seal_pkcs11_key: str = ""
    seal_pkcs11_pin: str = field(default="", repr=False)
    #: Extra trusted roots (PEM file) for verification, e.g. a commercial seal's CA.
    trust_roots: str = ""
    #: PEM file of the certificate(s) the identity evidence inside signed PDFs
    #: is sealed to (CMS EnvelopedData, RSA); several recipients allowed, e.g. the
    #: municipality's archive and the service.  Empty: the development evidence
    #: certificate in the keys dir.
    evidence_certs: str = ""
    #: PEM private key of one of those certificates, with which the service's
    #: own verification (API and /verify page) opens sealed evidence.  Empty:
    #: the development key in development mode, else sealed evidence is
    #: reported as sealed.
    evidence_key: str = ""
    evidence_key_password: str = field(default="", repr=False)
    #: Key that encrypts personal numbers at rest (any string; 32+ random
    #: characters).  Empty: derived from the secret key.
    data_key: str = field(default="", repr=False)
    #: Largest accepted upload in bytes.
    max_upload_bytes: int = 50 * 1024 * 1024
    #: Most pages accepted in one protocol.
    max_pages: int = 2000
    #: The public verification (``POST /api/v1/verify``, the ``/verify`` page):
    #: largest file in bytes (a signed protocol is a little larger than its upload);
    verify_max_bytes: int = 64 * 1024 * 1024
    #: most pages × signatures in one file, estimated before verifying (the time
    #: grows with both: about 3 s for 2000 pages with three signatures here);
    verify_max_cost: int = 20_000
    #: verifications one client address may ask for (Flask-Limiter's notation;
    #: counted in Redis when ``redis_url`` is set, else per process);
    verify_rate: str = "30/minute"
    #: verifications one web process runs at once; large files may take all
    #: slots but one.  Keep it below the server's threads per process.
    verify_concurrency: int = 2
    #: Days a signer's link stays valid.
    invitation_days: int = 30
    #: Days an API token stays valid.
    api_token_days: int = 365
    #: Development mode: the dev outbox page, the simulators' pages, the dev TSA
    #: endpoint, and every development stand-in allowed at once.  ``signflow
    #: serve`` turns it on unless told otherwise; nothing else does.
    dev_mode: bool = False
    #: Outside development mode, allow one development stand-in each: the built-in
    #: BankID simulator (or BankID without a client certificate), the dev TSA, the
    #: dev mail outbox, the development seal in the keys dir.  Staging only.
    allow_dev_bankid: bool = False
    allow_dev_tsa: bool = False
    allow_dev_smtp: bool = False
    allow_dev_seal: bool = False
    #: ``json`` (one JSON object a line) or ``text``; empty: JSON, except ``signflow serve``.
    log_format: str = ""
    #: Port on which ``signflow worker`` serves its Prometheus metrics; 0: none.
    metrics_port: int = 0
    #: How much ``signflow worker``, ``dispatcher`` and ``scheduler`` lower their
    #: CPU priority (``nice``, 0-19): on a machine shared with the web server,
    #: people waiting on a page go before PDF jobs and mail.  0: as started.
    background_nice: int = 10
    #: Trusted reverse proxies in front of signflow; their X-Forwarded-For/-Proto/-Host
    #: give the signer's address (BankID's endUserIp).  0: headers ignored.
    proxy_hops: int = 0
    #: Minutes a staff session may sit unused before it asks for sign-in again.
    session_idle_minutes: int = 30
    #: Hours a staff session lasts at most, however busy.
    session_max_hours: int = 12
    #: OpenID Connect sign-in for staff (Entra ID, Keycloak, …): the issuer URL
    #: (its ``/.well-known/openid-configuration`` is read), and this service's
    #: client id and secret there.  Empty issuer: BankID sign-in only.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    #: Extra options for tests: not read from the environment.
    testing: bool = False
    #: ``SIGNFLOW_*`` variables signflow itself does not know, by lower-case
    #: name without the prefix: an installed identity provider reads its own
    #: settings here (``SIGNFLOW_MYID_URL`` is ``extra["myid_url"]``), so a
    #: third provider needs no edit of this class.
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def provider_setting(self, provider: str, name: str, default: str = "") -> str:
        """``SIGNFLOW_<PROVIDER>_<NAME>``, for identity providers outside signflow."""
        return self.extra.get(f"{provider}_{name}".lower(), default)

    @property
    def embedded(self) -> bool:
        """Whether this process does the background work itself (threads for the
        outbox and the scheduler): without Redis, outside tests.  With Redis,
        ``signflow dispatcher`` and ``signflow scheduler`` do it; tests call it."""
        return not self.redis_url and not self.testing

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'signflow.sqlite3').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _coerce(name: str, raw: str, kind: type) -> object:
    if kind is Path:
        return Path(raw)
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(
                f"{PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{PREFIX}{name.upper()} must be true or false, not {raw!r}")
    return raw


_KINDS = {"Path": Path, "int": int, "bool": bool, "str": str}


#: ``SIGNFLOW_<NAME>_FILE``: the setting's value is that file's content (Docker and
#: Kubernetes secrets), so that a secret is not in the environment ``docker
#: inspect`` shows.
FILE_SUFFIX = "_FILE"


def _with_secret_files(env: Mapping[str, str], known: set[str]) -> Mapping[str, str]:
    """*env* with each ``SIGNFLOW_X_FILE`` (X a *known* setting) read into
    ``SIGNFLOW_X`` (a setting given both ways is refused: which one was meant?)."""
    files = {k: v for k, v in env.items()
             if k.endswith(FILE_SUFFIX) and k[:-len(FILE_SUFFIX)] in known}
    if not files:
        return env
    merged = dict(env)
    for key, path in files.items():
        name = key[:-len(FILE_SUFFIX)]
        if name in env:
            raise ConfigError(f"{name} and {key} are both set: set one")
        try:
            merged[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{key}: cannot read {path}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        del merged[key]
    return merged


def load_settings(environ: Mapping[str, str] | None = None, *,
                  defaults: Mapping[str, object] | None = None) -> Settings:
    """Build :class:`Settings` from the environment (``os.environ`` by default).

    *defaults* replace the class's defaults for this process (``signflow serve``
    asks for development mode); a variable that is set still wins.
    """
    known = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    env = _with_secret_files(os.environ if environ is None else environ, known)
    values: dict[str, object] = dict(defaults or {})
    values["extra"] = {k[len(PREFIX):].lower(): v for k, v in env.items()
                       if k.startswith(PREFIX) and k not in known}
    for f in dataclasses.fields(Settings):
        if f.name in ("testing", "extra"):
            continue
        key = PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _coerce(f.name, env[key], _KINDS[str(f.type)])
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.base_url.endswith("/"):
        settings = settings.with_overrides(base_url=settings.base_url.rstrip("/"))
    return settings


#: The parts a production start needs, each with the setting that allows its
#: development stand-in instead.
_PARTS = (
    ("BankID", "allow_dev_bankid"),
    ("the TSA", "allow_dev_tsa"),
    ("mail", "allow_dev_smtp"),
    ("the seal", "allow_dev_seal"),
)


def _missing(settings: Settings, part: str) -> str:
    """What *part* lacks, as the settings to set; empty when it is configured."""
    if part == "BankID":
        # BankID's servers present certificates of BankID's own CA: without it pinned
        # every call would fail on the system's CAs
        # (named at once when no URL is set either: production's is https)
        pinned = settings.bankid_ca or (settings.bankid_url != ""
                                        and not settings.bankid_url.startswith("https://"))
        need = [name for name, value in (("BANKID_URL", settings.bankid_url),
                                         ("BANKID_CERT", settings.bankid_cert),
                                         ("BANKID_CA", pinned)) if not value]
        return " and ".join(PREFIX + name for name in need)
    if part == "the TSA":
        return "" if settings.tsa_url else f"{PREFIX}TSA_URL"
    if part == "mail":
        return "" if settings.smtp_url else f"{PREFIX}SMTP_URL"
    if settings.seal_key or settings.seal_pkcs11_module:
        return ""
    return f"{PREFIX}SEAL_CERT and {PREFIX}SEAL_KEY, or {PREFIX}SEAL_PKCS11_MODULE"


def stand_ins(settings: Settings) -> list[tuple[str, str, str]]:
    """The parts left to a development stand-in: (part, missing settings, allowing setting)."""
    found = []
    for part, allowed in _PARTS:
        missing = _missing(settings, part)
        if missing:
            found.append((part, missing, f"{PREFIX}{allowed.upper()}"))
    return found


def production_gaps(settings: Settings) -> list[str]:
    """The parts that would run on a development stand-in nobody allowed.

    Empty in development mode, and for each part whose
    ``SIGNFLOW_ALLOW_DEV_<PART>`` is set.
    """
    if settings.dev_mode:
        return []
    return [f"{part} needs {missing} (or {allowing}=true)"
            for part, missing, allowing in stand_ins(settings)
            if not getattr(settings, allowing[len(PREFIX):].lower())]


def require_production_ready(settings: Settings) -> None:
    """Refuse to start outside development mode on a stand-in nobody allowed, and
    in any mode on a value that cannot work (:func:`value_problems`).

    :raises ConfigError: naming every missing setting and bad value at once.
    """
    gaps, bad = production_gaps(settings), value_problems(settings)
    if gaps:
        raise ConfigError(
            "refusing to start without development mode: " + "; ".join(gaps)
            + f". ({PREFIX}DEV_MODE=true allows every stand-in: development only.)"
            + "".join(f" Also: {problem}." for problem in bad))
    if bad:
        raise ConfigError("refusing to start: " + "; ".join(bad))


#: Settings that name a file, which must be there when set.
_FILES = ("bankid_cert", "bankid_key", "bankid_ca", "bankid_root", "freja_cert", "freja_key",
          "freja_ca", "freja_jws_cert", "seal_cert", "seal_key", "trust_roots",
          "evidence_certs", "evidence_key")
#: Settings that hold a URL, with the schemes each may have.
_URLS = (("base_url", ("http", "https")), ("accessibility_url", ("http", "https")),
         ("tsa_url", ("http", "https")),
         ("bankid_url", ("http", "https")), ("freja_url", ("http", "https")),
         ("oidc_issuer", ("http", "https")), ("redis_url", ("redis", "rediss", "unix")))


def value_problems(settings: Settings) -> list[str]:
    """Values that cannot work, each named by its setting: a URL that is not one, a
    file that is not there, a count below zero."""
    bad = []
    for name, schemes in _URLS:
        value = getattr(settings, name)
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
            bad.append(f"{PREFIX}{name.upper()} must be a {' or '.join(schemes)} URL with a "
                       f"host (like {schemes[0]}://host), not {_without_password(value)!r}")
    if settings.database_url and "://" not in settings.database_url:
        bad.append(f"{PREFIX}DATABASE_URL must be a database URL "
                   "(like postgresql+psycopg://user:password@host/name)")
    for name in _FILES:
        value = getattr(settings, name)
        if value and not Path(value).is_file():
            bad.append(f"{PREFIX}{name.upper()} names {value}, which is not a file here")
    # (the default may be absent: the built-in workflow is there anyway)
    if settings.workflows_dir != Path("workflows") and not settings.workflows_dir.is_dir():
        bad.append(f"{PREFIX}WORKFLOWS_DIR names {settings.workflows_dir}, "
                   "which is not a directory here")
    for name in ("proxy_hops", "metrics_port", "invitation_days", "api_token_days",
                 "max_upload_bytes", "max_pages"):
        if getattr(settings, name) < 0:
            bad.append(f"{PREFIX}{name.upper()} must not be negative")
    return bad


def _without_password(value: str) -> str:
    """*value* with whatever stands before an ``@`` (a user and password) left out."""
    head, at, host = value.rpartition("@")
    if not at:
        return value
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}…@{host}" if sep else f"…@{host}"


def misspelled(settings: Settings) -> list[str]:
    """The ``SIGNFLOW_*`` variables signflow does not know that look like one it does
    (``SIGNFLOW_DATAKEY``): each with the setting it probably meant.  Others are left
    alone: an installed identity provider reads its own."""
    known = [PREFIX + f.name.upper() for f in dataclasses.fields(Settings)
             if f.name not in ("testing", "extra")]
    found = []
    for name in settings.extra:
        variable = PREFIX + name.upper()
        close = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
        if close:
            found.append(f"{variable} is not a setting; did you mean {close[0]}?")
    return found


def configured(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the setting *name* (``keys_dir``) is set in the environment, not
    left at its default: ``signflow verify`` trusts a keys dir only when told."""
    return PREFIX + name.upper() in (os.environ if environ is None else environ)


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key, generating one into the data dir once."""
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret_key"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return settings.with_overrides(secret_key=path.read_text().strip())
