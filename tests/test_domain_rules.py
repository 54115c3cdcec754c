"""Personal numbers, roles, the transition table, the round JSON."""

import pytest

from signflow.core.people import canonical_role, normalize_personal_number
from signflow.core.rounds import parse_round_spec
from signflow.core.states import RoundStatus, SignerStatus, transition
from signflow.errors import IllegalTransition, InvalidInput


class Obj:
    def __init__(self, status):
        self.status = status


@pytest.mark.parametrize("raw", ["198001012387", "19800101-2387", "19800161-2384"])
def test_valid_personal_numbers(raw):
    assert len(normalize_personal_number(raw)) == 12


@pytest.mark.parametrize("raw", ["198001012388", "8001012387", "19801301-2380", "abc", ""])
def test_invalid_personal_numbers(raw):
    with pytest.raises(InvalidInput):
        normalize_personal_number(raw)


def test_roles_accept_english_aliases():
    assert canonical_role("Chair") == "ordforande"
    assert canonical_role("adjuster") == "justerare"
    assert canonical_role("secretary") == "sekreterare"
    assert canonical_role("ledamot") == "ledamot"
    with pytest.raises(InvalidInput):
        canonical_role("x; drop")


def test_transitions():
    r = Obj("pending")
    assert transition(r, RoundStatus.COMPLETED) is True
    assert transition(r, RoundStatus.COMPLETED) is False  # repeated: harmless no-op
    with pytest.raises(IllegalTransition):
        transition(r, RoundStatus.CANCELLED)
    s = Obj("waiting")
    with pytest.raises(IllegalTransition):
        transition(s, SignerStatus.SIGNED)


@pytest.mark.parametrize("bad", [
    [], "x", {"title": "", "signers": [{"name": "a", "email": "a@b.se", "role": "justerare"}]},
    {"title": "t", "signers": []},
    {"title": "t", "language": "de",
     "signers": [{"name": "a", "email": "a@b.se", "role": "justerare"}]},
    {"title": "t", "signers": [{"name": "a", "email": "not-mail", "role": "justerare"}]},
    {"title": "t", "signers": [{"name": "a", "email": "a@b.se", "role": "justerare",
                                "personal_number": "198001012388"}]},
])
def test_bad_round_specs_are_refused(bad):
    with pytest.raises(InvalidInput):
        parse_round_spec(bad)
