"""States of rounds and signers, and the one table of legal transitions."""

from __future__ import annotations

import enum

from signflow.errors import IllegalTransition


class RoundStatus(enum.StrEnum):
    #: Prepared and certified; waiting for signatures.
    PENDING = "pending"
    #: Every required signer signed; the PDF is sealed (B-LTA).
    COMPLETED = "completed"
    #: A signer declined; nobody else can sign.
    DECLINED = "declined"
    #: The secretariat cancelled the round.
    CANCELLED = "cancelled"
    #: Nobody finished before the round's deadline.
    EXPIRED = "expired"


class SignerStatus(enum.StrEnum):
    #: Not yet invited (sequential order: an earlier signer has not signed).
    WAITING = "waiting"
    #: Has a live link and may sign.
    INVITED = "invited"
    #: BankID completed and the evidence is stored.
    SIGNED = "signed"
    #: Declined, with a reason (a workflow may let the secretariat replace them:
    #: the place is then waiting again, for another person).
    DECLINED = "declined"


class NoticeStatus(enum.StrEnum):
    #: The round completed and the notice of justering has its dates; the
    #: secretariat may still move the posting date.
    PREPARED = "prepared"
    #: Sent to the organisation's notice board (``notice.ready``); fixed from now on.
    PUBLISHED = "published"


TRANSITIONS: dict[type[enum.Enum], dict[enum.Enum, frozenset[enum.Enum]]] = {
    RoundStatus: {
        RoundStatus.PENDING: frozenset({
            RoundStatus.COMPLETED, RoundStatus.DECLINED, RoundStatus.CANCELLED,
            RoundStatus.EXPIRED,
        }),
        RoundStatus.COMPLETED: frozenset(),
        RoundStatus.DECLINED: frozenset(),
        RoundStatus.CANCELLED: frozenset(),
        RoundStatus.EXPIRED: frozenset(),
    },
    SignerStatus: {
        SignerStatus.WAITING: frozenset({SignerStatus.INVITED}),
        SignerStatus.INVITED: frozenset({SignerStatus.SIGNED, SignerStatus.DECLINED}),
        SignerStatus.SIGNED: frozenset(),
        # a decline in a round whose workflow lets the secretariat name another
        SignerStatus.DECLINED: frozenset({SignerStatus.WAITING}),
    },
    NoticeStatus: {
        NoticeStatus.PREPARED: frozenset({NoticeStatus.PUBLISHED}),
        NoticeStatus.PUBLISHED: frozenset(),
    },
}


def transition(obj: object, new: enum.Enum) -> bool:
    """Move ``obj.status`` to *new*.

    Returns ``False`` (and changes nothing) when *obj* is already in *new*, so a
    retried job or a double click is harmless; raises :class:`IllegalTransition`
    for a move the table does not allow.
    """
    current = type(new)(obj.status)  # type: ignore[attr-defined]
    if current == new:
        return False
    if new not in TRANSITIONS[type(new)][current]:
        raise IllegalTransition(
            f"cannot go from {current.value} to {new.value}",
            current=current.value,
            wanted=new.value,
        )
    obj.status = new.value  # type: ignore[attr-defined]
    return True
