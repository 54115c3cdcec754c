"""Signer roles and Swedish personal numbers."""

from __future__ import annotations

import re
from datetime import date

from signflow.errors import InvalidInput

#: Canonical roles and their labels on the signature page.
ROLE_LABELS: dict[str, dict[str, str]] = {
    "ordforande": {"sv": "Ordförande", "en": "Chair"},
    "justerare": {"sv": "Justerare", "en": "Adjuster"},
    "sekreterare": {"sv": "Sekreterare", "en": "Secretary"},
    "ledamot": {"sv": "Ledamot", "en": "Board member"},
}
ROLE_ALIASES = {
    "chair": "ordforande",
    "ordförande": "ordforande",
    "adjuster": "justerare",
    "secretary": "sekreterare",
    "protokollförare": "sekreterare",
    "board_member": "ledamot",
}
_ROLE_RE = re.compile(r"^[a-z0-9_\-åäö]{2,50}$")


def canonical_role(role: str) -> str:
    """Map a role (Swedish, English alias, or a workflow's own) to its stored form."""
    key = (role or "").strip().lower()
    key = ROLE_ALIASES.get(key, key)
    if not _ROLE_RE.match(key):
        raise InvalidInput(f"role {role!r} is not a valid role", field="role")
    return key


def role_label(role: str, language: str) -> str:
    labels = ROLE_LABELS.get(role)
    if labels:
        return labels.get(language, labels["sv"])
    return role.replace("_", " ").capitalize()


def in_a_sentence(label: str) -> str:
    """A role label inside a sentence: "som justerare", "as chair" (an
    abbreviation such as "KS-ordförande" keeps its capitals)."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


#: The identification method as stored (the provider's Swedish name, which the
#: API returns) in another language, where it has a name of its own there.
_METHODS = {"Mobilt BankID": {"en": "Mobile BankID"}}


def method_in(method: str, language: str) -> str:
    """The identification method in *language*: BankID calls Mobilt BankID
    "Mobile BankID" in English."""
    return _METHODS.get(method, {}).get(language, method)


def role_in(label: str, language: str) -> str:
    """A role as a signature page labels it (in either language), in *language*;
    a role signflow does not know is left as it stands."""
    key = label.strip().lower()
    for labels in ROLE_LABELS.values():
        if key in (labels["sv"].lower(), labels["en"].lower()):
            return labels.get(language, labels["sv"])
    return label


def normalize_personal_number(value: str) -> str:
    """Return ``YYYYMMDDNNNC`` or raise :class:`InvalidInput`.

    Accepts a hyphen (or plus) before the last four digits; checks the date
    (day + 60 for coordination numbers) and the Luhn check digit.
    """
    raw = (value or "").strip()
    m = re.fullmatch(r"([0-9]{8})[-+]?([0-9]{4})", raw)  # (\d is any script's digits)
    if not m:
        raise InvalidInput(
            "personal_number must be YYYYMMDDNNNC (12 digits)", field="personal_number"
        )
    digits = m.group(1) + m.group(2)
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if day > 60:
        day -= 60
    try:
        date(year, month, day)
    except ValueError:
        raise InvalidInput("personal_number has no valid date", field="personal_number") from None
    if not luhn_ok(digits[2:]):
        raise InvalidInput("personal_number has a wrong check digit", field="personal_number")
    return digits


def luhn_ok(ten_digits: str) -> bool:
    total = 0
    for i, ch in enumerate(ten_digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0
