"""Organisations, users, how staff sign in, and their API tokens.

A staff member signs in with BankID by personal number, which is kept only as
a keyed hash (:meth:`~signflow.core.ports.FieldSealer.lookup_hash`): enough to
find the user again, useless without the service's key.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from signflow.core.models import ApiToken, Organisation, User, utcnow
from signflow.core.people import normalize_personal_number
from signflow.core.ports import FieldSealer
from signflow.errors import InvalidInput, NotFound

ROLES = ("secretariat", "auditor", "admin")
#: Longest name of an API token (the column's width).
TOKEN_NAME_MAX = 100
#: ``last_used_at`` is written at most this often per token (not on every call).
LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(
    session: Session, email: str, role: str, *, name: str = "", organisation: str = "Default",
) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if session.scalar(select(User).where(User.email == email)) is not None:
        raise InvalidInput(f"a user {email} exists already", field="email")
    org_name = organisation.strip() or "Default"
    try:
        org = organisation_named(session, org_name)
        if org is None:
            org = Organisation(name=org_name)
            session.add(org)
            session.flush()
        user = User(email=email, role=role, name=name.strip(), organisation_id=org.id)
        session.add(user)
        session.flush()
    except IntegrityError:
        # Someone added the same user or organisation at this very moment.
        raise InvalidInput(f"{email} or organisation {org_name!r} was added at the same "
                           "time by someone else; run the command again",
                           field="email") from None
    return user


def organisation_named(session: Session, name: str) -> Organisation | None:
    """The organisation called *name*, whatever the case of its letters ("kommunen" is
    "Kommunen": two of them would split one secretariat's rounds in two)."""
    return session.scalar(select(Organisation)
                          .where(func.lower(Organisation.name) == name.strip().lower())
                          .order_by(Organisation.created_at).limit(1))


def set_evidence_certificates(session: Session, organisation: str, pem: bytes) -> list[str]:
    """Seal *organisation*'s future evidence to the RSA certificates in *pem* as well.

    Returns their subjects.  An empty *pem* goes back to the service-wide ones.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    org = organisation_named(session, organisation)
    if org is None:
        raise InvalidInput(f"no organisation named {organisation!r}", field="organisation")
    try:
        certs = x509.load_pem_x509_certificates(pem) if pem.strip() else []
    except ValueError:
        raise InvalidInput("the file holds no PEM certificate", field="certificates") from None
    for cert in certs:
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise InvalidInput(f"{cert.subject.rfc4514_string()} has no RSA key: sealed "
                               "evidence needs RSA recipients", field="certificates")
    org.evidence_certs_pem = pem.decode("ascii") if certs else ""
    session.flush()
    return [c.subject.rfc4514_string() for c in certs]


def set_personal_number(session: Session, sealer: FieldSealer, user: User,
                        personal_number: str) -> None:
    """Let *user* sign in with BankID as *personal_number* (checksum-checked).

    Only the keyed hash is stored; a number another user signs in with is refused.
    """
    digest = sealer.lookup_hash(normalize_personal_number(personal_number))
    holder = session.scalar(select(User).where(User.personal_number_hash == digest))
    if holder is not None and holder.id != user.id:
        raise InvalidInput("another user already signs in with that personal number",
                           field="personal_number")
    user.personal_number_hash = digest
    try:
        session.flush()
    except IntegrityError:
        raise InvalidInput("another user was given that personal number at the same time",
                           field="personal_number") from None


def user_for_personal_number(session: Session, sealer: FieldSealer,
                             personal_number: str) -> User | None:
    """The user who signs in as *personal_number*, or None."""
    try:
        digest = sealer.lookup_hash(normalize_personal_number(personal_number))
    except InvalidInput:
        return None
    return session.scalar(select(User).where(User.personal_number_hash == digest))


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def issue_token(session: Session, user: User, days: int, *, name: str = "") -> str:
    """A new random API token (256 bits); only its hash is stored."""
    name = name.strip()
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"a token's name is at most {TOKEN_NAME_MAX} characters",
                           field="name")
    token = "sf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_api_token(token), name=name,
                         expires_at=utcnow() + timedelta(days=days)))
    session.flush()
    return token


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """*user*'s API tokens, newest first (revoked and expired ones too)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of *user*'s own tokens (someone else's is :class:`NotFound`)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("no such API token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def live_token(session: Session, token: str) -> ApiToken | None:
    """The stored token for *token*, unless unknown, revoked or expired."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(token)))
    if row is None or row.revoked_at is not None or row.expires_at < utcnow():
        return None
    return row


def note_token_use(row: ApiToken, now: datetime) -> bool:
    """Record that *row* was used; True when that changed it (at most once a minute)."""
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_GRANULARITY:
        return False
    row.last_used_at = now
    return True


def user_for_token(session: Session, token: str) -> User | None:
    row = live_token(session, token)
    return None if row is None else row.user
