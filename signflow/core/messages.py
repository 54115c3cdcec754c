"""Texts the domain sends to people, in Swedish and English."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from signflow.core.ports import Mail

SWEDEN = ZoneInfo("Europe/Stockholm")

_INVITE = {
    "sv": (
        "Signera: {title}",
        "Hej {name},\n\n{org} ber dig signera \"{title}\" som {role}.\n\n"
        "{message}Öppna länken, läs dokumentet och signera med Mobilt BankID:\n{link}\n\n"
        "Länken är personlig och gäller till {expires}.\n",
    ),
    "en": (
        "Please sign: {title}",
        "Hello {name},\n\n{org} asks you to sign \"{title}\" as {role}.\n\n"
        "{message}Open the link, read the document and sign with Mobile BankID:\n{link}\n\n"
        "The link is personal and valid until {expires}.\n",
    ),
}
#: A reminder says it is one, and by when (the invitation's subject with a prefix
#: read "Påminnelse: Signera: …", and its text never said it was a reminder).
_REMIND = {
    "sv": ("Påminnelse: signera \"{title}\" senast {expires}",
           "Du har ännu inte signerat \"{title}\". Länken slutar gälla {expires}.\n\n"),
    "en": ("Reminder: please sign \"{title}\" by {expires}",
           "You have not signed \"{title}\" yet. The link works until {expires}.\n\n"),
}
#: The last line of a mail to the secretariat: where the round's page is.
_SEE_ROUND = {"sv": "Se signeringen: {link}\n", "en": "See the round: {link}\n"}


def deadline(moment: datetime, lang: str) -> str:
    """A deadline as a mail gives it: the Swedish date and time, said to be Swedish
    (a date alone reads as "the whole day", and in UTC it can be the day before)."""
    local = moment.astimezone(SWEDEN)
    if lang == "sv":
        return f"{local:%Y-%m-%d} kl. {local:%H.%M} (svensk tid)"
    return f"{local:%Y-%m-%d}, {local:%H:%M} (Swedish time)"


def round_page(base_url: str, round_id: str) -> str:
    """The round's page for the secretariat (a browser page, not the API)."""
    return f"{base_url}/rounds/{round_id}"


def _see_round(lang: str, link: str) -> str:
    return _SEE_ROUND[lang].format(link=link) if link else ""
_COMPLETED = {
    "sv": ("Signerat: {title}", "Alla har signerat \"{title}\".\n"
           "Se signeringen och hämta dokumentet: {link}\n"),
    "en": ("Signed: {title}", "Everyone has signed \"{title}\".\n"
           "See the round and download the document: {link}\n"),
}
_DECLINED = {
    "sv": (
        "Nekad signering: {title}",
        "{name} ({role}) har nekat att signera \"{title}\".\nSkäl: {reason}\n",
    ),
    "en": (
        "Signing declined: {title}",
        "{name} ({role}) declined to sign \"{title}\".\nReason: {reason}\n",
    ),
}


def invitation(
    lang: str, *, to: str, name: str, org: str, title: str, role: str, message: str,
    link: str, expires: str, reminder: bool = False, reply_to: str = "",
) -> Mail:
    subject, body = _INVITE[lang]
    msg = f"{message.strip()}\n\n" if message.strip() else ""
    fields = dict(name=name, org=org, title=title, role=role, message=msg, link=link,
                  expires=expires)
    text = body.format(**fields)
    if reminder:
        subject, first = _REMIND[lang]
        greeting, _, rest = text.partition("\n\n")
        text = f"{greeting}\n\n{first.format(**fields)}{rest}"
    return Mail(language=lang, to=to, subject=subject.format(**fields), body=text,
                reply_to=reply_to)


_SIGNED_COPY = {
    "sv": ("Signerat protokoll: {title}",
           "Hej {name},\n\nAlla har nu signerat \"{title}\". Protokollet är signerat och "
           "förseglat.\nHämta det signerade protokollet (PDF): {link}\n\n"
           "Vem som helst kan kontrollera underskrifterna: {verify}\n"),
    "en": ("Signed minutes: {title}",
           "Hello {name},\n\nEveryone has now signed \"{title}\". The minutes are signed and "
           "sealed.\nDownload the signed minutes (PDF): {link}\n\n"
           "Anyone can check the signatures: {verify}\n"),
}


def signed_copy(lang: str, *, to: str, name: str, title: str, link: str, verify: str,
                reply_to: str = "") -> Mail:
    """To a signer: everyone has signed; *link* fetches the signed protocol."""
    subject, body = _SIGNED_COPY[lang]
    fields = dict(name=name, title=title, link=link, verify=verify)
    return Mail(language=lang, to=to, subject=subject.format(**fields),
                body=body.format(**fields), reply_to=reply_to)


def completed(lang: str, *, to: str, title: str, link: str) -> Mail:
    """To the secretariat: everyone has signed; *link* is the round's page (:func:`round_page`)."""
    subject, body = _COMPLETED[lang]
    return Mail(language=lang, to=to, subject=subject.format(title=title),
                body=body.format(title=title, link=link))


def declined(lang: str, *, to: str, title: str, name: str, role: str, reason: str,
             link: str = "", replace: bool = False) -> Mail:
    """To the secretariat: a signer declined; *link*: the round's page.  With
    *replace*, the round goes on once the secretariat names another person."""
    subject, body = _DECLINED[lang]
    fields = dict(title=title, name=name, role=role, reason=reason or "-")
    if replace:
        body += _REPLACE_DECLINED[lang]
    return Mail(language=lang, to=to, subject=subject.format(**fields),
                body=body.format(**fields) + _see_round(lang, link))


_REPLACE_DECLINED = {
    "sv": "Signeringen fortsätter: ange en annan person i samma roll på signeringens sida.\n",
    "en": "The round goes on: name another person in the same role on the round's page.\n",
}


_EXPIRED = {
    "sv": ("Signeringen gick ut: {title}",
           "Signeringen av \"{title}\" gick ut innan alla hade signerat.\n"
           "Har inte signerat: {unsigned}\n"),
    "en": ("Signing expired: {title}",
           "Signing \"{title}\" expired before everyone had signed.\n"
           "Not signed: {unsigned}\n"),
}


def expired(lang: str, *, to: str, title: str, unsigned: list[str], link: str = "") -> Mail:
    """To the secretariat: the deadline passed; *link*: the round's page."""
    subject, body = _EXPIRED[lang]
    return Mail(language=lang, to=to, subject=subject.format(title=title),
                body=body.format(title=title, unsigned=", ".join(unsigned) or "-")
                + _see_round(lang, link))


_CANCELLED = {
    "sv": ("Signeringen avbröts: {title}",
           "Hej {name},\n\n{org} har avbrutit signeringen av \"{title}\". {signed}"
           "Länken du fick fungerar inte längre, och du behöver inte göra något.\n{reason}"),
    "en": ("Signing cancelled: {title}",
           "Hello {name},\n\n{org} has cancelled the signing of \"{title}\". {signed}"
           "The link you were sent no longer works, and you need not do anything.\n{reason}"),
}
_CANCELLED_SIGNED = {"sv": "Din underskrift kommer inte att användas. ",
                     "en": "Your signature will not be used. "}
_CANCELLED_REASON = {"sv": "\nSkäl: {reason}\n", "en": "\nReason: {reason}\n"}


def cancelled(lang: str, *, to: str, name: str, org: str, title: str, reason: str,
              signed: bool, reply_to: str = "") -> Mail:
    """To a signer who had their link: the secretariat cancelled the round."""
    subject, body = _CANCELLED[lang]
    return Mail(language=lang, to=to, subject=subject.format(title=title), body=body.format(
        name=name, org=org, title=title, signed=_CANCELLED_SIGNED[lang] * signed,
        reason=_CANCELLED_REASON[lang].format(reason=reason) if reason else ""),
        reply_to=reply_to)


_MISMATCH = {
    "sv": ("Fel person försökte signera: {title}",
           "Någon annan än {name} ({role}) legitimerade sig med länken till {name} för "
           "\"{title}\".\n"
           "{what}\nIngenting signerades, och länken gäller fortfarande för {name}.\n"
           "Kontakta {name} om länken kan ha vidarebefordrats.\n"),
    "en": ("The wrong person tried to sign: {title}",
           "Someone other than {name} ({role}) identified with the link sent to {name} for "
           "\"{title}\".\n"
           "{what}\nNothing was signed, and the link still works for {name}.\n"
           "Contact {name} if the link may have been forwarded.\n"),
}
_MISMATCH_WHAT = {
    "sv": ("Legitimeringen gav namnet: {reported}.", "Personnumret stämde inte med inbjudan."),
    "en": ("The identification gave the name: {reported}.", "The personal number did not match the "
                                                "invitation."),
}


def identity_mismatch(lang: str, *, to: str, title: str, name: str, role: str, reported: str,
                      by_personal_number: bool, link: str = "") -> Mail:
    """To the secretariat: a signature was refused because the wrong person identified.

    *link*: the round's page, where the signer can be replaced.
    """
    subject, body = _MISMATCH[lang]
    by_name, by_number = _MISMATCH_WHAT[lang]
    what = by_number if by_personal_number else by_name.format(reported=reported)
    return Mail(language=lang, to=to, subject=subject.format(title=title),
                body=body.format(title=title, name=name, role=role, what=what)
                + _see_round(lang, link))
