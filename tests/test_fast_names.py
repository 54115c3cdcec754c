"""Name equality through prepared forms gives asn1crypto's answer (RFC 5280 § 7.1)."""

from __future__ import annotations

import itertools
from collections import OrderedDict

from asn1crypto import x509

from signflow.pdf import fast_names


def name(*rdns: list[tuple[str, str, str]]) -> x509.Name:
    """A name from RDNs of (type, string kind, value) triples, in order."""
    seq = x509.RDNSequence([
        x509.RelativeDistinguishedName([
            x509.NameTypeAndValue({"type": kind, "value": x509.DirectoryString(
                name=string, value=value)}) for kind, string, value in rdn])
        for rdn in rdns])
    return x509.Name(name="", value=seq)


SE = ("country_name", "printable_string", "SE")
NAMES = [
    name([SE], [("common_name", "utf8_string", "Signflow CA")]),
    # case and inner whitespace are not significant after preparation
    name([("country_name", "printable_string", "se")],
         [("common_name", "utf8_string", "signflow  ca")]),
    name([SE], [("common_name", "printable_string", "Signflow CA")]),
    name([("common_name", "utf8_string", "Signflow CA")], [SE]),
    name([SE], [("common_name", "utf8_string", "Signflow CB")]),
    name([SE]),
    # a multi-valued RDN, in either order, and with a different value
    name([("common_name", "utf8_string", "A"), ("organization_name", "utf8_string", "Kommun")]),
    name([("organization_name", "utf8_string", "Kommun"), ("common_name", "utf8_string", "A")]),
    name([("organization_name", "utf8_string", "Kommun"), ("common_name", "utf8_string", "B")]),
    name([("common_name", "utf8_string", "Ärende Östra")]),
    name([("common_name", "utf8_string", "ärende östra")]),
    x509.Name.build(OrderedDict([("country_name", "SE"), ("common_name", "Signflow CA")])),
]


def as_found(n: x509.Name) -> list[x509.Name]:
    """*n* parsed as from a file, plainly and inside a GeneralName (explicitly tagged)."""
    general = x509.GeneralName(name="directory_name", value=n)
    return [x509.Name.load(n.dump()), x509.GeneralName.load(general.dump()).chosen]


def test_every_pair_compares_as_asn1crypto_compares_it():
    verdicts = set()
    found = [copy for n in NAMES for copy in as_found(n)]
    for a, b in itertools.product(found, repeat=2):
        theirs = fast_names._original_eq(a, b)
        assert fast_names._eq(a, b) is theirs, (a.human_friendly, b.human_friendly)
        assert fast_names._ne(a, b) is (not theirs)
        verdicts.add(theirs)
    assert verdicts == {True, False}
    assert fast_names._eq(NAMES[0], NAMES[1]) and not fast_names._eq(NAMES[0], NAMES[3])
    assert fast_names._eq(NAMES[6], NAMES[7]) and not fast_names._eq(NAMES[7], NAMES[8])
    assert not fast_names._eq(NAMES[0], "Signflow CA")


def test_installed_it_is_what_name_equality_does(monkeypatch):
    monkeypatch.setattr(x509.Name, "__eq__", fast_names._original_eq)
    monkeypatch.setattr(x509.Name, "__ne__", fast_names._original_ne)
    fast_names.install()
    assert x509.Name.__eq__ is fast_names._eq and x509.Name.__ne__ is fast_names._ne
    assert NAMES[0] == NAMES[1] and NAMES[0] != NAMES[4]
