"""A verification verdict in plain Swedish or English: one wording for the
``/verify`` page, the one-page PDF report and the command line.

:func:`plain_verdict` turns a :class:`~signflow.pdf.verify.VerificationReport`
into sentences: a headline ("Giltig: alla tre har signerat"), what to do when
the verdict cannot be given, and per signature who, in which role, when, with
which transaction, how the identity was checked and the evidence's state.
The ETSI names stay available as the technical detail.  Nothing here can show
a personal number: the report carries none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from signflow.core.people import method_in, role_in
from signflow.pdf.trail_mark import TrailReport
from signflow.pdf.verdict_text import (
    ADVICE,
    EVIDENCE_WORDS,
    FILE_NOTES,
    HEADLINES,
    INDICATIONS,
    KIND_MEANINGS,
    KIND_TITLES,
    MEANINGS,
    NUMBERS,
    PROBLEMS,
    PUBLISHED,
    SUB_INDICATIONS,
    TRAIL_WORDS,
)
from signflow.pdf.verify import (
    INDETERMINATE,
    TOTAL_FAILED,
    TOTAL_PASSED,
    SignatureReport,
    VerificationReport,
)
from signflow.pdf.verify_evidence import EvidenceReport

STOCKHOLM = ZoneInfo("Europe/Stockholm")
LANGUAGES = ("sv", "en")


def language_of(language: str | None) -> str:
    """*language* if signflow speaks it, else Swedish."""
    return language if language in LANGUAGES else "sv"


@dataclass(frozen=True)
class SignatureWords:
    """One signature, seal or timestamp in plain words."""

    #: The signature field's name (``Underskrift1``, ``Certifiering``).
    field: str
    #: ``approval``, ``certification`` or ``timestamp``.
    kind: str
    #: ETSI main indication (TOTAL-PASSED, TOTAL-FAILED, INDETERMINATE).
    indication: str
    #: Who: the person's name, or what the seal or timestamp is.
    who: str
    #: The role the signature page names for this field (approvals only).
    role: str | None
    #: The verdict on this one signature, in a sentence.
    verdict: str
    #: When, as RFC 3339 (the timestamp's time where there is one).
    when: str | None
    #: BankID's order reference (Transaktions-ID).
    transaction_id: str | None
    #: How the service checked the person's identity against the invitation.
    identity: str | None
    #: The identity evidence's state: for this document, sealed, opened, provider.
    evidence: str | None
    #: What is wrong, in plain words.
    problems: tuple[str, ...]
    #: ETSI names, integrity, trust, changes after, level, the verifier's own words.
    technical: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """The verdict on a whole file in plain words."""

    language: str
    #: ETSI main indication of the file; None when it has no signatures.
    indication: str | None
    #: The verdict in one line, e.g. "Giltig: alla tre har signerat".
    headline: str
    #: The ETSI names of the verdict, e.g. "TOTAL-FAILED / HASH_FAILURE".
    names: str
    #: What the reader can do about it (where to get a trust anchor, try later).
    advice: tuple[str, ...]
    #: The people's approval signatures, then the seal and the timestamps.
    signatures: tuple[SignatureWords, ...]
    #: File-level problems in plain words.
    problems: tuple[str, ...]
    #: The file-level problems as the verifier states them.
    technical: tuple[str, ...]
    sha256: str
    #: What the file says of the round's audit trail, in sentences (none: it names none).
    trail: tuple[str, ...] = ()
    #: Every signature field is signed (a file from a running round is not).
    complete: bool = True

    @property
    def approvals(self) -> tuple[SignatureWords, ...]:
        return tuple(s for s in self.signatures if s.kind == "approval")

    @property
    def others(self) -> tuple[SignatureWords, ...]:
        return tuple(s for s in self.signatures if s.kind != "approval")


def plain_verdict(report: VerificationReport, language: str = "sv") -> Verdict:
    """*report* in plain words, in Swedish (default) or English."""
    lang = language_of(language)
    sigs = [signature_words(s, lang) for s in report.signatures]
    sigs.sort(key=lambda s: s.kind != "approval")
    return Verdict(
        language=lang, indication=report.indication, headline=headline_words(report, lang),
        names=" / ".join(n for n in (report.indication, report.sub_indication) if n),
        advice=tuple(advice(report, lang)), signatures=tuple(sigs),
        problems=tuple(plain_problem(p, lang) for p in report.problems
                       if report.signatures) + tuple(file_notes(report, lang)),
        technical=report.problems, sha256=report.sha256,
        trail=tuple(trail_words(report.audit_trail, lang)) if report.audit_trail else (),
        complete=report.complete)


def file_notes(report: VerificationReport, language: str = "sv") -> list[str]:
    """The fields nobody has signed, and any bytes appended after the last revision."""
    if not report.signatures:
        return []
    words = FILE_NOTES[language_of(language)]
    notes = [words["unsigned"].format(field=f.field, role=role_in(f.role, language))
             if f.role else words["unsigned_no_role"].format(field=f.field)
             for f in report.unsigned_fields]
    if report.trailing_bytes:
        notes.append(words["trailing"].format(n=report.trailing_bytes))
    return notes


def trail_words(trail: TrailReport, language: str = "sv") -> list[str]:
    """The audit-trail mark in sentences: what it commits to, and how that checked out."""
    words = TRAIL_WORDS[language_of(language)]
    if not trail.timestamp_valid:  # anyone can write a head into a PDF: say it is not proven
        return [words["named"].format(seq=trail.seq, head=trail.head[:16], problem="; ".join(
            plain_problem(p, language) for p in trail.problems) or "?")]
    out = [words["commits"].format(seq=trail.seq, head=trail.head[:16],
                                   when=stockholm_time(trail.timestamped_at))]
    if trail.matches_trail is not None:
        out.append(words["matches" if trail.matches_trail else "differs"])
    return out


def headline_words(report: VerificationReport, language: str = "sv") -> str:
    """The verdict on the file in a line, without the ETSI names."""
    lang = language_of(language)
    words = HEADLINES[lang]
    if report.indication == TOTAL_PASSED:
        count = sum(s.kind == "approval" for s in report.signatures)
        if report.unsigned_fields:
            return str(words["partial"]).format(
                signed=count, total=count + len(report.unsigned_fields))
        return str(words["passed"][min(count, 3)]).format(n=NUMBERS[lang].get(count, str(count)))
    if report.indication == TOTAL_FAILED:
        return str(words["failed"].get(_failure(report), words["failed"][None]))
    if report.indication == INDETERMINATE:
        return str(words["indeterminate"].get(report.sub_indication,
                                              words["indeterminate"][None]))
    return str(words["none"])


def _failure(report: VerificationReport) -> str | None:
    """The kind of failure the headline names: a change after signing first."""
    failed = [s for s in report.signatures if s.indication == TOTAL_FAILED]
    if any(s.sub_indication == "HASH_FAILURE" or "changed after signing" in " ".join(s.problems)
           or s.docmdp_ok is False for s in failed):
        return "changed"
    if any(s.evidence is not None and s.evidence.problems for s in failed):
        return "evidence"
    return report.sub_indication


def headline(report: VerificationReport, language: str = "en") -> str:
    """The verdict on the file in a line, its ETSI names in brackets (PDF, command line)."""
    text = headline_words(report, language)
    names = " / ".join(n for n in (report.indication, report.sub_indication) if n)
    return f"{text} ({names})" if names else text


def advice(report: VerificationReport, language: str = "sv") -> list[str]:
    """What the reader can do about the verdict: not rely on a failed file, get the
    issuer's trust anchors, try later, or choose the signed file."""
    lang = language_of(language)
    lines = published(report, lang)
    if report.indication is None:
        return [ADVICE[lang]["unsigned"]]
    if report.indication == TOTAL_FAILED:  # a failure is a failure whoever issued it
        return [ADVICE[lang]["failed"], *lines]
    if report.indication == TOTAL_PASSED:
        return []
    subs = {s.sub_indication for s in report.signatures if s.indication == INDETERMINATE}
    if subs & {"NO_CERTIFICATE_CHAIN_FOUND", "CERTIFICATE_CHAIN_GENERAL_FAILURE"} and not lines:
        lines.append(ADVICE[lang]["unknown_root"])
    if subs & {"TRY_LATER", "OUT_OF_BOUNDS_NO_POE", "REVOKED_NO_POE"}:
        lines.append(ADVICE[lang]["try_later"])
    return lines or [ADVICE[lang]["other"]]


def anchors_urls(report: VerificationReport) -> list[str]:
    """Where the issuing services publish their trust anchors, once each."""
    return sorted({s.trust_anchors_url for s in report.signatures if s.trust_anchors_url})


def published(report: VerificationReport, language: str = "en") -> list[str]:
    """The sentences saying where to get the missing trust anchors (none if none are)."""
    return [PUBLISHED[language_of(language)].format(url=url) for url in anchors_urls(report)]


def describe(indication: str | None, sub_indication: str | None, language: str = "en") -> str:
    """One indication with its ETSI names first, e.g.
    ``INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND: indeterminate, the certificate …``."""
    lang = language_of(language)
    if indication is None:
        return str(HEADLINES[lang]["none"])
    names = f"{indication} / {sub_indication}" if sub_indication else indication
    word = INDICATIONS[lang].get(indication, indication)
    detail = meaning(indication, sub_indication, lang)
    return f"{names}: {word}, {detail}" if detail else f"{names}: {word}"


def meaning(indication: str, sub_indication: str | None, language: str = "sv") -> str:
    """What an indication means, in words only ("" for an unknown sub-indication)."""
    lang = language_of(language)
    if sub_indication:
        return SUB_INDICATIONS[lang].get(sub_indication, "")
    return MEANINGS[lang].get(indication, "")


def signature_words(s: SignatureReport, language: str = "sv") -> SignatureWords:
    """One signature in plain words."""
    lang = language_of(language)
    who = s.signer if s.kind == "approval" else KIND_TITLES[lang][s.kind].format(signer=s.signer)
    verdict = (meaning(s.indication, s.sub_indication, lang) if s.sub_indication else "") or (
        KIND_MEANINGS[lang].get(s.kind, {}).get(s.indication)
        or MEANINGS[lang].get(s.indication, s.indication))
    said = verdict[:1].upper() + verdict[1:] + "."
    problems = tuple(p for p in dict.fromkeys(plain_problem(p, lang) for p in s.problems)
                     if p != said)
    e = s.evidence
    return SignatureWords(
        field=s.field, kind=s.kind, indication=s.indication, who=who or s.field,
        role=role_in(s.role, lang) if s.role else None, verdict=said[:-1],
        when=s.timestamp_time or s.signing_time, transaction_id=s.transaction_id,
        identity=identity_words(e, lang) if e is not None else None,
        evidence=evidence_state(e, lang) if e is not None else None,
        problems=problems, technical=tuple(_technical(s, lang)))


def _technical(s: SignatureReport, lang: str) -> list[str]:
    t = EVIDENCE_WORDS[lang]
    yes_no = {True: t["yes"], False: t["no"], None: "–"}
    lines = [describe(s.indication, s.sub_indication, lang),
             f"{t['intact']}: {yes_no[s.intact]} · {t['trusted']}: {yes_no[s.trusted]} · "
             f"{t['changes']}: {s.modification_level or '–'} · PAdES {s.pades_level or '–'}"
             f" · LTA {s.ades_indication or '–'}"]
    if s.signer_subject:
        lines.append(s.signer_subject)
    lines.extend(s.problems)
    return lines


def plain_problem(text: str, language: str = "sv") -> str:
    """A problem the verifier states in English, in plain words of *language*."""
    lang = language_of(language)
    for start, words in PROBLEMS:
        if text.startswith(start):
            day = re.search(r"\d{4}-\d{2}-\d{2}", text)  # a date the words name again
            return words[lang].replace("{date}", day.group(0) if day else "")
    return text


def identity_words(e: EvidenceReport, language: str = "sv") -> str | None:
    """How the service checked the person against the invitation, in a sentence."""
    w = EVIDENCE_WORDS[language_of(language)]
    return w.get(f"identity_{e.identity_check}") if e.identity_check else None


def evidence_state(e: EvidenceReport, language: str = "sv") -> str:
    """The identity evidence's state: this document's, sealed, opened, the provider's check."""
    w = EVIDENCE_WORDS[language_of(language)]
    provider = method_in(e.provider or "BankID", language_of(language))
    parts = [w["for_this"] if e.matches_document else w["for_other"]]
    if e.sealed:
        parts.append(w["sealed"] if e.sealed_intact else w["sealed_broken"])
        if e.opened:
            parts.append(w["opened"])
    if e.provider_signature_valid is not None or not e.sealed or e.opened:
        key = {True: "provider_ok", False: "provider_bad", None: "provider_unchecked"}
        parts.append(w[key[e.provider_signature_valid]].format(provider=provider))
    return ", ".join(parts) + "."


def evidence_words(e: EvidenceReport, language: str = "en") -> list[str]:
    """The identity evidence of a signature in sentences: its state, then the identity check."""
    identity = identity_words(e, language)
    return [evidence_state(e, language), *([identity] if identity else [])]


def stockholm_time(value: str | None) -> str:
    """RFC 3339 *value* as Europe/Stockholm wall time with seconds ("" for none)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S")
