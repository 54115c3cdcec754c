"""The notice of justering (anslag, issue 12): the Swedish calendar, the dates
across weekends, month ends and holidays, and a protokoll round's notice from
completion to the notice board."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pikepdf
import pytest

from signflow.core.audit import EventType
from signflow.core.holidays import days_off, easter_sunday, holiday_name, is_working_day
from signflow.core.housekeeping import tick
from signflow.core.models import Notice, Round
from signflow.core.notice import (
    SWEDEN,
    default_posting_date,
    justering_date,
    notice_dates,
    takedown_date,
)
from signflow.core.workflows import load_workflows
from signflow.errors import ConfigError, InvalidInput
from signflow.pdf.notice import NoticeSheet, notice_items
from signflow.pdf.pages import A4, MARGIN
from signflow.pdf.report import text_width
from tests.conftest import create_round, make_user, sign_all, wait_for_status
from tests.test_webhooks import Receiver, as_described, register
from tests.test_workflows import municipal_signers


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- the calendar ---------------------------------------------------------------------

@pytest.mark.parametrize("year,easter", [
    (2024, "2024-03-31"), (2025, "2025-04-20"), (2026, "2026-04-05"), (2027, "2027-03-28"),
    (2038, "2038-04-25"), (2285, "2285-03-22"),  # the latest and earliest Easters
])
def test_easter_follows_the_gregorian_computus(year, easter):
    assert easter_sunday(year) == d(easter)


def test_the_swedish_days_off_of_2026():
    named = {v: k.isoformat() for k, v in days_off(2026).items()}
    assert named == {
        "Nyårsdagen": "2026-01-01", "Trettondedag jul": "2026-01-06",
        "Långfredagen": "2026-04-03", "Påskdagen": "2026-04-05", "Annandag påsk": "2026-04-06",
        "Första maj": "2026-05-01", "Kristi himmelsfärdsdag": "2026-05-14",
        "Pingstdagen": "2026-05-24", "Sveriges nationaldag": "2026-06-06",
        "Midsommarafton": "2026-06-19", "Midsommardagen": "2026-06-20",
        "Alla helgons dag": "2026-10-31", "Julafton": "2026-12-24", "Juldagen": "2026-12-25",
        "Annandag jul": "2026-12-26", "Nyårsafton": "2026-12-31",
    }


@pytest.mark.parametrize("day,name", [
    ("2025-06-20", "Midsommarafton"), ("2025-11-01", "Alla helgons dag"),
    ("2027-06-25", "Midsommarafton"), ("2027-11-06", "Alla helgons dag"),
    ("2027-05-06", "Kristi himmelsfärdsdag"), ("2027-03-26", "Långfredagen"),
    ("2025-05-29", "Kristi himmelsfärdsdag"), ("2026-06-18", ""),
])
def test_movable_days_off_in_other_years(day, name):
    assert holiday_name(d(day)) == name


def test_working_days_are_weekdays_that_are_not_days_off():
    assert is_working_day(d("2026-01-30"))  # a Friday
    assert not is_working_day(d("2026-01-31")) and not is_working_day(d("2026-02-01"))
    assert not is_working_day(d("2026-12-24"))  # julafton, a Thursday: counted as a holiday
    assert is_working_day(d("2026-04-02"))  # skärtorsdag is a working day


# -- the dates --------------------------------------------------------------------------

@pytest.mark.parametrize("justering,posting,takedown", [
    # an ordinary week: the next day; three weeks later is a Wednesday
    ("2026-01-13", "2026-01-14", "2026-02-04"),
    # a Thursday at the month's end: Friday 30 January, down Friday 20 February
    ("2026-01-29", "2026-01-30", "2026-02-20"),
    # a Friday at the month's end: neither Saturday nor Sunday is a working day, so
    # the justering day itself
    ("2026-01-30", "2026-01-30", "2026-02-20"),
    # a Saturday: Sunday is not, Monday 2 February (the next month) is
    ("2026-01-31", "2026-02-02", "2026-02-23"),
    # the last of February into March; 2028 is a leap year
    ("2026-02-27", "2026-02-27", "2026-03-20"),
    ("2028-02-28", "2028-02-29", "2028-03-21"),
    # skärtorsdag: Långfredag and påskafton follow, so the same day
    ("2026-04-02", "2026-04-02", "2026-04-23"),
    # the day before midsommarafton
    ("2026-06-18", "2026-06-18", "2026-07-09"),
    # the year's turn: nyårsafton and nyårsdagen follow 30 December
    ("2026-12-30", "2026-12-30", "2027-01-20"),
    # 23 December: julafton and juldagen follow
    ("2026-12-23", "2026-12-23", "2027-01-13"),
])
def test_the_notices_dates(justering, posting, takedown):
    assert default_posting_date(d(justering)) == d(posting)
    assert takedown_date(d(posting)) == d(takedown)


@pytest.mark.parametrize("posting,takedown,why", [
    ("2026-01-31", "2026-02-23", "a Saturday: to Monday"),
    ("2026-03-13", "2026-04-07", "Långfredagen, then Easter to Annandag påsk: to Tuesday"),
    ("2026-04-23", "2026-05-15", "Kristi himmelsfärdsdag: to Friday"),
    ("2026-05-29", "2026-06-22", "midsommarafton: to Monday"),
    ("2026-12-03", "2026-12-28", "julafton, juldagen, annandag jul, the weekend"),
    ("2026-12-10", "2027-01-04", "nyårsafton, nyårsdagen, the weekend: into the next year"),
    ("2026-12-16", "2027-01-07", "trettondedag jul: to Thursday"),
])
def test_an_appeal_period_that_ends_on_a_day_off_runs_to_the_next_working_day(
        posting, takedown, why):
    assert takedown_date(d(posting)) == d(takedown), why


def test_justering_is_the_swedish_day_of_completion():
    # 23:30 UTC on 30 January is already 31 January in Stockholm (UTC+1)
    assert justering_date(datetime(2026, 1, 30, 23, 30, tzinfo=UTC)) == d("2026-01-31")
    # and in summer time (UTC+2) 22:30 UTC is past midnight too
    assert justering_date(datetime(2026, 6, 30, 22, 30, tzinfo=UTC)) == d("2026-07-01")
    assert justering_date(datetime(2026, 6, 30, 21, 30, tzinfo=UTC)) == d("2026-06-30")


def test_the_posting_date_may_be_moved_within_two_days_after_the_justering_only():
    completed = datetime(2026, 1, 30, 10, 0, tzinfo=UTC)  # Friday
    assert notice_dates(completed).posting == d("2026-01-30")
    moved = notice_dates(completed, d("2026-02-01"))  # Sunday: a notice board is online
    assert (moved.posting, moved.takedown) == (d("2026-02-01"), d("2026-02-23"))
    for outside in ("2026-01-29", "2026-02-02"):
        with pytest.raises(InvalidInput) as err:
            notice_dates(completed, d(outside))
        assert err.value.fields["field"] == "posting_date"
        assert "2026-01-30" in err.value.message and "2026-02-01" in err.value.message


# -- the workflow setting ---------------------------------------------------------------

def test_the_municipal_protocol_prepares_a_notice_and_others_do_not():
    workflows = load_workflows(Path("workflows"))
    assert workflows["protokoll"].notice is True
    assert not workflows["styrelse"].notice and not workflows["standard"].notice


def test_a_notice_setting_that_is_not_true_or_false_names_its_line(tmp_path):
    (tmp_path / "broken.toml").write_text('name = "x"\nnotice = "ja"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_workflows(tmp_path)
    assert "broken.toml, line 2" in err.value.message
    assert "notice must be true or false" in err.value.message


def test_a_protokoll_round_needs_its_body_and_meeting_date(client, auth, protocol_pdf):
    signers = municipal_signers("facts")
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="protokoll")
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["field"] == "body" and err["fields_missing"] == ["body", "meeting_date",
                                                                "kept_at"], err
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="protokoll",
                        body="Kommunstyrelsen", meeting_date="25/11/2026")
    assert resp.status_code == 400 and resp.get_json()["error"]["field"] == "meeting_date"


# -- a round's notice ---------------------------------------------------------------------

MEETING = {"body": "Kommunstyrelsen", "meeting_date": "2026-11-25",
           "kept_at": "Kommunkansliet, Stadshuset"}


@pytest.fixture
def protokoll_round(client, auth, runtime, settings, protocol_pdf):
    """A protokoll round signed to completion by its three signers: its id."""
    signers = municipal_signers("notice")
    resp = create_round(client, auth, protocol_pdf, signers=signers, workflow="protokoll",
                        **MEETING)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["body"] == "Kommunstyrelsen"
    round_id = resp.get_json()["id"]
    for signer in signers:  # the steps run in turn: each link is mailed when it is due
        sign_all(client, runtime, settings, [signer])
    wait_for_status(client, auth, round_id, "completed")
    return round_id


def audit_types(client, auth, round_id: str) -> list[str]:
    events = client.get(f"/api/v1/rounds/{round_id}/audit", headers=auth).get_json()["events"]
    return [e["type"] for e in events]


def test_a_completed_protokoll_round_has_a_prepared_notice(protokoll_round, client, auth,
                                                           runtime):
    resp = client.get(f"/api/v1/rounds/{protokoll_round}/notice", headers=auth)
    assert resp.status_code == 200, resp.get_json()
    got = resp.get_json()
    with runtime.sessions() as s:
        completed = s.get(Round, protokoll_round).completed_at
    justering = completed.astimezone(SWEDEN).date()
    posting = default_posting_date(justering)
    assert got == got | {
        "round": protokoll_round, "state": "prepared", "body": "Kommunstyrelsen",
        "meeting_date": "2026-11-25", "kept_at": "Kommunkansliet, Stadshuset",
        "justering_date": justering.isoformat(), "posting_date": posting.isoformat(),
        "takedown_date": takedown_date(posting).isoformat(), "published_at": None}
    assert audit_types(client, auth, protokoll_round)[-1] == EventType.NOTICE_PREPARED


def test_the_round_keeps_its_workflows_notice_setting_from_the_start(
        client, auth, runtime, protocol_pdf):
    """Whether completion prepares a notice is copied at the start: a workflow file
    edited mid-round, or a worker with other files, changes nothing."""
    from signflow.core.notice import wants_notice

    made = {}
    for workflow, extra in (("protokoll", MEETING), ("parallel", {})):
        resp = create_round(client, auth, protocol_pdf, signers=municipal_signers(workflow),
                            workflow=workflow, **extra)
        assert resp.status_code == 201, resp.get_json()
        made[workflow] = resp.get_json()["id"]
    svc = runtime.services
    with runtime.sessions() as s:
        protokoll, parallel = s.get(Round, made["protokoll"]), s.get(Round, made["parallel"])
        assert (protokoll.notice, parallel.notice) == (True, False)
        edited = replace(svc, workflows={})  # as if the files had gone or changed since
        assert wants_notice(edited, protokoll) and not wants_notice(edited, parallel)
        protokoll.notice = None  # a round from before the setting was copied
        assert wants_notice(svc, protokoll) and not wants_notice(edited, protokoll)
        s.rollback()


def test_a_round_of_another_workflow_has_no_notice(completed_round, client, auth):
    body, _ = completed_round
    assert client.get(f"/api/v1/rounds/{body['id']}/notice", headers=auth).status_code == 404


def test_the_secretariat_moves_the_posting_date_within_the_window(
        protokoll_round, client, auth, runtime):
    url = f"/api/v1/rounds/{protokoll_round}/notice"
    justering = date.fromisoformat(client.get(url, headers=auth).get_json()["justering_date"])
    last = justering + timedelta(days=2)
    moved = client.post(url, headers=auth, json={"posting_date": last.isoformat()})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["posting_date"] == last.isoformat()
    assert moved.get_json()["takedown_date"] == takedown_date(last).isoformat()
    for outside in (justering - timedelta(days=1), justering + timedelta(days=3)):
        refused = client.post(url, headers=auth, json={"posting_date": outside.isoformat()})
        assert refused.status_code == 400
        assert refused.get_json()["error"]["field"] == "posting_date"
    bad = client.post(url, headers=auth, json={"posting_date": "snart"})
    assert bad.status_code == 400
    assert client.get(url, headers=auth).get_json()["posting_date"] == last.isoformat()
    assert audit_types(client, auth, protokoll_round).count("notice.adjusted") == 1
    auditor = {"Authorization": f"Bearer {make_user(runtime, 'revisor-n@example.se', 'auditor')}"}
    assert client.get(url, headers=auditor).status_code == 200  # readers read
    assert client.post(url, headers=auditor,
                       json={"posting_date": justering.isoformat()}).status_code == 403


def test_publishing_tells_the_notice_board_and_is_final(protokoll_round, client, auth,
                                                        runtime):
    receiver = Receiver()
    try:
        register(client, auth, receiver.url, events=["notice.ready"])
        url = f"/api/v1/rounds/{protokoll_round}/notice"
        planned = client.get(url, headers=auth).get_json()["posting_date"]
        published = client.post(f"{url}/publish", headers=auth)
        assert published.status_code == 200, published.get_json()
        assert published.get_json()["state"] == "published"
        assert published.get_json()["board"] in ("pending", "delivered")
        # published now, it goes up today: the appeal period runs from today
        today = datetime.now(SWEDEN).date()
        assert published.get_json()["posting_date"] == today.isoformat()
        assert published.get_json()["takedown_date"] == takedown_date(today).isoformat()
        assert published.get_json()["late"] is False
        receiver.wait_for(1)
        [got] = [as_described(g["body"]) for g in receiver.got]
        assert got["event"] == "notice.ready" and got["round"]["id"] == protokoll_round
        assert got["data"]["notice"]["posting_date"] == published.get_json()["posting_date"]
        assert got["data"]["notice"]["state"] == "published"
        assert got["data"]["pdf"].endswith(f"/api/v1/rounds/{protokoll_round}/notice.pdf")
        events = client.get(f"/api/v1/rounds/{protokoll_round}/audit",
                            headers=auth).get_json()["events"]
        assert events[-1]["type"] == "notice.published"
        assert events[-1]["data"]["boards"] == 1 and "late" not in events[-1]["data"]
        if planned != today.isoformat():
            assert events[-1]["data"]["planned_posting_date"] == planned
        for _ in range(50):  # the receiver answered; the delivery is marked just after
            if client.get(url, headers=auth).get_json()["board"] == "delivered":
                break
            time.sleep(0.1)
        assert client.get(url, headers=auth).get_json()["board"] == "delivered"
        again = client.post(f"{url}/publish", headers=auth)
        assert again.status_code == 409
        later = client.post(url, headers=auth,
                            json={"posting_date": published.get_json()["justering_date"]})
        assert later.status_code == 409
    finally:
        receiver.server.shutdown()


def test_the_scheduler_publishes_when_the_posting_day_has_come(protokoll_round, runtime):
    with runtime.sessions() as s:
        posting = s.get(Notice, protokoll_round).posting_date
    day_before = datetime.combine(posting - timedelta(days=1), datetime.min.time(),
                                  tzinfo=SWEDEN).replace(hour=12)
    morning = datetime.combine(posting, datetime.min.time(), tzinfo=SWEDEN).replace(hour=0,
                                                                                   minute=1)
    with runtime.sessions() as s:
        if day_before.date() >= s.get(Notice, protokoll_round).justering_date:
            assert protokoll_round not in tick(s, runtime.services, now=day_before).notices
            s.commit()
        assert tick(s, runtime.services, now=morning).notices == [protokoll_round]
        s.commit()
        assert tick(s, runtime.services, now=morning).notices == []  # once only
        s.commit()
    with runtime.sessions() as s:
        notice = s.get(Notice, protokoll_round)
        assert notice.status == "published" and notice.published_at is not None


def test_the_notice_pdf_is_sealed_by_the_service(protokoll_round, client, auth, tmp_path):
    resp = client.get(f"/api/v1/rounds/{protokoll_round}/notice.pdf", headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    verdict = client.post("/api/v1/verify",
                          data={"document": (io.BytesIO(resp.data), "anslag.pdf")}).get_json()
    assert verdict["indication"] == "TOTAL-PASSED", verdict
    [seal] = [s for s in verdict["signatures"] if s["kind"] != "timestamp"]
    assert (seal["kind"], seal["pades_level"]) == ("certification", "B-LTA"), seal
    with pikepdf.open(io.BytesIO(resp.data)) as pdf:
        assert len(pdf.pages) == 1
    from pyhanko.pdf_utils.reader import PdfFileReader

    [certification] = PdfFileReader(io.BytesIO(resp.data)).embedded_signatures[:1]
    assert certification.sig_object["/Reason"] == "Anslag om justering utfärdat av signflow"
    # before it is up, the sheet says it is a draft; once published, not
    draft, path = tmp_path / "draft.pdf", tmp_path / "published.pdf"
    draft.write_bytes(resp.data)
    assert client.post(f"/api/v1/rounds/{protokoll_round}/notice/publish",
                       headers=auth).status_code == 200
    path.write_bytes(client.get(f"/api/v1/rounds/{protokoll_round}/notice.pdf",
                                headers=auth).data)
    if shutil.which("pdftotext"):
        texts = [subprocess.run(["pdftotext", str(p), "-"], capture_output=True, text=True,
                                check=True).stdout for p in (draft, path)]
        assert "UTKAST – inte uppsatt på anslagstavlan" in texts[0]
        assert "UTKAST" not in texts[1] and "har tillkännagetts genom anslag" in texts[1]


def test_another_organisations_notice_is_not_found(protokoll_round, client, runtime):
    other = {"Authorization": "Bearer " + make_user(runtime, "sek-annan@example.se",
                                                    org="Annan kommun")}
    url = f"/api/v1/rounds/{protokoll_round}/notice"
    assert client.get(url, headers=other).status_code == 404
    assert client.get(f"{url}.pdf", headers=other).status_code == 404
    assert client.post(url, headers=other, json={"posting_date": "2026-12-03"}).status_code \
        == 404
    assert client.post(f"{url}/publish", headers=other).status_code == 404


def test_the_notice_page_keeps_every_line_inside_the_margins():
    sheet = NoticeSheet(
        organisation="Familjen Helsingborg – " * 6, body="Kommunstyrelsens arbetsutskott " * 5,
        title="Protokoll från kommunstyrelsens sammanträde " * 4, meeting_date="2026-11-25",
        justering_date="2026-11-30", posting_date="2026-12-01", takedown_date="2026-12-22",
        kept_at="Kommunkansliet, Stadshuset, Drottninggatan 2, Helsingborg " * 3,
        signed_by="signflow", round_id="a" * 32)
    items = notice_items(sheet)
    for item in items:
        assert item.x >= MARGIN and item.x + text_width(item.text, item.size, item.bold) <= (
            A4[0] - MARGIN + 0.01), item
        assert 30 <= item.y <= A4[1] - 40, item
    texts = " ".join(i.text for i in items)
    for words in ("Anslag/bevis om justering", "Sammanträdesdatum", "2026-12-22",
                  "Datum då anslaget sätts upp", "Förvaringsplats för protokollet",
                  "Underskrift"):
        assert words in texts


def test_a_notice_published_late_says_the_day_it_went_up_and_that_it_was_late(
        protokoll_round, client, auth, runtime, settings):
    """The scheduler was down past the two days KL 8 kap. 12 § allows: the notice
    names the day it went up and a take-down day three weeks from that, and the
    trail and the API say it was late."""
    with runtime.sessions() as s:
        found = s.get(Notice, protokoll_round)
        justering, planned = found.justering_date, found.posting_date
    late_day = justering + timedelta(days=6)
    at = datetime.combine(late_day, datetime.min.time(), tzinfo=SWEDEN).replace(hour=9)
    with runtime.sessions() as s:
        assert tick(s, runtime.services, now=at).notices == [protokoll_round]
        s.commit()
    got = client.get(f"/api/v1/rounds/{protokoll_round}/notice", headers=auth).get_json()
    assert got["posting_date"] == late_day.isoformat() and got["late"] is True
    assert got["takedown_date"] == takedown_date(late_day).isoformat()
    assert got["board"] == "none"
    last = client.get(f"/api/v1/rounds/{protokoll_round}/audit",
                      headers=auth).get_json()["events"][-1]
    assert last["type"] == "notice.published"
    assert last["data"] | {"late": True, "due_by": (justering + timedelta(days=2)).isoformat(),
                           "planned_posting_date": planned.isoformat(),
                           "posting_date": late_day.isoformat(), "boards": 0} == last["data"]
    import uuid

    from tests.staff_kit import sign_in_client

    page_client = client.application.test_client()
    email = f"sek-late-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email, "secretariat")
    sign_in_client(page_client, settings, runtime, email)
    page = page_client.get(f"/rounds/{protokoll_round}?lang=sv").get_data(as_text=True)
    assert "sattes upp senare än lagen tillåter" in page
    assert (justering + timedelta(days=2)).isoformat() in page


def test_the_round_page_shows_the_notice_and_lets_the_secretariat_act(
        protokoll_round, client, settings, runtime):
    import uuid

    from tests.staff_kit import sign_in_client

    page_client = client.application.test_client()
    email = f"sek-page-{uuid.uuid4().hex[:6]}@example.se"
    make_user(runtime, email, "secretariat")
    sign_in_client(page_client, settings, runtime, email)
    page = page_client.get(f"/rounds/{protokoll_round}").get_data(as_text=True)
    with runtime.sessions() as s:
        found = s.get(Notice, protokoll_round)
        justering, posting = found.justering_date, found.posting_date
    assert "Anslag om justering" in page and "Förberett, inte publicerat än" in page
    for shown in ("Kommunstyrelsen", "2026-11-25", "Kommunkansliet, Stadshuset",
                  posting.isoformat(), takedown_date(posting).isoformat()):
        assert shown in page
    english = page_client.get(f"/rounds/{protokoll_round}?lang=en").get_data(as_text=True)
    assert "Notice of justering (anslag)" in english and "The notice comes down" in english
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    moved = page_client.post(f"/rounds/{protokoll_round}/notice", data={
        "csrf_token": token, "posting_date": justering.isoformat()})
    assert moved.status_code == 303
    with runtime.sessions() as s:
        assert s.get(Notice, protokoll_round).posting_date == justering
    pdf = page_client.get(f"/rounds/{protokoll_round}/notice.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    published = page_client.post(f"/rounds/{protokoll_round}/notice/publish",
                                 data={"csrf_token": token})
    assert published.status_code == 303
    page = page_client.get(f"/rounds/{protokoll_round}?lang=sv").get_data(as_text=True)
    assert "Publicera anslaget nu" not in page
    # no webhook takes notice.ready: the page does not claim a notice board has it
    assert "Publicerat på anslagstavlan" not in page
    assert "Publicerat, men ingen anslagstavla har det" in page
    assert "ladda ned det och sätt upp det på anslagstavlan själv" in page
    assert "Anslaget publicerades" in page  # the timeline says it


def test_the_new_round_form_asks_for_the_notices_facts(client, settings, runtime,
                                                        protocol_pdf):
    from tests.test_secretariat_pages import csrf, form_data, staff
    from tests.test_workflows import PN

    staff(client, settings, runtime)
    people = {f"signers-{i}-personal_number": PN[name] for i, name in
              enumerate(("Mikael Johansson", "Ardiana Demjaha", "Carina Leffler"))}
    rows = {"signers-2-name": "Carina Leffler", "signers-2-email": "ordf-form@example.se",
            **people}
    refused = client.post("/rounds/new", data=form_data(
        csrf(client), protocol_pdf, workflow="protokoll", meeting_date="25.11.2026", **rows),
        content_type="multipart/form-data")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert re.search(r'id="body-error" >Ange vilket organ', html), html
    assert re.search(r'id="meeting_date-error" >Ange sammanträdesdatum', html)
    assert re.search(r'id="kept_at-error" >Ange var protokollet förvaras \(det ska stå', html)
    made = client.post("/rounds/new", data=form_data(
        csrf(client), protocol_pdf, workflow="protokoll", body="Kommunstyrelsen",
        meeting_date="2026-11-25", kept_at="Stadshuset", **rows),
        content_type="multipart/form-data")
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    round_id = made.headers["Location"].rsplit("/", 1)[-1]
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        assert (round_.body, round_.meeting_date, round_.kept_at) == (
            "Kommunstyrelsen", d("2026-11-25"), "Stadshuset")


def test_the_scheduler_looks_at_the_posting_day_again_once_it_holds_the_round(
        protokoll_round, runtime):
    """The secretariat moved the day on while the scheduler waited for the round:
    the notice went up on the old day all the same (the race review)."""
    from signflow.core import notice as notice_module
    from signflow.core.notice import publish_due_notices
    from tests.test_round_locks import while_the_round_is_held

    with runtime.sessions() as s:
        found = s.get(Notice, protokoll_round)
        justering = found.justering_date
        found.posting_date = justering
        s.commit()
    noon = datetime.combine(justering, datetime.min.time(), tzinfo=SWEDEN).replace(hour=12)

    def move_on(session, round_):
        session.get(Notice, round_.id).posting_date = justering + timedelta(days=2)

    published = while_the_round_is_held(
        runtime, protokoll_round, notice_module, move_on,
        lambda s: publish_due_notices(s, runtime.services, noon))
    assert published == []
    with runtime.sessions() as s:
        assert s.get(Notice, protokoll_round).status == "prepared"


def test_a_notice_whose_boards_webhook_was_removed_before_it_arrived_says_so(
        protokoll_round, client, auth, runtime):
    """The review of board_state: a notice.ready delivery dropped because its
    webhook was removed read "no webhook takes notice.ready"; it is 'dropped'."""
    from sqlalchemy import select

    from signflow.core.models import OutboxMessage, WebhookDelivery

    hook = client.post("/api/v1/webhooks", headers=auth, json={
        "url": "https://anslagstavla.invalid/hook", "events": ["notice.ready"]}).get_json()
    url = f"/api/v1/rounds/{protokoll_round}/notice"
    assert client.post(f"{url}/publish", headers=auth).get_json()["board"] in (
        "pending", "failing")
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth).status_code in (
        200, 204)
    with runtime.sessions() as s:  # as deliver() ends it once it sees the webhook gone
        delivery = s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.round_id == protokoll_round)).one()
        row = s.scalars(select(OutboxMessage).where(
            OutboxMessage.ref == delivery.outbox_ref)).one()
        row.delivered_at, delivery.last_status = datetime.now(UTC), None
        s.commit()
    assert client.get(url, headers=auth).get_json()["board"] == "dropped"
