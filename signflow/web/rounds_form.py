"""The new-round form: what was typed, the row buttons, and every error next to its field.

The checks here only find *all* the mistakes at once, in words for people;
the authority stays :func:`signflow.core.rounds.parse_round_spec` and
:func:`signflow.core.rounds.start_round`, exactly as for the API, and what
they refuse is mapped back to the field it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from signflow.core import rounds
from signflow.core.identity import IdentityPolicy
from signflow.core.people import canonical_role, normalize_personal_number
from signflow.core.workflows import Workflow
from signflow.errors import InvalidInput, SignflowError, UnsupportedDocument

SIGNER_FIELDS = ("name", "email", "role", "organisation", "title", "personal_number")
TOP_FIELDS = ("title", "workflow", "language", "order", "message", "deadline", "body",
              "meeting_date", "kept_at")
#: Rows a new form starts with, and the most a form takes.
START_ROWS = 3


@dataclass
class RoundForm:
    """What the secretariat typed, kept to show again, and what is wrong with it."""

    values: dict[str, str]
    signers: list[dict[str, str]]
    #: Field id (``title``, ``signers-2-email``, ``document``) → message.
    errors: dict[str, str] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


def blank(workflow: Workflow, language: str) -> RoundForm:
    roles = list(workflow.roles) or ["justerare"]
    signers = [dict.fromkeys(SIGNER_FIELDS, "") | {"role": roles[i % len(roles)]}
               for i in range(START_ROWS)]
    return RoundForm({"title": "", "workflow": workflow.name, "language": language,
                      "order": "", "message": "", "deadline": "", "body": "",
                      "meeting_date": "", "kept_at": ""}, signers)


def read(form: MultiDict) -> RoundForm:
    values = {k: (form.get(k) or "").strip() for k in TOP_FIELDS}
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        prefix, _sep, rest = key.partition("-")
        index, _sep, name = rest.partition("-")
        if prefix == "signers" and index.isascii() and index.isdigit() and name in SIGNER_FIELDS \
                and int(index) < rounds.MAX_SIGNERS * 2:
            rows.setdefault(int(index), dict.fromkeys(SIGNER_FIELDS, ""))[name] = \
                (form.get(key) or "").strip()
    return RoundForm(values, [rows[i] for i in sorted(rows)])


def apply_row_action(form: RoundForm, action: str, default_role: str) -> bool:
    """Add, remove or move a signer row (the buttons work without JavaScript too)."""
    verb, _sep, index = action.partition("-")
    rows = form.signers
    if verb == "add" and len(rows) < rounds.MAX_SIGNERS:
        rows.append(dict.fromkeys(SIGNER_FIELDS, "") | {"role": default_role})
        return True
    if not (index.isascii() and index.isdigit()) or int(index) >= len(rows):
        return verb == "add"
    i = int(index)
    if verb == "remove" and len(rows) > 1:
        rows.pop(i)
    elif verb == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif verb == "down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    return verb in ("remove", "up", "down")


def filled(form: RoundForm) -> list[tuple[int, dict[str, str]]]:
    """The rows with anything typed in them (a role alone does not count)."""
    return [(i, row) for i, row in enumerate(form.signers)
            if any(row[k] for k in SIGNER_FIELDS if k != "role")]


def check(form: RoundForm, workflows: dict[str, Workflow]) -> Workflow | None:
    """Find every mistake; return the chosen workflow if it exists."""
    v = form.values
    if not v["title"]:
        form.error("title", _("Give the document a title."))
    elif len(v["title"]) > 300:
        form.error("title", _("The title can be at most 300 characters."))
    workflow = workflows.get(v["workflow"])
    if workflow is None:
        form.error("workflow", _("Choose one of the workflows."))
    if v["language"] not in ("sv", "en"):
        form.error("language", _("Choose Swedish or English."))
    if v["order"] not in ("", "parallel", "sequential"):
        form.error("order", _("Choose an order."))
    if len(v["message"]) > 4000:
        form.error("message", _("The message can be at most 4000 characters."))
    if v["deadline"]:
        try:
            date.fromisoformat(v["deadline"])
        except ValueError:
            form.error("deadline", _("Give the deadline as a date, like 2027-03-31."))
    _check_meeting(form, workflow)
    rows = filled(form)
    if not rows:
        form.error("signers-0-name", _("Add at least one signer."))
    if len(rows) > rounds.MAX_SIGNERS:
        form.error("signers", _("A round can have at most %(n)d signers.", n=rounds.MAX_SIGNERS))
    needs_number = workflow is not None and \
        workflow.identity == IdentityPolicy.PERSONAL_NUMBER.value
    for i, row in rows:
        _check_signer(form, i, row, needs_number)
    return workflow


def _check_meeting(form: RoundForm, workflow: Workflow | None) -> None:
    """The facts the notice of justering needs, when the workflow prepares one."""
    v = form.values
    for name, limit in (("body", 200), ("kept_at", 300)):
        if len(v[name]) > limit:
            form.error(name, field_message(name, InvalidInput(name)))
    if v["meeting_date"]:
        try:
            date.fromisoformat(v["meeting_date"])
        except ValueError:
            form.error("meeting_date", field_message("meeting_date", InvalidInput("")))
    if workflow is not None and workflow.notice:
        for name in ("body", "meeting_date", "kept_at"):
            if not v[name]:
                form.error(name, field_message(name, InvalidInput(name)))


def _check_signer(form: RoundForm, i: int, row: dict[str, str], needs_number: bool) -> None:
    at = f"signers-{i}-"
    if not row["name"]:
        form.error(at + "name", _("Give the signer's name."))
    if not row["email"]:
        form.error(at + "email", _("Give the signer's e-mail address."))
    try:
        rounds.parse_round_spec({"title": "-", "signers": [row]})
    except InvalidInput as exc:
        name = str(exc.fields.get("field", ""))
        if name in SIGNER_FIELDS:
            form.error(at + name, field_message(name, exc))
    try:
        canonical_role(row["role"])
    except InvalidInput:
        form.error(at + "role", _("Choose a role."))
    if row["personal_number"]:
        try:
            normalize_personal_number(row["personal_number"])
        except InvalidInput as exc:
            form.error(at + "personal_number", field_message("personal_number", exc))
    elif needs_number:
        form.error(at + "personal_number", personal_number_required())


def personal_number_required() -> str:
    return _("This workflow checks each signer's personal number: give it.")


def field_message(name: str, exc: SignflowError) -> str:
    """The words for what the domain refused in field *name*."""
    if exc.code == "personal_number_required":
        return personal_number_required()
    if exc.code == "signer_twice":
        return _("This person is already named for another place: one person signs once.")
    if exc.code == "provider_unavailable":
        return _("This workflow's identity provider is not available here.")
    if exc.code in ("deadline_past", "deadline_far"):
        return _("Choose a deadline between today and a year from now.")
    messages = {
        "name": _("Give the signer's name (at most 200 characters)."),
        "email": _("Give an e-mail address like name@example.se."),
        "role": _("Choose a role."),
        "organisation": _("The organisation can be at most 200 characters."),
        "title": _("Check the title (at most 200 characters)."),
        "personal_number": _("This is not a valid personal number (YYYYMMDD-NNNN): check "
                             "the date and the last four digits."),
        "workflow": _("Choose one of the workflows."),
        "language": _("Choose Swedish or English."),
        "order": _("Choose an order."),
        "message": _("The message can be at most 4000 characters."),
        "body": _("Give the body whose meeting it is (at most 200 characters)."),
        "meeting_date": _("Give the meeting date as a date, like 2026-11-25."),
        "kept_at": _("Give where the protocol is kept, as the notice is to say "
                     "(at most 300 characters)."),
    }
    return messages.get(name, _("Check this field."))


def document_message(exc: UnsupportedDocument | InvalidInput) -> str:
    """Why the upload was refused, in words, and what to do."""
    if not isinstance(exc, UnsupportedDocument):
        return _("Choose the PDF to be signed.")
    words = {
        "not_pdf": _("The file is not a PDF. Choose the protocol as a PDF file."),
        "too_large": _("The file is too large. Make the PDF smaller and choose it again."),
        "encrypted": _("The PDF is password protected. Save it without a password and "
                       "choose it again."),
        "active_content": _("The PDF contains scripts or other active content, which is not "
                            "allowed. Save it as PDF/A (or print it to a new PDF) and choose "
                            "it again."),
        "already_signed": _("The PDF is already signed. Choose the protocol as it was before "
                            "anyone signed it: a signature would be broken by the signature "
                            "page."),
        "no_pages": _("The PDF has no pages. Choose the protocol itself."),
        "too_many_pages": _("The PDF has more pages than this service accepts (at most "
                            "%(most)s).", most="".join(c for c in exc.message if c.isdigit())),
        "too_complex": _("The PDF is too complex to check safely. Save it again as a plain PDF "
                         "(for example PDF/A) and choose it again."),
    }
    return words.get(exc.code, _("The PDF cannot be used: it is damaged or holds content that "
                                 "is not allowed (such as scripts or attachments). Save it "
                                 "again as a plain PDF and choose it again."))


def spec_input(form: RoundForm) -> dict:
    """The form as the round API's JSON, for :func:`rounds.parse_round_spec`."""
    v = form.values
    return {"title": v["title"], "workflow": v["workflow"], "language": v["language"],
            "order": v["order"], "message": v["message"], "body": v["body"],
            "meeting_date": v["meeting_date"], "kept_at": v["kept_at"],
            "signers": [row for _i, row in filled(form)]}


def map_refusal(form: RoundForm, exc: SignflowError) -> None:
    """Put what start_round refused next to the field it names."""
    if isinstance(exc, UnsupportedDocument):
        form.error("document", document_message(exc))
        return
    name = str(exc.fields.get("field", ""))
    if name in SIGNER_FIELDS:
        rows = filled(form)
        if exc.code == "signer_twice":  # the later of the two rows
            seen: set[str] = set()
            for i, row in rows:
                value = row[name].strip().lower().replace("-", "")
                if value and value in seen:
                    form.error(f"signers-{i}-{name}", field_message(name, exc))
                    return
                seen.add(value)
        targets = [i for i, row in rows if not row[name]] if exc.code == \
            "personal_number_required" else [i for i, _row in rows]
        for i in targets[:1] if exc.code != "personal_number_required" else targets:
            form.error(f"signers-{i}-{name}", field_message(name, exc))
    elif name in TOP_FIELDS:
        form.error(name, field_message(name, exc))
    elif name == "document" and isinstance(exc, InvalidInput):
        form.error("document", document_message(exc))
    else:
        form.error("title", field_message(name, exc))
