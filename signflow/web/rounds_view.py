"""A round in words for its page: states, roles and the audit trail as a timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from signflow.core.audit import EventType
from signflow.core.models import Round, Signer
from signflow.core.people import role_label
from signflow.core.states import SignerStatus
from signflow.pdf.event_words import event_phrases, status_phrases
from signflow.web.security import stockholm_time


def status_words() -> dict[str, str]:
    """A round's status as the badge says it."""
    return status_phrases(_)


def signer_words() -> dict[str, str]:
    return {"waiting": _("Waiting for an earlier signer"),
            "invited": _("Invited, has not signed"), "signed": _("Has signed"),
            "declined": _("Has declined")}


def progress(round_: Round) -> str:
    signed = sum(1 for s in round_.signers if s.status == SignerStatus.SIGNED.value)
    return _("%(signed)d of %(total)d have signed", signed=signed, total=len(round_.signers))


@dataclass(frozen=True)
class Moment:
    """One line of the timeline."""

    #: Europe/Stockholm wall time.
    at: str
    #: What happened, in words.
    text: str
    #: Who did it, in words.
    by: str
    #: A reason or other detail ("" when none).
    detail: str = ""


def timeline(events: list[dict[str, Any]]) -> list[Moment]:
    """The audit trail as it reads to people, with each signer named as they were then."""
    names: dict[str, str] = {}
    words = event_phrases(_)
    moments = []
    for event in events:
        data = event.get("data") or {}
        if event["type"] == EventType.ROUND_CREATED:
            names.update({s.get("id", ""): s.get("name", "") for s in data.get("signers", [])})
        signer_id = str(data.get("signer", ""))
        old = names.get(signer_id, "")
        if event["type"] == EventType.SIGNER_REPLACED:
            old = str(data.get("old_name", old))
            names[signer_id] = str(data.get("name", ""))
        who = names.get(signer_id, "") or _("a signer")
        say = words.get(event["type"])
        text = say(who, old) if say else event["type"]
        detail = str(data.get("reason", "")) if event["type"] == EventType.SIGNER_DECLINED else ""
        moments.append(Moment(stockholm_time(event["at"], seconds=True), text,
                              _actor(str(event.get("actor", "")), names), detail))
    return moments


def _actor(actor: str, names: dict[str, str]) -> str:
    kind, _sep, rest = actor.partition(":")
    if kind == "user":
        return rest
    if kind == "signer":
        return names.get(rest, "") or _("a signer")
    return _("signflow (automatically)")


@dataclass(frozen=True)
class SignerLine:
    """A signer as the round page shows them: never a personal number."""

    signer: Signer
    role: str
    state: str
    signed_at: str


@dataclass(frozen=True)
class RoundView:
    signers: list[SignerLine]
    timeline: list[Moment]
    status: str
    progress: str
    created: str
    deadline: str
    completed: str


def round_view(round_: Round, events: list[dict[str, Any]], language: str) -> RoundView:
    states = signer_words()
    lines = [SignerLine(s, role_label(s.role, language), states.get(s.status, s.status),
                        stockholm_time(s.signed_at))
             # in the order they are asked to sign (a workflow's steps), then as entered
             for s in sorted(round_.signers, key=lambda s: (s.step, s.position))]
    return RoundView(lines, timeline(events), status_words().get(round_.status, round_.status),
                     progress(round_), stockholm_time(round_.created_at),
                     stockholm_time(round_.expires_at), stockholm_time(round_.completed_at))
