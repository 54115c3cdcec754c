"""Organisations, users and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from signflow.core.models import ApiToken, Organisation, User, utcnow
from signflow.errors import InvalidInput

ROLES = ("secretariat", "auditor", "admin")


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
        org = session.scalar(select(Organisation).where(Organisation.name == org_name))
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


def set_evidence_certificates(session: Session, organisation: str, pem: bytes) -> list[str]:
    """Seal *organisation*'s future evidence to the RSA certificates in *pem* as well.

    Returns their subjects.  An empty *pem* goes back to the service-wide ones.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    org = session.scalar(select(Organisation).where(Organisation.name == organisation.strip()))
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


def issue_token(session: Session, user: User, days: int) -> str:
    """A new random API token (256 bits); only its hash is stored."""
    token = "sf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_api_token(token),
                         expires_at=utcnow() + timedelta(days=days)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(token)))
    if row is None or row.revoked_at is not None or row.expires_at < utcnow():
        return None
    return row.user
