"""SQLAlchemy 2 engine and sessions, plus the after-commit hook.

Side effects (mail, jobs) are registered on the session with
:func:`after_commit` and run only once the transaction has committed, so a
rolled-back change never sends an e-mail or starts a job.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from signflow.errors import ConfigError

log = logging.getLogger(__name__)

_PENDING = "signflow_after_commit"
_HELD = "signflow_held"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
            # SQLite's own lower() knows only A-Z: "Åsa" would not be found as "åsa"
            dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ArgumentError:  # its message may hold the URL, password and all
        raise unusable_url(url) from None


def unusable_url(url: str) -> ConfigError:
    """The error for a database URL SQLAlchemy refused, without the URL itself."""
    return ConfigError(f"SIGNFLOW_DATABASE_URL: SQLAlchemy cannot use a "
                       f"{url.partition('://')[0]}:// URL "
                       "(PostgreSQL: postgresql+psycopg://user:password@host/name)")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_soft_rollback", _drop_after_commit)
    event.listen(factory, "after_transaction_end", _drop_held)
    return factory


def try_lock(session: Session, name: str) -> bool:
    """Take the lock *name* for the rest of *session*'s transaction, if no other
    process holds it (a PostgreSQL advisory lock); SQLite has one writer: True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def hold(session: Session, key: str) -> None:
    """Note that *session*'s transaction holds the row lock named *key*.

    Locks end with the transaction, and so does the note; :func:`holds` lets
    code that relies on a lock (the audit chain) insist on it.  Not inside a
    savepoint, whose rollback would release the lock but keep the note.
    """
    if session.in_nested_transaction():
        raise RuntimeError("row locks are taken outside savepoints")
    session.info.setdefault(_HELD, {}).setdefault(key, {})


def holds(session: Session, key: str) -> bool:
    return key in session.info.get(_HELD, {})


def held(session: Session, key: str) -> dict[str, Any]:
    """Facts the holder of the lock *key* noted about the rows it guards (the audit
    chain's head), true for as long as it holds them: gone when the transaction
    ends, and when any savepoint inside it ends (its rollback may undo them)."""
    if not holds(session, key):
        raise RuntimeError(f"{key} is not held")
    notes: dict[str, Any] = session.info[_HELD][key]
    return notes


def _drop_held(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_HELD, None)
    else:
        for notes in session.info.get(_HELD, {}).values():
            notes.clear()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run *action* once *session*'s current transaction has committed."""
    session.info.setdefault(_PENDING, []).append(action)


def _run_after_commit(session: Session) -> None:
    """Run the side effects; one that fails is logged and the rest still run.

    The change is committed by now, so an exception here could only turn a
    done deed into an error response (inviting a retry that repeats it) and
    skip the actions after it.
    """
    actions = session.info.pop(_PENDING, [])
    for action in actions:
        try:
            action()
        except Exception as exc:
            # Name the function only: a partial's repr would print its
            # arguments, and an invitation's carries the signer's link.
            func = getattr(action, "func", action)
            log.error("after the commit, %s failed: %s: %s",
                      getattr(func, "__qualname__", "an action"), type(exc).__name__, exc,
                      exc_info=True)


def _drop_after_commit(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work for jobs and CLI commands: commit on success, else roll back."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
