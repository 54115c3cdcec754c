"""Faster equality of certificate names, for path building and revocation checks.

asn1crypto compares two names as RFC 5280 § 7.1 says, by preparing every
attribute's string (LDAP stringprep) and listing the types and values of
every RDN - again on every comparison, and on freshly parsed copies of the
same names from each signature's CMS, the DSS and each timestamp.  Path
building and CRL matching compare names hundreds of times per signature:
about a fifth of verifying the sample protocol.

:func:`install` makes ``Name ==`` compare each name's prepared form, computed
once per distinct encoding of its RDNs with asn1crypto's own helpers, so the
answer is asn1crypto's: the same RDN count and order, and per RDN the same
types with equal prepared values.  Two identical encodings are equal at once.
``tests/test_fast_names.py`` holds it to asn1crypto's answer.
"""

from __future__ import annotations

from asn1crypto import x509

_original_eq = x509.Name.__eq__
_original_ne = x509.Name.__ne__


#: Prepared forms by the encoding of the RDN sequence (a name's outer tag, as in
#: a GeneralName, does not change what it names); emptied when it grows past this.
_LIMIT = 4096
_prepared_forms: dict[bytes, tuple] = {}


def _prepared(name: x509.Name) -> tuple[bytes, tuple]:
    """The RDN sequence's encoding, and per RDN in order: its size, its attribute
    types and their prepared values (asn1crypto's own helpers)."""
    seq = name.chosen
    der = seq.dump()
    form = _prepared_forms.get(der)
    if form is None:
        form = tuple((len(rdn), frozenset(rdn._get_types(rdn)), rdn._get_values(rdn))
                     for rdn in seq)
        if len(_prepared_forms) >= _LIMIT:
            _prepared_forms.clear()
        _prepared_forms[der] = form
    return der, form


def _eq(self: x509.Name, other: object) -> bool:
    if not isinstance(other, x509.Name):
        return False
    mine, theirs = _prepared(self), _prepared(other)
    return mine[0] == theirs[0] or mine[1] == theirs[1]


def _ne(self: x509.Name, other: object) -> bool:
    return not _eq(self, other)


def install() -> None:
    """Compare names through the prepared forms in this process (idempotent)."""
    x509.Name.__eq__ = _eq
    x509.Name.__ne__ = _ne
