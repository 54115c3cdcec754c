"""A signer's personal link: issued, resent, ended, and what an ended one says.

The token itself travels only in the e-mail.  The database keeps its SHA-256
(to find the signer) and the token sealed with the service's field key (so a
reminder can resend the link the signer already has instead of killing it).

An ended link keeps its hash, so that whoever follows it is told what
happened and whom to ask; but only a *live* link
(:func:`signer_for_token`) reads the document or acts.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from signflow.core.models import RetiredLink, Round, Signer
from signflow.core.ports import Services
from signflow.core.states import RoundStatus, SignerStatus
from signflow.errors import ConfigError, NotFound


class LinkState(enum.StrEnum):
    """What a signer's link leads to."""

    #: The round runs and the link is valid: read, sign or decline.
    LIVE = "live"
    #: This signer has signed (the confirmation, whatever the round did since).
    SIGNED = "signed"
    #: This signer declined, which ended the round.
    DECLINED = "declined"
    #: Everyone signed; the round is complete.
    COMPLETED = "completed"
    #: Another signer declined, which ended the round.
    ROUND_DECLINED = "round_declined"
    #: The secretariat cancelled the round.
    CANCELLED = "cancelled"
    #: The round's deadline passed before everyone had signed.
    EXPIRED = "expired"
    #: The round runs, but the secretariat ended this link (another was sent).
    REPLACED = "replaced"


_ROUND_ENDED = {
    RoundStatus.COMPLETED.value: LinkState.COMPLETED,
    RoundStatus.DECLINED.value: LinkState.ROUND_DECLINED,
    RoundStatus.CANCELLED.value: LinkState.CANCELLED,
    RoundStatus.EXPIRED.value: LinkState.EXPIRED,
}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _bound(signer: Signer) -> str:
    return f"link:{signer.id}"


def issue_link(svc: Services, signer: Signer, round_: Round, *, resend: bool) -> str:
    """The token of *signer*'s link: the one they have when *resend* and it is
    still live and kept sealed, else a new one (which ends any earlier link)."""
    if resend:
        kept = kept_token(svc, signer)
        if kept:
            signer.token_expires_at = round_.expires_at
            return kept
    token = secrets.token_urlsafe(32)
    signer.token_hash = hash_token(token)
    signer.link_token_sealed = svc.sealer.seal(token, bound_to=_bound(signer))
    signer.token_expires_at = round_.expires_at
    return token


def kept_token(svc: Services, signer: Signer) -> str:
    """The live link's token, opened; "" when none is kept (links from before they were)."""
    if not (signer.link_token_sealed and signer.token_hash):
        return ""
    try:
        token = svc.sealer.open(signer.link_token_sealed, bound_to=_bound(signer))
    except (ValueError, ConfigError):
        return ""  # sealed under a key we no longer hold: a new link is the way out
    return token if hash_token(token) == signer.token_hash else ""


def may_fetch_signed_copy(signer: Signer) -> bool:
    """A signer who signed may fetch the signed protocol through their own link
    once the round is complete (the link's e-mail says so); nothing else."""
    return (signer.status == SignerStatus.SIGNED.value
            and signer.round.status == RoundStatus.COMPLETED.value)


def revoke_link(signer: Signer, now: datetime) -> None:
    """End *signer*'s link now.  Its hash stays, so the link still finds the
    signer to say what happened, but :func:`signer_for_token` refuses it."""
    if signer.token_expires_at is not None and signer.token_expires_at > now:
        signer.token_expires_at = now
    signer.link_token_sealed = None


def revoke_links(round_: Round, now: datetime, keep: Signer | None = None) -> None:
    """End every link of *round_* (but *keep*'s): the round is over."""
    for s in round_.signers:
        if s is not keep:
            revoke_link(s, now)


def find_link(session: Session, token: str) -> Signer | None:
    """The signer a link token was issued to, live or ended; None if unknown."""
    if not token or len(token) > 100:
        return None
    return session.scalar(select(Signer).where(Signer.token_hash == hash_token(token)))


def find_retired(session: Session, token: str) -> RetiredLink | None:
    """The replaced signer's place a link token was issued for; None if it was not."""
    if not token or len(token) > 100:
        return None
    return session.get(RetiredLink, hash_token(token))


def is_live(signer: Signer, now: datetime) -> bool:
    """Whether *signer*'s link may still read the document and act."""
    return (signer.token_expires_at is not None and signer.token_expires_at > now
            and signer.round.status == RoundStatus.PENDING.value)


def link_state(signer: Signer, now: datetime) -> LinkState:
    """What *signer*'s link should tell whoever follows it."""
    if signer.status == SignerStatus.SIGNED.value:
        return LinkState.SIGNED
    if signer.status == SignerStatus.DECLINED.value:
        return LinkState.DECLINED
    ended = _ROUND_ENDED.get(signer.round.status)
    if ended is not None:
        return ended
    if signer.round.expires_at <= now:
        return LinkState.EXPIRED  # due, and the hourly expiry has not run yet
    return LinkState.LIVE if is_live(signer, now) else LinkState.REPLACED


def live_signer(signer: Signer | None, now: datetime) -> Signer:
    """*signer* (as :func:`find_link` gave it) if its link is live; else NotFound."""
    if signer is None or not is_live(signer, now):
        raise NotFound("no such link")
    return signer


def signer_for_token(session: Session, token: str, now: datetime) -> Signer:
    """The signer a link token belongs to, if the link is live; else NotFound."""
    return live_signer(find_link(session, token), now)
