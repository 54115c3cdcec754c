"""A signer's open order at the identity provider: which provider, and ending it.

Shared by the round's use cases (:mod:`signflow.core.rounds`, declining and
cancelling), the signer's (:mod:`signflow.core.signing`), the secretariat's
(:mod:`signflow.core.manage`) and the housekeeping's
(:mod:`signflow.core.housekeeping`, expiry).
"""

from __future__ import annotations

import functools

from sqlalchemy.orm import Session

from signflow.core.models import Signer
from signflow.core.ports import IdentityProvider, Services
from signflow.db import after_commit
from signflow.errors import ProviderError


def provider_for(svc: Services, signer: Signer) -> IdentityProvider:
    """The identity provider *signer* signs with: their round's."""
    return svc.providers[signer.round.provider]


def cancel_order_quietly(provider: IdentityProvider, order_ref: str) -> None:
    """Ask *provider* to cancel *order_ref*; an order it no longer knows is not an error."""
    try:
        provider.cancel(order_ref)
    except ProviderError:
        pass  # already finished or unknown to the provider: nothing left to cancel


def end_open_orders(session: Session, svc: Services, signers: list[Signer]) -> None:
    """Forget *signers*' open orders now; tell the provider once committed.

    The provider is an HTTP call that may take seconds, so it is not made
    while the round is locked.  It is resolved now: after the commit the
    signer's round may no longer be loadable from the session.
    """
    for s in signers:
        if s.pending_order_ref:
            after_commit(session, functools.partial(
                cancel_order_quietly, provider_for(svc, s), s.pending_order_ref))
            s.pending_order_ref = None
