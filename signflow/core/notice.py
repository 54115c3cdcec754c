"""The notice of justering (*anslag*) of a municipal protocol.

*Kommunallagen (2017:725)* 8 kap. 12 §: "Justeringen av protokollet ska
tillkännages på kommunens anslagstavla inom två dagar efter justeringen."
The notice says where the protocol is kept and on which day it went up, and
stays up until the time to appeal has run out.  13 kap. 5 §: an appeal must
reach the administrative court "inom tre veckor från den dag då det
tillkännagavs på kommunens anslagstavla att protokollet justerats".

The dates, as this module sets them:

* **Justering**: the day the round completed (the last signature), in
  Europe/Stockholm.
* **Posting** (*anslaget sätts upp*): by default the first working day
  after the justering, if one of the two days the law allows after it is
  one; if neither is (a justering on a Friday, or before Easter or
  midsommar), the justering day itself.  Not at once: the notice is
  published by the scheduler when its posting day has come, so a day in
  between gives the secretariat the chance to check it and move the date.
  And never later than the law's second day: "inom två dagar" counts
  calendar days, and the extension rule of the 1930 act applies to periods
  that end in a right lost, not to a duty of the municipality, so we do not
  stretch it over a weekend.  The secretariat may set any day from the
  justering to two days after it, before publication (:func:`adjust_posting`).
* **Take-down** (*anslaget tas ned*): the last day of the appeal period,
  three weeks after posting; when that is a Saturday, Sunday, public holiday,
  midsommarafton, julafton or nyårsafton, the next working day (*lagen
  (1930:173) om beräkning av lagstadgad tid*, :mod:`signflow.core.holidays`).
  The notice stays up through that day.

The posting and take-down dates are planned until the notice is published;
publishing sets the posting date to the day it actually went up and the
take-down date from it, so the notice never names a day the appeal period did
not start on: published at once, a day early, it says so; published late (the
scheduler was down past the window), it says that day, the take-down date
moves with it, and the ``notice.published`` event says ``late`` with the day it
was due by.

States: ``prepared`` → ``published`` (:class:`~signflow.core.states.NoticeStatus`);
publishing emits the ``notice.ready`` webhook and is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from signflow.core import webhooks
from signflow.core.audit import EventType, append_event, lock_round
from signflow.core.holidays import is_working_day, next_working_day
from signflow.core.models import Notice, Round, User
from signflow.core.ports import Services
from signflow.core.rounds import SYSTEM, require_manager, visible_round
from signflow.core.states import NoticeStatus, RoundStatus, transition
from signflow.errors import IllegalTransition, InvalidInput, NotFound

SWEDEN = ZoneInfo("Europe/Stockholm")
#: KL 8 kap. 12 §: the notice goes up within two days after the justering.
POSTING_WITHIN = timedelta(days=2)
#: KL 13 kap. 5 §: the appeal period, from the day of posting.
APPEAL_PERIOD = timedelta(weeks=3)


@dataclass(frozen=True)
class NoticeDates:
    """The three dates of a notice."""

    #: The day the protocol was justerat (the round completed), in Sweden.
    justering: date
    #: The day the notice goes up; the appeal period runs from it.
    posting: date
    #: The last day of the appeal period; the notice stays up through it.
    takedown: date


def justering_date(completed_at: datetime) -> date:
    """The Swedish calendar day of *completed_at* (an aware datetime)."""
    return completed_at.astimezone(SWEDEN).date()


def posting_window(justering: date) -> tuple[date, date]:
    """The first and last day the notice may go up."""
    return justering, justering + POSTING_WITHIN


def default_posting_date(justering: date) -> date:
    """The first working day of the two after *justering*, else *justering* itself."""
    for offset in (1, 2):
        day = justering + timedelta(days=offset)
        if is_working_day(day):
            return day
    return justering


def takedown_date(posting: date) -> date:
    """The appeal period's last day: three weeks after *posting*, moved to the
    next working day when it would end on a day off."""
    return next_working_day(posting + APPEAL_PERIOD)


def notice_dates(completed_at: datetime, posting: date | None = None) -> NoticeDates:
    """The dates of a notice for a round completed at *completed_at*; *posting*
    must lie in the legal window (:class:`InvalidInput` otherwise)."""
    justering = justering_date(completed_at)
    if posting is None:
        posting = default_posting_date(justering)
    first, last = posting_window(justering)
    if not first <= posting <= last:
        raise InvalidInput(
            f"the notice must go up between {first.isoformat()} (the justering) and "
            f"{last.isoformat()} (two days after it, KL 8 kap. 12 §), not "
            f"{posting.isoformat()}", code="posting_outside_window", field="posting_date")
    return NoticeDates(justering, posting, takedown_date(posting))


def wants_notice(svc: Services, round_: Round) -> bool:
    """Whether *round_* gets a notice of justering: as its workflow said when the
    round started (a file edited since, or a worker with other files, changes nothing)."""
    if round_.notice is not None:
        return round_.notice
    workflow = svc.workflows.get(round_.workflow)  # a round from before 0016
    return bool(workflow is not None and getattr(workflow, "notice", False))


def prepare_notice(session: Session, svc: Services, round_: Round) -> Notice:
    """Give the just completed *round_* its notice, with the default dates.

    Runs in the completing transaction, with the round held; a second call
    returns the notice already there."""
    existing = session.get(Notice, round_.id)
    if existing is not None:
        return existing
    assert round_.completed_at is not None
    dates = notice_dates(round_.completed_at)
    notice = Notice(round_id=round_.id, status=NoticeStatus.PREPARED.value,
                    justering_date=dates.justering, posting_date=dates.posting,
                    takedown_date=dates.takedown, prepared_at=svc.clock.now())
    session.add(notice)
    append_event(session, round_, EventType.NOTICE_PREPARED, SYSTEM, _dates_data(notice))
    return notice


def round_notice(session: Session, user: User, round_id: str) -> Notice:
    """The notice of a round of *user*'s organisation; :class:`NotFound` if none."""
    round_ = visible_round(session, user, round_id)
    notice = session.get(Notice, round_.id)
    if notice is None:
        raise NotFound("this round has no notice of justering")
    return notice


def adjust_posting(session: Session, svc: Services, user: User, round_id: str,
                   posting: date) -> Notice:
    """The secretariat moves the posting date, before publication; the take-down
    date follows.  :raises IllegalTransition: once published (``notice_published``)."""
    require_manager(user)
    _held(session, user, round_id)
    notice = _unpublished(session, round_id)
    if posting == notice.posting_date:
        return notice
    round_ = notice.round
    assert round_.completed_at is not None
    dates = notice_dates(round_.completed_at, posting)
    before = notice.posting_date
    notice.posting_date, notice.takedown_date = dates.posting, dates.takedown
    append_event(session, round_, EventType.NOTICE_ADJUSTED, f"user:{user.email}", {
        "from": before.isoformat(), "to": dates.posting.isoformat(),
        "posting": dates.posting.isoformat(), "takedown_date": dates.takedown.isoformat()})
    return notice


def publish_now(session: Session, svc: Services, user: User, round_id: str) -> Notice:
    """The secretariat publishes the notice at once: it goes up today."""
    require_manager(user)
    _held(session, user, round_id)
    notice = _unpublished(session, round_id)
    publish(session, svc, notice, actor=f"user:{user.email}")
    return notice


def publish_due_notices(session: Session, svc: Services, now: datetime) -> list[str]:
    """Job (the scheduler's tick): publish every prepared notice whose posting
    day has come in Sweden.  Returns the rounds whose notices it published."""
    today = now.astimezone(SWEDEN).date()
    due = list(session.scalars(select(Notice.round_id).where(
        Notice.status == NoticeStatus.PREPARED.value, Notice.posting_date <= today)
        .order_by(Notice.round_id)))
    published = []
    for round_id in due:
        lock_round(session, round_id)
        notice = session.get(Notice, round_id)
        if notice is None or notice.status != NoticeStatus.PREPARED.value:
            continue  # published by the secretariat since the list was read
        if notice.posting_date > today:  # (lock_round re-read it) moved on meanwhile
            continue
        publish(session, svc, notice, actor=SYSTEM, now=now)
        published.append(round_id)
    return published


def publish(session: Session, svc: Services, notice: Notice, *, actor: str,
            now: datetime | None = None) -> None:
    """Move *notice* to published (*now*, by default the clock's), dated the day it
    goes up; audit it and emit ``notice.ready`` (the round is held by the caller)."""
    if not transition(notice, NoticeStatus.PUBLISHED):
        return
    notice.published_at = now or svc.clock.now()
    today = notice.published_at.astimezone(SWEDEN).date()
    planned, last_day = notice.posting_date, due_by(notice)
    notice.posting_date, notice.takedown_date = today, takedown_date(today)
    round_ = notice.round
    data: dict[str, Any] = _dates_data(notice)
    if today != planned:
        data["planned_posting_date"] = planned.isoformat()
    if today > last_day:
        data.update(late=True, due_by=last_day.isoformat())
    sent = webhooks.emit(session, svc, round_, "notice.ready", {
        "notice": notice_dict(notice),
        "pdf": f"{svc.base_url}/api/v1/rounds/{round_.id}/notice.pdf"})
    data["boards"] = len(sent)  # 0: no notice board heard of it; the page says so
    append_event(session, round_, EventType.NOTICE_PUBLISHED, actor, data)


#: Where a published notice is: no notice board was connected when it was
#: published; its board's webhook was removed before the notice reached it
#: (``dropped``); it is on its way to one (``pending``, ``failing``); or one has it.
BOARD_STATES = ("none", "dropped", "pending", "failing", "delivered")


def board_state(session: Session, notice: Notice) -> str | None:
    """Whether a notice board has the published *notice* (:data:`BOARD_STATES`);
    ``None`` before publication.  From its ``notice.ready`` deliveries."""
    if notice.status != NoticeStatus.PUBLISHED.value:
        return None
    states = {d["state"] for d in webhooks.round_deliveries(session, notice.round_id,
                                                            "notice.ready")}
    for state in ("delivered", "failing", "pending", "dropped"):
        if state in states:
            return state
    return "none"


def notice_dict(notice: Notice) -> dict[str, Any]:
    """The notice as the API and the ``notice.ready`` webhook show it."""
    round_ = notice.round
    return {
        "round": round_.id, "title": round_.title, "state": notice.status,
        "body": round_.body, "organisation": round_.organisation.name,
        "meeting_date": round_.meeting_date.isoformat() if round_.meeting_date else None,
        "justering_date": notice.justering_date.isoformat(),
        "posting_date": notice.posting_date.isoformat(),
        "takedown_date": notice.takedown_date.isoformat(),
        "kept_at": round_.kept_at,
        "published_at": (notice.published_at.isoformat().replace("+00:00", "Z")
                         if notice.published_at else None),
        "late": is_late(notice),
    }


def due_by(notice: Notice) -> date:
    """The last day KL 8 kap. 12 § allows *notice* to go up."""
    return posting_window(notice.justering_date)[1]


def is_late(notice: Notice) -> bool:
    """Whether *notice* went up (or is planned) after :func:`due_by`."""
    return notice.posting_date > due_by(notice)


def notice_view(session: Session, notice: Notice) -> dict[str, Any]:
    """The notice as the API shows it: :func:`notice_dict` and where it is
    (:func:`board_state`), which the webhook's own copy cannot know yet."""
    return {**notice_dict(notice), "board": board_state(session, notice)}


def _held(session: Session, user: User, round_id: str) -> Round:
    visible_round(session, user, round_id)  # 404 before any lock for another's round
    round_ = lock_round(session, round_id)
    if round_.status != RoundStatus.COMPLETED.value:
        raise NotFound("this round has no notice of justering")
    return round_


def _unpublished(session: Session, round_id: str) -> Notice:
    notice = session.get(Notice, round_id)
    if notice is None:
        raise NotFound("this round has no notice of justering")
    if notice.status != NoticeStatus.PREPARED.value:
        raise IllegalTransition("the notice is already published", code="notice_published")
    return notice


def _dates_data(notice: Notice) -> dict[str, str]:
    return {"justering_date": notice.justering_date.isoformat(),
            "posting_date": notice.posting_date.isoformat(),
            "takedown_date": notice.takedown_date.isoformat()}
