"""Is the person who signed the person the secretariat invited?

A signature counts only when the identity the provider returns matches the
invitation: the personal number when the secretariat gave one, otherwise the
name.  A workflow may ask for the personal number always, or explicitly for
no check at all; the round keeps the policy it was started with.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class IdentityPolicy(enum.StrEnum):
    """How a round binds signers to their invitations (a workflow's ``identity``)."""

    #: The personal number when the secretariat gave one, else the name (the default).
    AUTO = "auto"
    #: Every signer must be invited with a personal number, and it must match.
    PERSONAL_NUMBER = "personal_number"
    #: The name must match (and the personal number too, where one was given).
    NAME = "name"
    #: Anyone holding the link may sign; stated on the signature page and in reports.
    NONE = "none"


class IdentityCheck(enum.StrEnum):
    """What was actually compared for one signature (carried in its evidence)."""

    PERSONAL_NUMBER = "personal_number"
    NAME = "name"
    NONE = "none"


def check_for(policy: str, has_personal_number: bool) -> IdentityCheck:
    """The comparison *policy* asks for, for a signer with or without a personal number."""
    if has_personal_number:
        return IdentityCheck.PERSONAL_NUMBER  # BankID enforces it too; never ignored
    if IdentityPolicy(policy) is IdentityPolicy.NONE:
        return IdentityCheck.NONE
    return IdentityCheck.NAME


@dataclass(frozen=True)
class Mismatch:
    """Why a completed identification is not the invited person."""

    #: ``personalNumberMismatch`` or ``nameMismatch`` (the signer-facing code).
    code: str
    #: The comparison that failed.
    check: IdentityCheck


def compare(check: IdentityCheck, *, invited_name: str, invited_personal_number: str,
            user: Mapping[str, Any]) -> Mismatch | None:
    """Compare the provider's *user* (``completionData.user``) with the invitation."""
    if check is IdentityCheck.PERSONAL_NUMBER:
        if str(user.get("personalNumber") or "") != invited_personal_number:
            return Mismatch("personalNumberMismatch", check)
        return None
    if check is IdentityCheck.NAME and not names_match(invited_name, user):
        return Mismatch("nameMismatch", check)
    return None


def _fold(text: str) -> str:
    """Lower case without diacritics: "Åsa Öberg-Lindén" → "asa oberg-linden"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _words(text: str) -> list[str]:
    """Words of a name; hyphens, apostrophes and dots separate nothing but join parts."""
    cleaned = "".join(c if c.isalnum() or c in "-'’" else " " for c in _fold(text))
    return [w.strip("-'’") for w in cleaned.split() if w.strip("-'’")]


def _parts(word: str) -> list[str]:
    return [p for p in re.split(r"[-'’]", word) if p]


def _known(text: str) -> set[str]:
    """Every word of *text*, its parts and its joined form ("lind-berg": lind, berg, lindberg)."""
    found: set[str] = set()
    for word in _words(text):
        parts = _parts(word)
        found |= {*parts, "".join(parts)}
    return found


def _word_in(word: str, known: set[str]) -> bool:
    parts = _parts(word)
    return "".join(parts) in known or (len(parts) > 1 and all(p in known for p in parts))


def names_match(invited: str, user: Mapping[str, Any]) -> bool:
    """Does the invited name name the person the provider identified?

    Case, diacritics, hyphens and the order of the names do not matter, and
    the provider's record may carry given names the invitation leaves out.
    Every word of the invitation must be in the person's name, and the
    invitation must name at least one of their given names and one of their
    surnames (where the provider tells them apart), so "Anna" alone never
    matches "Anna Berg".
    """
    given, surname = str(user.get("givenName") or ""), str(user.get("surname") or "")
    full = str(user.get("name") or f"{given} {surname}")
    words = _words(invited)
    known = _known(f"{full} {given} {surname}")
    if not words or not all(_word_in(w, known) for w in words):
        return False
    if given and surname:
        return (any(_word_in(w, _known(given)) for w in words)
                and any(_word_in(w, _known(surname)) for w in words))
    return len(words) >= 2 or _words(full) == words
