"""A round's audit trail in words for its Händelselogg, without Flask.

The round page's timeline (:mod:`signflow.web.rounds_view`) and this log say
an event in the same words: the message ids here are the page's, translated
from the same shipped catalogue (``messages.mo``) with :mod:`gettext`, so the
log can be written by a job or the command line as well as by a view.

What an event shows is chosen per type (:data:`DETAILS`), never the whole of
its data: the trail holds no personal number and no link token, and a key
added to an event later stays out of the log until it is named here.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from signflow import i18n
from signflow.core.audit import EventType, verify_chain
from signflow.core.people import role_label

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class Say(Protocol):
    """``gettext`` as the pages call it: a message id, then its named variables."""

    def __call__(self, string: str, /, **variables: Any) -> str: ...


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()  # the message ids are English
    with i18n.mo_path(language).open("rb") as fh:
        return gettext.GNUTranslations(fh)


def words_in(language: str) -> Say:
    """Translate as Flask-Babel does on the pages, from the same catalogue (a
    language signflow does not speak gets Swedish, as on the pages)."""
    translations = _translations(
        language if language in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE)

    def say(string: str, /, **variables: Any) -> str:
        text = translations.gettext(string)
        return text % variables if variables else text

    return say


_Phrase = Callable[[str, str], str]


def event_phrases(_: Say) -> dict[str, _Phrase]:
    """Each event type in plain words, as the round page's timeline says it;
    *who* is the signer concerned, *old* a former one."""
    return {
        EventType.ROUND_CREATED: lambda who, old: _("The round was created"),
        EventType.DOCUMENT_PREPARED: lambda who, old: _(
            "The signature page was added and the document sealed"),
        EventType.SIGNER_INVITED: lambda who, old: _("%(who)s was invited by e-mail", who=who),
        EventType.SIGNER_REMINDED: lambda who, old: _("%(who)s was reminded by e-mail", who=who),
        EventType.MAIL_SENT: lambda who, old: _("The e-mail to %(who)s went out", who=who),
        EventType.SIGNER_REPLACED: lambda who, old: _("%(old)s was replaced by %(who)s",
                                                      old=old, who=who),
        EventType.DEADLINE_EXTENDED: lambda who, old: _("The deadline was moved later"),
        EventType.IDENTITY_STARTED: lambda who, old: _("%(who)s began to identify", who=who),
        EventType.BANKID_STARTED: lambda who, old: _("%(who)s began to identify", who=who),
        EventType.IDENTITY_FAILED: lambda who, old: _(
            "The identification of %(who)s was cancelled or failed", who=who),
        EventType.BANKID_FAILED: lambda who, old: _(
            "The identification of %(who)s was cancelled or failed", who=who),
        EventType.IDENTITY_MISMATCH: lambda who, old: _(
            "Someone other than %(who)s identified on their link; nothing was signed", who=who),
        EventType.EVIDENCE_DOWNLOADED: lambda who, old: _("The evidence was downloaded"),
        EventType.SIGNER_SIGNED: lambda who, old: _("%(who)s signed", who=who),
        EventType.SIGNATURE_APPLIED: lambda who, old: _(
            "The signature of %(who)s was written into the PDF", who=who),
        EventType.SIGNER_DECLINED: lambda who, old: _("%(who)s declined to sign", who=who),
        EventType.ROUND_COMPLETED: lambda who, old: _(
            "Everyone has signed; the document was sealed"),
        EventType.DOCUMENT_RENEWED: lambda who, old: _(
            "The archived document got a new timestamp"),
        EventType.ROUND_CANCELLED: lambda who, old: _("The round was cancelled"),
        EventType.ROUND_EXPIRED: lambda who, old: _(
            "The deadline passed before everyone had signed"),
        EventType.NOTICE_PREPARED: lambda who, old: _("The notice of justering was prepared"),
        EventType.NOTICE_ADJUSTED: lambda who, old: _("The notice's posting date was changed"),
        EventType.NOTICE_PUBLISHED: lambda who, old: _("The notice was published"),
    }


def status_phrases(_: Say) -> dict[str, str]:
    """A round's status as the round page's badge says it."""
    return {"pending": _("In progress"), "completed": _("Completed"), "declined": _("Declined"),
            "cancelled": _("Cancelled"), "expired": _("Past deadline")}


#: What each event type shows of its data, in this order (absent keys are skipped).
DETAILS: dict[str, tuple[str, ...]] = {
    EventType.ROUND_CREATED: ("title", "workflow", "provider", "order", "identity_policy",
                              "pages", "original_sha256", "signers"),
    EventType.DOCUMENT_PREPARED: ("sha256", "size"),
    EventType.SIGNER_INVITED: ("email",),
    EventType.SIGNER_REMINDED: ("email", "same_link"),
    EventType.MAIL_SENT: ("kind",),
    EventType.SIGNER_REPLACED: ("old_email", "email"),
    EventType.DEADLINE_EXTENDED: ("from", "to"),
    EventType.IDENTITY_STARTED: ("provider", "order_ref"),
    EventType.BANKID_STARTED: ("order_ref", "orderRef"),
    EventType.IDENTITY_FAILED: ("provider", "order_ref", "hint_code"),
    EventType.BANKID_FAILED: ("order_ref", "orderRef", "hint_code", "hintCode"),
    EventType.IDENTITY_MISMATCH: ("provider", "order_ref", "check", "reported_name"),
    EventType.EVIDENCE_DOWNLOADED: ("role",),
    EventType.SIGNER_SIGNED: ("name", "order_ref", "orderRef", "method", "identity_check",
                              "document_sha256"),
    EventType.SIGNATURE_APPLIED: ("field", "sha256"),
    EventType.SIGNER_DECLINED: ("reason", "round_continues"),
    EventType.ROUND_CANCELLED: ("reason",),
    EventType.ROUND_COMPLETED: ("sha256", "size"),
    EventType.DOCUMENT_RENEWED: ("previous_sha256", "sha256"),
    EventType.ROUND_EXPIRED: ("expires_at", "unsigned"),
    EventType.NOTICE_PREPARED: ("justering_date", "posting_date", "takedown_date"),
    EventType.NOTICE_ADJUSTED: ("posting", "takedown_date"),
    EventType.NOTICE_PUBLISHED: ("justering_date", "posting_date", "takedown_date",
                                 "planned_posting_date", "late", "due_by", "boards"),
}


def detail_labels(_: Say) -> dict[str, str]:
    return {
        "title": _("Title"), "workflow": _("Workflow"), "provider": _("Identity provider"),
        "order": _("Order"), "identity_policy": _("Identity check"), "pages": _("Pages"),
        "original_sha256": _("SHA-256 of the original"), "signers": _("Signers"),
        "sha256": _("SHA-256 of the document"), "size": _("Size (bytes)"),
        "email": _("E-mail"), "same_link": _("Same link as before"), "kind": _("Kind"),
        "old_email": _("Earlier e-mail"), "from": _("Earlier deadline"),
        "to": _("New deadline"), "order_ref": _("Transaction ID"),
        "orderRef": _("Transaction ID"), "hint_code": _("Code"), "hintCode": _("Code"),
        "check": _("What did not match"), "reported_name": _("Name from the identification"),
        "role": _("Role"), "name": _("Name from the identification"), "method": _("Method"),
        "identity_check": _("Identity check"), "document_sha256": _("SHA-256 of the document"),
        "field": _("Signature field"), "previous_sha256": _("SHA-256 before"),
        "reason": _("Reason"), "round_continues": _("The round goes on"),
        "expires_at": _("Deadline"), "unsigned": _("Had not signed"),
        "justering_date": _("Date of justering"), "posting_date": _("The notice goes up"),
        "posting": _("The notice goes up"), "takedown_date": _("The notice comes down"),
        "planned_posting_date": _("Planned posting date"),
        "late": _("Later than the law allows"), "due_by": _("The law's last posting day"),
        "boards": _("Notice boards it was sent to"),
    }


def value_phrases(_: Say) -> dict[str, str]:
    """Coded values that read better as words (others are shown as they are)."""
    return {
        "invitation": _("invitation"), "reminder": _("reminder"),
        "cancellation": _("cancellation"),
        "personal_number": _("Personal number"), "name": _("Name"), "none": _("nothing"),
        "auto": _("the personal number where one was given, else the name"),
        "parallel": _("Everyone at once"), "sequential": _("One at a time"),
        "steps": _("In steps"), "yes": _("yes"), "no": _("no"),
    }


@dataclass(frozen=True)
class RoundFacts:
    """What the log says about the round itself, read from the records when it is written."""

    id: str
    title: str
    #: The organisation's name.
    organisation: str
    #: The workflow as people know it (its title in the round's language, and its name).
    workflow: str
    #: A :class:`~signflow.core.states.RoundStatus` value.
    status: str
    #: ``sv`` or ``en``: the log's language.
    language: str
    #: Each signer's id → (name, role) as they are now: the fallback for a signer
    #: the trail does not name (the trail's own names win, as they were then).
    signers: Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class LoggedEvent:
    """One event of the trail in words."""

    seq: int
    #: Europe/Stockholm wall time, with seconds.
    stockholm: str
    #: The same moment in UTC, with seconds.
    utc: str
    #: Who: a signer's name and role, a user's e-mail, or the service.
    actor: str
    #: What happened, in the round page's words.
    text: str
    #: (label, value) of the event's key data.
    details: tuple[tuple[str, str], ...]
    #: The event's hash in full.
    hash: str


@dataclass(frozen=True)
class EventLog:
    """A round's Händelselogg in words, ready to be set on pages."""

    #: ``sv`` or ``en``.
    language: str
    #: "Händelselogg" / "Event log".
    title: str
    round_id: str
    round_title: str
    #: (label, value): the round's id, organisation, workflow and status, and when
    #: this log was issued.
    facts: tuple[tuple[str, str], ...]
    intact: bool
    #: Whether the chain is intact, in a sentence, then each problem found.
    chain: tuple[str, ...]
    #: (label, value) of the chain's head (the last event's hash, in full) and the count.
    head: tuple[tuple[str, str], ...]
    #: How to read the times, and that the log is sealed.
    notes: tuple[str, ...]
    events: tuple[LoggedEvent, ...]
    #: Labels the pages use: ``by``, ``hash``, ``zone``, and ``page`` (with
    #: ``%(page)d`` and ``%(pages)d`` still to fill in).
    labels: Mapping[str, str]


def event_log(facts: RoundFacts, events: Sequence[Mapping[str, Any]], *,
              issued: datetime) -> EventLog:
    """*events* (as :func:`~signflow.core.audit.round_events` returns them) in words,
    in the round's language."""
    language = facts.language if facts.language in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    _ = words_in(language)
    chain = verify_chain(events)
    zone = _("Swedish time")
    sentence = (_("The audit trail is intact: every event is linked to the one before by its "
                  "hash.") if chain.intact else
                _("The audit trail is NOT intact: an event was changed or removed. Contact "
                  "your administrator."))
    return EventLog(
        language=language, title=_("Event log"), round_id=facts.id, round_title=facts.title,
        facts=((_("Round ID"), facts.id), (_("Organisation"), facts.organisation),
               (_("Workflow"), facts.workflow),
               (_("Status"), status_phrases(_).get(facts.status, facts.status)),
               (_("Issued"), _both_times(issued, zone))),
        intact=chain.intact, chain=(sentence, *chain.problems),
        head=((_("Head of the chain (the last event's hash)"), chain.head),
              (_("Number of events"), str(chain.count))),
        notes=(_("Times are given in Swedish time (Europe/Stockholm) and in UTC."),
               _("signflow sealed this log when it was issued: any change to it breaks the "
                 "seal.")),
        events=tuple(_logged(events, facts, language, _)),
        labels={"by": _("By"), "hash": _("Hash"), "zone": zone,
                "page": _("Page %(page)d of %(pages)d")},
    )


def _logged(events: Sequence[Mapping[str, Any]], facts: RoundFacts, language: str,
            _: Say) -> list[LoggedEvent]:
    people = {sid: list(who) for sid, who in facts.signers.items()}
    then: dict[str, str] = {}  # the names as the trail had them at each event
    phrases, labels, values = event_phrases(_), detail_labels(_), value_phrases(_)
    logged = []
    for event in events:
        type_, data = str(event.get("type", "")), event.get("data") or {}
        if type_ == EventType.ROUND_CREATED:
            for s in data.get("signers", []):
                then[str(s.get("id", ""))] = str(s.get("name", ""))
                people.setdefault(str(s.get("id", "")), ["", str(s.get("role", ""))])
        signer_id = str(data.get("signer", ""))
        old = then.get(signer_id, "")
        if type_ == EventType.SIGNER_REPLACED:
            old = str(data.get("old_name", old))
            then[signer_id] = str(data.get("name", ""))
        who = _name(signer_id, then, people) or _("a signer")
        say = phrases.get(type_)
        moment = _moment(str(event.get("at", "")))
        logged.append(LoggedEvent(
            seq=int(event.get("seq") or 0), stockholm=_stockholm(moment), utc=_utc(moment),
            actor=_actor(str(event.get("actor", "")), then, people, language, _),
            text=say(who, old) if say else type_,
            details=tuple(_details(type_, data, labels, values, language)),
            hash=str(event.get("hash", ""))))
    return logged


def _name(signer_id: str, then: Mapping[str, str], people: Mapping[str, list[str]]) -> str:
    return then.get(signer_id) or (people.get(signer_id) or [""])[0]


def _actor(actor: str, then: Mapping[str, str], people: Mapping[str, list[str]],
           language: str, _: Say) -> str:
    kind, _sep, rest = actor.partition(":")
    if kind == "user":
        return rest
    if kind == "signer":
        name = _name(rest, then, people) or _("a signer")
        role = (people.get(rest) or ["", ""])[1]
        return f"{name} ({role_label(role, language)})" if role else name
    if actor == "system":
        return _("signflow (automatically)")
    return actor


def _details(type_: str, data: Mapping[str, Any], labels: Mapping[str, str],
             values: Mapping[str, str], language: str) -> list[tuple[str, str]]:
    shown = []
    for key in DETAILS.get(type_, ()):
        value = data.get(key)
        if value is None or value == "" or value == []:
            continue
        shown.append((labels[key], _value(key, value, values, language)))
    return shown


def _value(key: str, value: Any, values: Mapping[str, str], language: str) -> str:
    if key == "signers":
        return ", ".join(f"{s.get('name', '')} ({role_label(str(s.get('role', '')), language)})"
                         for s in value if isinstance(s, Mapping))
    if key in ("from", "to", "expires_at") and "T" in str(value):  # a moment, not a date
        moment = _moment(str(value))
        return _stockholm(moment) if moment else str(value)
    if isinstance(value, bool):
        return values["yes" if value else "no"]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    if key in ("kind", "check", "identity_check", "identity_policy", "order"):
        return values.get(text, text)
    return text


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stockholm(moment: datetime | None) -> str:
    return moment.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _both_times(moment: datetime, zone: str) -> str:
    return f"{_stockholm(moment)} ({zone}) · {_utc(moment)}"
