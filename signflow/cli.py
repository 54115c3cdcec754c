"""The ``signflow`` command line."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from signflow.config import Settings, configured, ensure_secret_key, load_settings
from signflow.errors import ConfigError, SignflowError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: ``signflow verify``: the signatures can be neither confirmed nor refuted.
EXIT_INDETERMINATE = 3
#: ``signflow verify``'s exit status per overall ETSI indication; unusable input
#: (unreadable, not a PDF, encrypted, no signatures) is EXIT_USAGE.
VERIFY_EXIT = {"TOTAL-PASSED": EXIT_OK, "TOTAL-FAILED": EXIT_FAIL,
               "INDETERMINATE": EXIT_INDETERMINATE}


def _settings(args) -> Settings:
    """The environment's settings, over the command's own defaults (serve: dev mode);
    with a secret key, made once, for the commands that use one (not ``verify``,
    which runs on machines that never saw the service and writes nothing there)."""
    settings = load_settings(defaults=getattr(args, "setting_defaults", None))
    return ensure_secret_key(settings) if getattr(args, "secret", True) else settings


@contextmanager
def _database(settings: Settings):
    """A unit of work on the configured database, for commands that need no adapters."""
    from signflow.db import make_engine, make_session_factory, session_scope

    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def cmd_keys_init(args, settings: Settings) -> int:
    from signflow.pdf.pki import init_keys, load_pki, named_base_url

    made = init_keys(settings.keys_dir, settings.base_url, settings.ca_organisation)
    print(f"{'created' if made else 'kept existing'} keys in {settings.keys_dir}")
    named = named_base_url(load_pki(settings.keys_dir))
    if named is not None and named != settings.base_url:
        print(f"note: these keys name {named}/pki/ for their revocation lists, not "
              f"SIGNFLOW_BASE_URL ({settings.base_url}): keys init never replaces keys",
              file=sys.stderr)
    return EXIT_OK


def cmd_db_upgrade(args, settings: Settings) -> int:
    from signflow.migrate import upgrade

    upgrade(settings)
    print("database at the latest schema")
    return EXIT_OK


def _lookup_hasher(settings: Settings):
    """What keys the personal-number hashes: the web app's own sealer, rebuilt."""
    from signflow.adapters.secrets_at_rest import FieldCipher

    return FieldCipher(settings.data_key or settings.secret_key)


def cmd_users_add(args, settings: Settings) -> int:
    from signflow.core.accounts import add_user, issue_token, set_personal_number

    with _database(settings) as session:
        user = add_user(session, args.email, args.role, name=args.name or "",
                        organisation=args.organisation or "Default")
        if args.personal_number:
            # a bad or taken number rolls the whole command back: no half-made user
            set_personal_number(session, _lookup_hasher(settings), user, args.personal_number)
        token = issue_token(session, user, settings.api_token_days, name="signflow users add")
        email, role, org = user.email, user.role, user.organisation.name
    print(f"added {email} ({role}) to {org}"
          + ("; signs in with BankID" if args.personal_number else ""))
    print(token)
    return EXIT_OK


def cmd_users_token(args, settings: Settings) -> int:
    """A new API token for an existing user (the old ones keep working until they expire)."""
    from signflow.core.accounts import issue_token, user_by_email
    from signflow.errors import InvalidInput

    with _database(settings) as session:
        user = user_by_email(session, args.email)
        if user is None:
            raise InvalidInput(f"no user {args.email.strip().lower()}", field="email")
        token = issue_token(session, user, settings.api_token_days,
                            name=args.name or "signflow users token")
    print(f"a new token for {args.email.strip().lower()}, valid {settings.api_token_days} days:")
    print(token)
    return EXIT_OK


def cmd_orgs_list(args, settings: Settings) -> int:
    """Every organisation, with how many users and rounds it has."""
    from sqlalchemy import func, select

    from signflow.core.models import Organisation, Round, User

    with _database(settings) as session:
        users = dict(session.execute(select(User.organisation_id, func.count())
                                     .group_by(User.organisation_id)).all())
        rounds = dict(session.execute(select(Round.organisation_id, func.count())
                                      .group_by(Round.organisation_id)).all())
        for org in session.scalars(select(Organisation).order_by(Organisation.name)):
            print(f"{org.name}\t{users.get(org.id, 0)} users\t{rounds.get(org.id, 0)} rounds")
    return EXIT_OK


def cmd_users_set_personal_number(args, settings: Settings) -> int:
    """Let an existing user sign in with BankID (only a keyed hash is kept)."""
    from signflow.core.accounts import set_personal_number, user_by_email
    from signflow.errors import InvalidInput

    with _database(settings) as session:
        user = user_by_email(session, args.email)
        if user is None:
            raise InvalidInput(f"no user {args.email.strip().lower()}", field="email")
        set_personal_number(session, _lookup_hasher(settings), user, args.personal_number)
        email = user.email
    print(f"{email} now signs in with BankID")
    return EXIT_OK


def cmd_orgs_evidence_certs(args, settings: Settings) -> int:
    """Seal an organisation's evidence to its own certificates too (e.g. its archive's)."""
    from signflow.core.accounts import set_evidence_certificates

    try:
        pem = Path(args.file).read_bytes() if args.file else b""
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with _database(settings) as session:
        subjects = set_evidence_certificates(session, args.organisation, pem)
    for subject in subjects:
        print(f"evidence of {args.organisation} is now also sealed to {subject}")
    if not subjects:
        print(f"evidence of {args.organisation} is sealed to the service's certificates only")
    return EXIT_OK


DEV_USER = "sekretariatet@example.se"


def _ensure_dev_user(settings: Settings) -> None:
    """On a fresh dev install, make a secretariat user and show its token once.

    It signs in at /login as the BankID simulator's default person (whom the
    simulator's phone page approves as when no one else is chosen); an older
    dev install's user is given that personal number too.
    """
    from sqlalchemy import func, select

    from signflow.adapters.bankid_sim import PERSONAS
    from signflow.core.accounts import (
        add_user,
        issue_token,
        set_personal_number,
        user_by_email,
        user_for_personal_number,
    )
    from signflow.core.models import User

    hasher, pnr = _lookup_hasher(settings), PERSONAS[0].personal_number
    token = ""
    with _database(settings) as session:
        if not session.scalar(select(func.count()).select_from(User)):
            made = add_user(session, DEV_USER, "secretariat", name="Sekretariatet",
                            organisation="Dev")
            token = issue_token(session, made, settings.api_token_days, name="dev")
        dev = user_by_email(session, DEV_USER)
        if dev is not None and dev.personal_number_hash is None \
                and user_for_personal_number(session, hasher, pnr) is None:
            set_personal_number(session, hasher, dev, pnr)
    if not token:
        return
    path = settings.data_dir / "dev-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    print(f"dev secretariat user {DEV_USER} (signs in at /login with the BankID simulator "
          f"as {PERSONAS[0].name}); API token saved in {path}")


def cmd_serve(args, settings: Settings) -> int:
    from signflow import create_app, logs
    from signflow.migrate import upgrade
    from signflow.pdf.pki import init_keys

    logs.configure(settings, default="text")
    if settings.dev_mode:
        print("development mode is on (SIGNFLOW_DEV_MODE=false turns it off): dev outbox, "
              "simulators, dev PKI and TSA")
        if init_keys(settings.keys_dir, settings.base_url, settings.ca_organisation):
            print(f"made a development PKI in {settings.keys_dir}")
    upgrade(settings)
    if settings.dev_mode:
        _ensure_dev_user(settings)
    app = create_app(settings)
    print(f"signflow on http://{args.host}:{args.port}"
          + ("  (dev outbox: /dev/outbox, BankID simulator: /bankid-sim/)"
             if settings.dev_mode else ""))
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return EXIT_OK


def cmd_worker(args, settings: Settings) -> int:
    if not settings.redis_url:
        print("signflow worker needs SIGNFLOW_REDIS_URL", file=sys.stderr)
        return EXIT_USAGE
    from sqlalchemy.orm import configure_mappers

    from signflow import logs
    from signflow.metrics import make_instruments, serve_worker_metrics
    from signflow.pdf.service import PdfWorks
    from signflow.runtime import worker_runtime

    lower_priority(settings)  # first: a wrong value is refused before anything starts
    logs.configure(settings, default="json")
    # jobs run in this process, one at a time (see _work_until_stopped); mail and
    # webhooks are left to `signflow dispatcher`, a process of its own
    runtime = worker_runtime()  # fail now, not on the first job: configuration, keys, database
    if isinstance(runtime.services.pdf, PdfWorks):  # the TSA's sample token, the fonts
        runtime.services.pdf.warm()
    make_instruments()
    configure_mappers()  # SQLAlchemy's set-up of the models, before the first job, not in it
    serve_worker_metrics(settings.metrics_port)
    # what was made so far lives as long as the process: full collections skip it
    gc.freeze()
    return _work_until_stopped(settings, burst=args.burst)


def lower_priority(settings: Settings) -> None:
    """Yield the CPU to the web server by ``SIGNFLOW_BACKGROUND_NICE``: on a shared
    machine a page someone waits on goes before a PDF job, which nobody watches."""
    step = settings.background_nice
    if not 0 <= step <= 19:
        raise ConfigError(f"SIGNFLOW_BACKGROUND_NICE must be 0 to 19, not {step}")
    if step:
        os.nice(step)


def _work_until_stopped(settings: Settings, *, burst: bool) -> int:
    """Run RQ's worker loop, and start it again when Redis went away under it.

    RQ retries a lost connection while it waits for a job, but a Redis restart at
    another moment (a heartbeat, the scheduler, mid-job) ends its loop; a worker
    that exited then left rounds waiting for the hourly sweep.  Only a burst's
    end or a shutdown signal ends this one.

    Jobs run in this process (RQ's SimpleWorker), not in a work horse forked for
    each.  A horse started cold: a new database connection and TSA session,
    SQLAlchemy's statement cache empty, its metrics thrown away when it exited
    (the worker's ``/metrics`` never saw a job).  That was two thirds of a
    worker's CPU under ``make load``.  What a horse protected against is handled
    elsewhere: an upload is read in the sandbox (:mod:`signflow.pdf.isolate`), a
    job overrunning RQ's timeout is stopped by its alarm, and a worker that dies
    mid-job loses nothing (``signflow scheduler`` finds the work again).
    """
    import logging
    import time

    from redis import Redis
    from redis.exceptions import ConnectionError as RedisDown
    from redis.exceptions import TimeoutError as RedisSlow
    from rq import Queue, SimpleWorker

    log = logging.getLogger("signflow.worker")
    delay = 1.0
    while True:
        started, worker = time.monotonic(), None
        try:
            conn = Redis.from_url(settings.redis_url)
            # maintenance (abandoned jobs, registries) every 15 s, not RQ's 10 min; no RQ
            # scheduler: our jobs have no RQ retries (see RQQueue)
            worker = SimpleWorker([Queue(settings.rq_queue, connection=conn)],
                                  connection=conn, maintenance_interval=15)
            worker.work(burst=burst, with_scheduler=False)
        except (RedisDown, RedisSlow) as exc:
            log.warning("Redis is unreachable (%s); the worker starts again in %.0f s",
                        type(exc).__name__, delay)
        else:
            # RQ notes a shutdown signal (SIGTERM/SIGINT) here before its loop ends
            if burst or getattr(worker, "_shutdown_requested_date", None) is not None:
                return EXIT_OK
            log.warning("the worker loop ended without being asked to (Redis restarted?); "
                        "it starts again in %.0f s", delay)
        if time.monotonic() - started > 60:
            delay = 1.0  # it had been working: this is a new outage, not the same one
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


def cmd_dispatcher(args, settings: Settings) -> int:
    """Deliver the outbox (mail, jobs) until SIGTERM; several may run at once (PostgreSQL)."""
    import signal
    import threading

    from signflow import logs
    from signflow.runtime import build_runtime

    lower_priority(settings)  # first: a wrong value is refused before anything starts
    logs.configure(settings, default="json")
    runtime = build_runtime(settings)
    try:
        if args.once:
            print(f"{runtime.dispatcher.deliver_due()} outbox message(s) delivered")
            return EXIT_OK
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())  # ends after the current delivery
        runtime.dispatcher.run(stop, args.interval)
    finally:
        runtime.close()
    return EXIT_OK


def cmd_verify(args, settings: Settings) -> int:
    """Verify a signed PDF offline; the exit status is the overall ETSI indication."""
    from signflow.pdf import isolate

    with isolate.forking_from_this_process():  # pyHanko is loaded: no second interpreter
        return _verify(args, settings)


def _verify(args, settings: Settings) -> int:
    from signflow.pdf import halves, speedups
    from signflow.pdf.verify import verify_isolated
    from signflow.trust import trust_settings

    speedups.install()  # the child forked from this process reads with them

    if args.json and args.etsi == "-":
        return _unusable(args, "usage", "--json and --etsi - both want standard output")
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        return _unusable(args, "unreadable", f"cannot read {args.file}: {exc.strerror}")
    try:
        at = _moment(args.at)
    except ValueError:
        return _unusable(args, "usage", f"--at wants an ISO date, not {args.at!r}")
    # the keys dir's root only when the keys dir is set: not a ./keys that came with the file
    own_keys = configured("keys_dir")
    trust = trust_settings(settings, args.trust or (), keys_dir=own_keys)
    keys = _evidence_keys(args.evidence_key or (), args.evidence_key_password,
                          args.evidence_key_password_file)
    xml = None
    try:
        completions, zipped_trail = (_evidence_zip(args.evidence_zip) if args.evidence_zip
                                     else ({}, None))
        trail = _audit_trail(args.audit, zipped_trail, args.evidence_zip)
        if args.etsi:  # the same one run in the child, which writes the XML too
            from signflow.pdf.etsi_report import verify_isolated_etsi

            verified = verify_isolated_etsi(data, trust.anchors, trust.provider_roots, at=at,
                                            evidence_keys=keys, evidence_completions=completions)
            report, xml = verified.report, verified.xml
        else:
            report = verify_isolated(data, trust.anchors, trust.provider_roots, at=at,
                                     evidence_keys=keys, evidence_completions=completions,
                                     workers=halves.workers())
    except SignflowError as exc:
        return _unusable(args, exc.code, exc.message)
    if trail is not None:
        report = report.held_to(trail["events"])
    if args.pdf:
        from signflow.pdf.report import report_pdf

        Path(args.pdf).write_bytes(report_pdf(report, args.language))
    if xml is not None:
        _write_etsi(args.etsi, xml)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    elif args.etsi != "-":
        _print_report(report)
    if report.indication is None:  # no signatures: nothing to verify
        print(f"unusable input: {'; '.join(report.problems)}", file=sys.stderr)
        return EXIT_USAGE
    local_root = settings.keys_dir / "root-ca.pem"
    given = {Path(t).resolve() for t in args.trust or ()}
    if report.indication == "INDETERMINATE" and not own_keys and local_root.exists() \
            and local_root.resolve() not in given:
        print(f"note: {local_root} was not trusted (SIGNFLOW_KEYS_DIR is not set); if it is "
              f"your own service's root, run again with --trust {local_root}", file=sys.stderr)
    if report.audit_trail is not None and report.audit_trail.matches_trail is False:
        # the auditor asked for the file to be held to this trail: a script must see it fail
        print("failed: the audit trail supplied does not match the one the file commits to",
              file=sys.stderr)
        return EXIT_FAIL
    return VERIFY_EXIT[report.indication]


def _write_etsi(target: str, xml: bytes) -> None:
    """The ETSI report to the file *target*, or to standard output for ``-``."""
    if target == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(xml)
        sys.stdout.buffer.flush()
    else:
        Path(target).write_bytes(xml)


def _unusable(args, code: str, message: str) -> int:
    if args.json:
        print(json.dumps({"valid": False, "indication": None,
                          "error": {"code": code, "message": message}}))
    print(f"unusable input: {message}", file=sys.stderr)
    return EXIT_USAGE


def _moment(text: str | None):
    """``--at`` as an aware datetime (UTC when no zone is given); None: now."""
    if not text:
        return None
    from datetime import UTC, datetime

    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _evidence_zip(path: str) -> tuple[dict[str, dict], Any]:
    """The auditors' evidence ZIP (``GET …/evidence``), read once: its provider
    evidence by orderRef, and its ``audit.json`` (None where it has none)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            entries = [json.loads(zf.read(n)) for n in names
                       if n.startswith("bankid/") and n.endswith(".json")]
            audit = json.loads(zf.read("audit.json")) if "audit.json" in names else None
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ConfigError(f"cannot read the evidence ZIP {path}: {exc}") from None
    return {str(e.get("order_ref")): e for e in entries if isinstance(e, dict)}, audit


def _audit_trail(path: str | None, from_zip: Any, zip_path: str | None) -> dict | None:
    """The round's trail from ``--audit`` (the API's ``/audit`` JSON) or else from
    the evidence ZIP's ``audit.json`` (*from_zip*); None when there is neither."""
    if path:
        try:
            body = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the audit trail {path}: {exc}") from None
    elif from_zip is not None:
        body = from_zip
    else:
        return None
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ConfigError(f"{path or zip_path}: no list of audit events "
                          "(the API's /audit answer or the evidence ZIP)")
    return body


def _evidence_keys(paths, password: str | None, password_file: str | None = None
                   ) -> list[bytes]:
    """The ``--evidence-key`` files as unencrypted PEM, for the verifying child process.

    They are opened here, so a wrong path or password is a usage error, and the
    password never travels further.  The password comes from
    ``--evidence-key-password-file`` (its first line), ``--evidence-key-password``
    (which others on the machine can read in the process list), or, at a
    terminal, a prompt that does not echo.
    """
    from signflow.pdf.envelope import EnvelopeError, unlocked_key_pem

    if password_file:
        lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    keys = []
    for path in paths:
        try:
            keys.append(unlocked_key_pem(Path(path), password or ""))
        except EnvelopeError as exc:
            if password is not None or not sys.stdin.isatty():
                raise ConfigError(str(exc)) from None
            import getpass

            password = getpass.getpass(f"password of {path}: ")
            try:
                keys.append(unlocked_key_pem(Path(path), password))
            except EnvelopeError as again:
                raise ConfigError(str(again)) from None
    return keys


def _print_report(report) -> None:
    from signflow.pdf.verdict_words import (
        describe,
        evidence_words,
        file_notes,
        headline,
        published,
    )

    marks = {"TOTAL-PASSED": "OK ", "TOTAL-FAILED": "BAD", "INDETERMINATE": " ? "}
    for s in report.signatures:
        when = s.timestamp_time or s.signing_time or "?"
        tx = f"  Transaktions-ID {s.transaction_id}" if s.transaction_id else ""
        print(f"[{marks.get(s.indication, '?')}] {s.field} ({s.kind}) {s.signer}  {when}{tx}")
        print(f"      {describe(s.indication, s.sub_indication)}")
        print(f"      intact={s.intact} trusted={s.trusted} "
              f"changes-after={s.modification_level} level={s.pades_level or '-'} "
              f"long-term={s.ades_indication or '-'}")
        if s.evidence:
            for words in evidence_words(s.evidence):
                print(f"      {words}")
        for p in s.problems:
            print(f"      - {p}")
    for p in [*report.problems, *file_notes(report, "en")]:
        print(f"- {p}")
    for sentence in published(report):
        print(sentence)
    if report.audit_trail:
        from signflow.pdf.verdict_words import trail_words

        for sentence in trail_words(report.audit_trail, "en"):
            print(sentence)
    verdict = {"TOTAL-PASSED": "VALID", "TOTAL-FAILED": "NOT VALID"}.get(report.indication)
    print(f"{verdict} — {headline(report)}" if verdict else headline(report))


def cmd_audit_verify(args, settings: Settings) -> int:
    from signflow.core.audit import round_events, verify_chain
    from signflow.core.models import Round

    with _database(settings) as session:
        if session.get(Round, args.round_id) is None:
            print(f"no round {args.round_id}", file=sys.stderr)
            return EXIT_USAGE
        report = verify_chain(round_events(session, args.round_id))
    for p in report.problems:
        print(f"- {p}")
    print(f"{report.count} events, head {report.head}: "
          f"{'intact' if report.intact else 'BROKEN'}")
    return EXIT_OK if report.intact else EXIT_FAIL


def cmd_blobs_sweep(args, settings: Settings) -> int:
    """Remove stored documents nothing refers to (left by a transaction that failed
    after its blob was written), older than the grace period."""
    from datetime import timedelta

    from signflow.core.blob_gc import sweep_orphans
    from signflow.db import session_scope
    from signflow.runtime import build_runtime

    if args.older_than_minutes < 10:
        print("--older-than-minutes must be at least 10: a blob is written before the "
              "transaction that refers to it commits", file=sys.stderr)
        return EXIT_USAGE
    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            removed = sweep_orphans(session, runtime.services.blobs,
                                    older_than=timedelta(minutes=args.older_than_minutes))
    finally:
        runtime.close()
    print(f"{len(removed)} orphaned document blob(s) removed")
    return EXIT_OK


def cmd_rounds_expire(args, settings: Settings) -> int:
    """One round of the scheduler's housekeeping, e.g. from cron where no
    ``signflow scheduler`` runs: end pending rounds past their deadline, and
    restart the PDF work of signatures left unapplied (a queue or TSA outage)."""
    from signflow.core.housekeeping import tick
    from signflow.db import session_scope
    from signflow.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            done = tick(session, runtime.services)
        if not done.ran:
            print("another scheduler is at work; nothing done")
            return EXIT_OK
        print(f"{len(done.expired)} round(s) expired")
        if done.resumed:
            print(f"{len(done.resumed)} round(s) with unapplied signatures sent to the "
                  "worker again")
    finally:
        runtime.close()
    return EXIT_OK


def cmd_scheduler(args, settings: Settings) -> int:
    """Housekeeping every --interval seconds until SIGTERM (the compose file's
    ``scheduler``; :mod:`signflow.scheduler`).  Several may run; one acts per tick."""
    import signal
    import threading

    from signflow import logs, scheduler
    from signflow.runtime import build_runtime

    lower_priority(settings)  # first: a wrong value is refused before anything starts
    logs.configure(settings, default="json")
    runtime = build_runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # ends after the current tick
    try:
        scheduler.run(runtime, stop, args.interval, once=args.once)
    finally:
        runtime.close()
    return EXIT_OK


def cmd_lta_renew(args, settings: Settings) -> int:
    """Re-timestamp completed documents whose last timestamp is older than --days."""
    from datetime import timedelta

    from signflow.core.housekeeping import rounds_due_for_renewal
    from signflow.core.models import Round, utcnow
    from signflow.core.states import RoundStatus
    from signflow.db import session_scope
    from signflow.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            if args.round:
                chosen = session.get(Round, args.round)
                if chosen is None or chosen.status != RoundStatus.COMPLETED.value:
                    print(f"no completed round {args.round}", file=sys.stderr)
                    return EXIT_USAGE
            due = ([args.round] if args.round else
                   rounds_due_for_renewal(session, utcnow() - timedelta(days=args.days)))
        for round_id in due:
            # through the queue: a worker does it when Redis is configured
            runtime.services.jobs.enqueue("renew_archive", round_id)
        print(f"{len(due)} document(s) queued for renewal")
    finally:
        runtime.close()
    return EXIT_OK


def cmd_demo(args, settings: Settings) -> int:
    from signflow.demo import run_demo

    if not Path(args.out).resolve().parent.is_dir():  # before the whole round, not after it
        print(f"signflow: no directory {Path(args.out).resolve().parent} to write "
              f"{Path(args.out).name} in", file=sys.stderr)
        return EXIT_USAGE
    run_demo(Path(args.out), keys_dir=settings.keys_dir, base_url=settings.base_url)
    return EXIT_OK


def cmd_bankid_simulator(args, settings: Settings) -> int:
    from werkzeug.serving import run_simple

    from signflow.adapters.bankid_sim import Simulator
    from signflow.adapters.bankid_sim_web import create_simulator_app
    from signflow.adapters.tls import server_context
    from signflow.pdf.pki import init_keys, load_pki

    init_keys(settings.keys_dir, settings.base_url, settings.ca_organisation)
    pki = load_pki(settings.keys_dir)
    sim = Simulator(pki.bankid_sim)
    context = None
    scheme = "http"
    if args.tls:
        server, client_ca = _simulator_tls_files(settings.keys_dir, pki)
        context = server_context(str(server[0]), str(server[1]), str(client_ca))
        scheme = "https"
    app = create_simulator_app(sim, require_client_cert=args.tls)
    print(f"BankID simulator (RP API v6) on {scheme}://{args.host}:{args.port}/rp/v6.0/")
    if args.tls:
        d = settings.keys_dir
        print(f"  SIGNFLOW_BANKID_URL={scheme}://localhost:{args.port}\n"
              f"  SIGNFLOW_BANKID_CERT={d / 'bankid-rp.pem'}\n"
              f"  SIGNFLOW_BANKID_KEY={d / 'bankid-rp.key'}\n"
              f"  SIGNFLOW_BANKID_CA={d / 'bankid-sim-ca.pem'}")
    run_simple(args.host, args.port, app, threaded=True, ssl_context=context)
    return EXIT_OK


def _simulator_tls_files(keys_dir: Path, pki):
    """The simulator's server certificate and an RP client certificate, made once."""
    from signflow.pdf.pki import issue_tls_certificate, write_pair

    server = keys_dir / "bankid-sim-server.pem", keys_dir / "bankid-sim-server.key"
    if not server[0].exists():
        write_pair(keys_dir, "bankid-sim-server",
                   issue_tls_certificate(pki.bankid_sim, "localhost", server=True))
    if not (keys_dir / "bankid-rp.pem").exists():
        write_pair(keys_dir, "bankid-rp",
                   issue_tls_certificate(pki.bankid_sim, "signflow RP (test)", server=False))
    return server, keys_dir / "bankid-sim-ca.pem"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="signflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="development server on embedded defaults")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    # development mode unless SIGNFLOW_DEV_MODE says otherwise (CONTRACT: serve asks for it)
    s.set_defaults(func=cmd_serve, setting_defaults={"dev_mode": True})
    s = sub.add_parser("worker", help="RQ worker (needs SIGNFLOW_REDIS_URL)")
    s.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    s.set_defaults(func=cmd_worker)
    s = sub.add_parser("scheduler", help="housekeeping every --interval seconds: stalled "
                       "PDF work restarted, due rounds expired, archives renewed")
    s.add_argument("--interval", type=float, default=15.0, help="seconds between ticks")
    s.add_argument("--once", action="store_true", help="one tick, then exit")
    s.set_defaults(func=cmd_scheduler)
    s = sub.add_parser("dispatcher", help="deliver the outbox's mail and jobs, retrying "
                       "until they succeed (runs until SIGTERM)")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    s.add_argument("--once", action="store_true", help="deliver what is due now, then stop")
    s.set_defaults(func=cmd_dispatcher)
    db = sub.add_parser("db").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="Alembic migrations to head").set_defaults(func=cmd_db_upgrade)
    keys = sub.add_parser("keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("init", help="development PKI; idempotent").set_defaults(func=cmd_keys_init)
    users = sub.add_parser("users").add_subparsers(dest="users_command", required=True)
    s = users.add_parser("add", help="add a user; prints its API token last")
    s.add_argument("email")
    s.add_argument("--role", required=True, choices=["secretariat", "auditor", "admin"])
    s.add_argument("--name")
    s.add_argument("--organisation")
    s.add_argument("--personal-number", metavar="PN",
                   help="personnummer the user signs in with at /login (BankID); "
                   "only a keyed hash is stored")
    s.set_defaults(func=cmd_users_add)
    s = users.add_parser("set-personal-number",
                         help="let an existing user sign in with BankID as PN")
    s.add_argument("email")
    s.add_argument("personal_number", metavar="PN")
    s.set_defaults(func=cmd_users_set_personal_number)
    s = users.add_parser("token", help="a new API token for an existing user (printed)")
    s.add_argument("email")
    s.add_argument("--name", help="what the token is for (shown in the token list)")
    s.set_defaults(func=cmd_users_token)
    orgs = sub.add_parser("orgs").add_subparsers(dest="orgs_command", required=True)
    orgs.add_parser("list", help="every organisation, its users and rounds"
                    ).set_defaults(func=cmd_orgs_list)
    s = orgs.add_parser("evidence-certs", help="seal an organisation's evidence to its own "
                        "RSA certificates too; no FILE: the service's only")
    s.add_argument("organisation")
    s.add_argument("file", nargs="?", metavar="CERTS.pem")
    s.set_defaults(func=cmd_orgs_evidence_certs)
    s = sub.add_parser("verify", help="verify a signed PDF offline; exit 0 passed, 1 failed, "
                       "2 unusable input, 3 indeterminate (e.g. the trust anchor is unknown)")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.add_argument("--trust", action="append", metavar="ROOT.pem",
                   help="extra trusted root (PEM), besides SIGNFLOW_TRUST_ROOTS and the "
                   "root in SIGNFLOW_KEYS_DIR (only when that is set); repeatable")
    s.add_argument("--pdf", metavar="REPORT.pdf", help="also write a one-page PDF report")
    s.add_argument("--etsi", metavar="REPORT.xml", help="also write the ETSI TS 119 102-2 "
                   "validation report (XML); '-': to standard output, instead of the text")
    s.add_argument("--language", choices=["sv", "en"], default="sv",
                   help="language of the PDF report")
    s.add_argument("--at", metavar="DATE", help="judge as of this date (ISO 8601): how an "
                   "auditor years from now will see the file")
    s.add_argument("--evidence-key", action="append", metavar="KEY.pem",
                   help="private key (PEM) that may open sealed identity evidence; repeatable")
    s.add_argument("--evidence-zip", metavar="EVIDENCE.zip",
                   help="the round's evidence ZIP: checks sealed evidence as a key would")
    s.add_argument("--audit", metavar="AUDIT.json",
                   help="the round's audit trail (the API's /audit answer): checks that the "
                   "file commits to it (the evidence ZIP's own trail is used without this)")
    s.add_argument("--evidence-key-password", metavar="PASSWORD",
                   help="password of the --evidence-key file(s); others on this machine "
                   "can read it in the process list: prefer the file, or the prompt that "
                   "a terminal gets without either")
    s.add_argument("--evidence-key-password-file", metavar="FILE",
                   help="a file whose first line is the --evidence-key password")
    s.set_defaults(func=cmd_verify, secret=False)
    audit = sub.add_parser("audit").add_subparsers(dest="audit_command", required=True)
    s = audit.add_parser("verify", help="re-check a round's hash chain")
    s.add_argument("round_id")
    s.set_defaults(func=cmd_audit_verify)
    rounds_cmd = sub.add_parser("rounds").add_subparsers(dest="rounds_command", required=True)
    rounds_cmd.add_parser("expire", help="end pending rounds past their deadline (cron)"
                          ).set_defaults(func=cmd_rounds_expire)
    blobs = sub.add_parser("blobs").add_subparsers(dest="blobs_command", required=True)
    s = blobs.add_parser("sweep", help="remove stored documents nothing refers to (cron)")
    s.add_argument("--older-than-minutes", type=int, default=60,
                   help="leave blobs younger than this (at least 10)")
    s.set_defaults(func=cmd_blobs_sweep)
    lta = sub.add_parser("lta").add_subparsers(dest="lta_command", required=True)
    s = lta.add_parser("renew", help="re-timestamp archived documents (run it from cron)")
    s.add_argument("--days", type=int, default=365,
                   help="renew documents last timestamped more than this many days ago")
    s.add_argument("--round", help="renew this round's document now")
    s.set_defaults(func=cmd_lta_renew)
    s = sub.add_parser("demo", help="one whole round with simulator signers")
    s.add_argument("--out", default="signflow-demo.pdf")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("bankid-simulator", help="the BankID simulator on its own")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--tls", action="store_true",
                   help="HTTPS, and 401 without an RP client certificate (made in keys dir)")
    s.set_defaults(func=cmd_bankid_simulator)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, _settings(args))
    except SignflowError as exc:
        from signflow import logs

        logs.refuse(exc.message)  # JSON once a service (worker …) has set up JSON logs
        return EXIT_USAGE
    except OSError as exc:  # a file or directory named on the command line or in a setting
        print(f"signflow: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        said = _unreachable(exc)
        if said is None:
            raise
        print(f"signflow: {said}", file=sys.stderr)
        return EXIT_FAIL


def _unreachable(exc: Exception) -> str | None:
    """A database or Redis that cannot be reached, in a line (no password: the
    driver's first line names host and port only); None for anything else."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import ArgumentError, OperationalError

    if isinstance(exc, ArgumentError):  # the URL, from a path that made its own engine
        from signflow.db import unusable_url

        return unusable_url(load_settings().database_url).message
    if isinstance(exc, OperationalError):  # refused, unknown host, password, no such database
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"the database (SIGNFLOW_DATABASE_URL) cannot be used: {reason}"
    if isinstance(exc, RedisConnectionError):
        return f"Redis (SIGNFLOW_REDIS_URL) cannot be reached: {exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
