"""``Idempotency-Key`` on round creation: a retried request makes one round.

The key is remembered per organisation for a day with a fingerprint of the
request, in the transaction that creates the round.  The same key with the
same request returns that round; with another request it is refused.  Two
requests racing with one key: the second's commit fails on the key's primary
key and the caller answers with the first one's round (see the API).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from signflow.core.models import IdempotencyKey, Round, User
from signflow.errors import IllegalTransition, InvalidInput

#: How long a key is remembered.
TTL = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1 to 200 visible ASCII characters",
                           field="Idempotency-Key")
    return key


def fingerprint(round_: object, document: bytes) -> str:
    """The request's fingerprint: the round's JSON as parsed (so that the same
    round written with other spacing or key order is the same request), and the
    document's SHA-256."""
    canonical = json.dumps(round_, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256()
    for part in (canonical.encode("utf-8"), hashlib.sha256(document).digest()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def earlier_round(session: Session, user: User, key: str, print_: str,
                  now: datetime) -> Round | None:
    """The round this key already made for this request, if any (a key older than
    :data:`TTL` is forgotten); :class:`IllegalTransition` if it made one for another."""
    row = session.get(IdempotencyKey, (user.organisation_id, key))
    if row is None:
        return None
    if row.created_at < now - TTL:
        session.delete(row)
        session.flush()
        return None
    if row.fingerprint != print_:
        raise IllegalTransition("this Idempotency-Key was used for another request; "
                                "use a new key for a new round", code="idempotency_key_reused")
    return session.get(Round, row.round_id)


def remember(session: Session, user: User, key: str, print_: str, round_: Round,
             now: datetime) -> None:
    """Record *key* for *round_* in the caller's transaction."""
    session.add(IdempotencyKey(organisation_id=user.organisation_id, key=key,
                               fingerprint=print_, round_id=round_.id, created_at=now))
