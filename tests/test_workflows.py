"""Workflows (issue 12): steps in turn, role limits, scheduled reminders, a
declined place given to another person, and files that say what is wrong."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from signflow.adapters.bankid_sim import PERSONAS
from signflow.core.housekeeping import tick
from signflow.core.models import Round, Signer, utcnow
from signflow.core.workflows import load_workflows
from signflow.demo import links_in_outbox, sign_over_http
from signflow.errors import ConfigError
from tests.conftest import approve_with, create_round, make_user, runtime_for_tests, signers_spec
from tests.test_secretariat_pages import staff

PN = {p.name: p.personal_number for p in PERSONAS}
#: A fourth person, for a place given to someone new (the simulator's "Test Person":
#: one person signs once, so none of the three already in a round may take it).
STAND_IN = "19900214-0003"
#: What a protokoll round names for its notice of justering (tests/test_notice.py).
MEETING = {"body": "Kommunstyrelsen", "meeting_date": "2026-11-25",
           "kept_at": "Kommunkansliet"}


def municipal_signers(tag: str) -> list[dict]:
    return [{**s, "personal_number": PN[s["name"]]} for s in signers_spec(tag)]


def mails(settings) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((settings.data_dir / "outbox").glob("*.json"))]


def statuses(client, auth, round_id: str) -> list[str]:
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    return [s["status"] for s in body["signers"]]


def test_the_shipped_workflows_load():
    workflows = load_workflows(Path("workflows"))
    protokoll = workflows["protokoll"]
    assert protokoll.steps == (("sekreterare",), ("justerare",), ("ordforande",))
    assert (protokoll.limits["justerare"].min, protokoll.limits["justerare"].max) == (1, 2)
    assert protokoll.identity == "personal_number" and protokoll.on_decline == "replace"
    assert protokoll.reminders.at_most == 3 and protokoll.deadline_days == 14
    assert workflows["styrelse"].limits["ledamot"].max == 12
    assert workflows["parallel"].order == "parallel"


def test_the_municipal_protocol_is_signed_step_by_step(client, auth, runtime, settings,
                                                      protocol_pdf):
    signers = municipal_signers("steps")
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="protokoll",
                        **MEETING)
    assert resp.status_code == 201, resp.get_json()
    round_id = resp.get_json()["id"]
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert [x.step for x in round_.signers] == [1, 2, 3]
        assert (round_.expires_at - round_.created_at).days == 14  # the workflow's deadline
    emails = [x["email"] for x in signers]
    # only the secretary's turn: nobody else has a link to sign out of turn with
    assert set(links_in_outbox(settings.data_dir / "outbox")) & set(emails) == {emails[0]}
    assert statuses(client, auth, round_id) == ["invited", "waiting", "waiting"]
    for turn, email in enumerate(emails):
        token = links_in_outbox(settings.data_dir / "outbox")[email]
        assert sign_over_http(client, token, approve_with(runtime))["status"] == "complete"
        later = emails[turn + 1:]
        assert not set(later[1:]) & set(links_in_outbox(settings.data_dir / "outbox"))
    from tests.conftest import wait_for_status

    wait_for_status(client, auth, round_id, "completed")


def test_signers_of_one_step_sign_side_by_side(settings, protocol_pdf, tmp_path, worker):
    (tmp_path / "two.toml").write_text(
        'name = "two"\nidentity = "none"\n'
        '[[steps]]\nroles = ["sekreterare"]\n'
        '[[steps]]\nroles = ["justerare"]\nmin = 2\nmax = 2\n', encoding="utf-8")
    from signflow import create_app

    rt = runtime_for_tests(settings.with_overrides(workflows_dir=tmp_path))
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "steps@example.se")}
        sec, just, _chair = signers_spec("side")
        second = {**just, "name": "Carina Leffler", "email": "just2-side@example.se"}
        one = create_round(client, auth, protocol_pdf, signers=[sec, just], workflow="two")
        assert one.status_code == 400 and one.get_json()["error"]["code"] == "role_count"
        wrong = create_round(client, auth, protocol_pdf, signers=[sec, just, {**second,
                             "role": "ordforande"}], workflow="two")
        assert wrong.status_code == 400 and wrong.get_json()["error"]["code"] == "unknown_role"
        round_id = create_round(client, auth, protocol_pdf, signers=[sec, just, second],
                                workflow="two").get_json()["id"]
        assert statuses(client, auth, round_id) == ["invited", "waiting", "waiting"]
        links = links_in_outbox(settings.data_dir / "outbox")
        assert sign_over_http(client, links[sec["email"]], approve_with(rt))["status"] == \
            "complete"
        assert statuses(client, auth, round_id) == ["signed", "invited", "invited"]
    finally:
        rt.close()


def test_reminders_follow_the_workflows_plan(client, auth, runtime, settings, protocol_pdf):
    signers = municipal_signers("remind")
    round_id = create_round(client, auth, protocol_pdf, signers=signers,
                            workflow="protokoll", **MEETING).get_json()["id"]
    with runtime.sessions() as s:
        invited_at = s.get(Round, round_id).signers[0].invited_at

    def run_at(days: float) -> list[str]:
        with runtime.sessions() as s:
            done = tick(s, runtime.services, now=invited_at + timedelta(days=days))
            s.commit()
        return done.reminded

    secretary = signers[0]["email"]
    token = links_in_outbox(settings.data_dir / "outbox")[secretary]
    assert run_at(1.9) == []                    # first after two days
    assert len(run_at(2.01)) == 1
    assert run_at(2.5) == []                    # then daily
    assert len(run_at(3.02)) == 1 and len(run_at(4.03)) == 1
    assert run_at(9) == []                      # at most three
    sent = [m for m in mails(settings) if m["to"] == secretary
            and m["subject"].startswith("Påminnelse")]
    assert len(sent) == 3 and all(token in m["body"] for m in sent)  # the link they have
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()
    reminded = [e for e in events["events"] if e["type"] == "signer.reminded"]
    assert len(reminded) == 3 and {e["actor"] for e in reminded} == {"system"}
    assert events["intact"]
    # nobody waiting for their turn is reminded
    assert {e["data"]["email"] for e in reminded} == {secretary}


def test_a_declined_place_goes_to_another_person_and_the_round_goes_on(
        client, auth, runtime, settings, protocol_pdf):
    signers = municipal_signers("decline")
    round_id = create_round(client, auth, protocol_pdf, signers=signers,
                            workflow="protokoll", **MEETING).get_json()["id"]
    secretary = signers[0]["email"]
    old_token = links_in_outbox(settings.data_dir / "outbox")[secretary]
    page = client.get(f"/sign/{old_token}")
    assert page.status_code == 200
    assert "Signeringen fortsätter om du nekar" in page.get_data(as_text=True)
    assert "avslutas signeringen för alla" not in page.get_data(as_text=True)
    declined = client.post(f"/sign/{old_token}/decline", json={"reason": "Sjuk"})
    assert declined.status_code == 200, declined.get_json()
    after = client.get(f"/sign/{old_token}").get_data(as_text=True)
    assert "kan be någon annan signera i ditt ställe" in after
    assert "Signeringen är avslutad" not in after  # it is not: the round goes on
    body = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert body["status"] == "pending" and body["signers"][0]["status"] == "declined"
    staff(client, settings, runtime)
    round_page = client.get(f"/rounds/{round_id}").get_data(as_text=True)
    assert (f"{signers[0]['name']} (Sekreterare) nekade att signera. Byt ut personen nedan"
            in round_page)
    told = [m for m in mails(settings) if m["subject"].startswith("Nekad signering")]
    assert told and "Signeringen fortsätter" in told[-1]["body"]

    replaced = client.post(f"/api/v1/rounds/{round_id}/signers/{body['signers'][0]['id']}"
                           "/replace",
                           headers=auth, json={"name": "Test Person",  # not in the round
                                               "email": "ny-sekreterare@example.se",
                                               "personal_number": STAND_IN})
    assert replaced.status_code == 200, replaced.get_json()
    assert statuses(client, auth, round_id)[0] == "invited"
    new_token = links_in_outbox(settings.data_dir / "outbox")["ny-sekreterare@example.se"]
    assert client.get(f"/sign/{old_token}").status_code == 410  # the old link is dead
    assert sign_over_http(client, new_token, approve_with(runtime))["status"] == "complete"
    assert statuses(client, auth, round_id)[:2] == ["signed", "invited"]
    types = [e["type"] for e in client.get(f"/api/v1/rounds/{round_id}/audit",
                                           headers=auth).get_json()["events"]]
    assert types.count("signer.declined") == 1 and types.count("signer.replaced") == 1


@pytest.mark.parametrize("text,line,problem", [
    ('name = "x"\n[[steps]]\nroles = ["sekreterare"]\n[[steps]]\nroles = ["sekreterare"]\n',
     5, "in two steps"),
    ('name = "x"\n[[steps]]\nroles = ["justerare"]\nmin = 3\nmax = 2\n', 4, "above max"),
    ('name = "x"\norder = "parallel"\n[[steps]]\nroles = ["a"]\n', 2, "need order"),
    ('name = "x"\ndeadline = 3\n', 2, "unknown setting 'deadline'"),
    ('name = "x"\n[reminders]\nevery_days = "daily"\n', 3, "must be a number"),
    ('name = "x"\non_decline = "ignore"\n', 2, "on_decline must be one of"),
    ('name = "x"\nroles = = 2\n', 2, "Invalid value"),  # TOML's own: line and column
])
def test_a_broken_workflow_file_names_the_file_line_and_problem(tmp_path, text, line,
                                                                problem):
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_workflows(tmp_path)
    message = err.value.message
    assert "broken.toml" in message and problem in message
    assert f"line {line}" in message, message


def test_a_broken_workflow_stops_start_up(settings, tmp_path):
    from signflow.runtime import build_runtime

    (tmp_path / "bad.toml").write_text('name = "bad"\nidentity = "maybe"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml, line 2: identity must be one of"):
        build_runtime(settings.with_overrides(workflows_dir=tmp_path))


def test_a_replaced_signer_keeps_the_place_and_step(runtime, client, auth, protocol_pdf):
    signers = municipal_signers("keep")
    round_id = create_round(client, auth, protocol_pdf, signers=signers,
                            workflow="protokoll", **MEETING).get_json()["id"]
    with runtime.sessions() as s:
        chair = s.get(Round, round_id).signers[2]
        chair_id, before = chair.id, (chair.position, chair.step, chair.role)
    resp = client.post(f"/api/v1/rounds/{round_id}/signers/{chair_id}/replace", headers=auth,
                       json={"name": "Test Person", "email": "ny-ordf@example.se",
                             "personal_number": STAND_IN})
    assert resp.status_code == 200, resp.get_json()
    with runtime.sessions() as s:
        chair = s.get(Signer, chair_id)
        assert (chair.position, chair.step, chair.role) == before
        assert chair.status == "waiting" and chair.invited_at is None  # not its turn yet


def test_the_deadline_can_be_extended_and_is_recorded(client, auth, runtime, protocol_pdf):
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    with runtime.sessions() as s:
        before = s.get(Round, round_id).expires_at
    later = (before + timedelta(days=10)).date().isoformat()
    for bad, code in [({"deadline": "igår"}, "invalid_input"),
                      ({"deadline": (before - timedelta(days=1)).date().isoformat()},
                       "deadline_not_later"),
                      ({"deadline": "2020-01-01"}, "deadline_past")]:
        resp = client.post(f"/api/v1/rounds/{round_id}/deadline", headers=auth, json=bad)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code, bad
    resp = client.post(f"/api/v1/rounds/{round_id}/deadline", headers=auth,
                       json={"deadline": later})
    assert resp.status_code == 200, resp.get_json()
    # the same moment, written as every other time of the API (UTC, Z)
    read_back = client.get(f"/api/v1/rounds/{round_id}", headers=auth).get_json()
    assert resp.get_json()["expires_at"] == read_back["expires_at"]
    assert read_back["expires_at"].endswith("Z")
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert round_.expires_at > before + timedelta(days=9)
        assert all(x.token_expires_at == round_.expires_at for x in round_.signers)
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()
    assert events["events"][-1]["type"] == "round.deadline_extended" and events["intact"]
    assert utcnow() < round_.expires_at


def test_the_workflow_says_who_gets_the_signed_protocol(settings, protocol_pdf, tmp_path,
                                                        worker):
    (tmp_path / "quiet.toml").write_text(
        'name = "quiet"\nidentity = "none"\nnotify = ["secretariat"]\n'
        '[[steps]]\nroles = ["sekreterare"]\n', encoding="utf-8")
    from signflow import create_app
    from tests.conftest import wait_for_mail, wait_for_status

    rt = runtime_for_tests(settings.with_overrides(workflows_dir=tmp_path))
    try:
        client = create_app(settings, rt).test_client()
        auth = {"Authorization": "Bearer " + make_user(rt, "tyst@example.se")}
        secretary = signers_spec("quiet")[0]
        round_id = create_round(client, auth, protocol_pdf, signers=[secretary],
                                workflow="quiet").get_json()["id"]
        token = links_in_outbox(settings.data_dir / "outbox")[secretary["email"]]
        assert sign_over_http(client, token, approve_with(rt))["status"] == "complete"
        wait_for_status(client, auth, round_id, "completed")
        assert wait_for_mail(settings, lambda m: m["to"] == "tyst@example.se"
                             and m["subject"].startswith("Signerat"))
        copies = [m for m in mails(settings) if m["to"] == secretary["email"]
                  and m["subject"].startswith("Signerat protokoll")]
        assert copies == []  # the workflow tells the secretariat only
    finally:
        rt.close()
