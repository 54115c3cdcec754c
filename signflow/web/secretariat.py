"""The secretariat's pages: the rounds list, a new round, a round's own page."""

from __future__ import annotations

import base64
import io
from datetime import date

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, send_file
from flask_babel import gettext as _

from signflow.core import manage, notice, rounds
from signflow.core.audit import round_events, verify_chain
from signflow.core.models import Notice, Round
from signflow.core.people import role_label
from signflow.core.states import RoundStatus
from signflow.errors import IllegalTransition, InvalidInput, NotFound, UnsupportedDocument
from signflow.pdf.thumbnails import thumbnails
from signflow.web import db, read_upload, runtime
from signflow.web import rounds_form as forms
from signflow.web.api import document_response, event_log_response, evidence_download
from signflow.web.api_notice import sealed_notice
from signflow.web.rounds_view import round_view, status_words
from signflow.web.security import current_language
from signflow.web.staff import staff_page

bp = Blueprint("secretariat", __name__)
READERS = ("secretariat", "auditor", "admin")
MANAGERS = ("secretariat", "admin")
PER_PAGE = 20


@bp.get("/rounds")
@staff_page(*READERS)
def list_rounds():
    query = request.args.get("q", "")
    status = request.args.get("status", "")
    try:
        number = int(request.args.get("page", "1"))
    except ValueError:
        number = 1
    found = manage.find_rounds(db(), g.user, query=query, status=status, page=number,
                               per_page=PER_PAGE)
    return render_template("rounds.html", found=found, query=query, status=status,
                           statuses=status_words(), language=current_language(),
                           role_label=role_label)


def _workflows() -> dict:
    return dict(runtime().services.workflows)


def _render_form(form: forms.RoundForm, status: int = 200, *, file_again: bool = False):
    language = current_language()
    workflow_data = {name: {"identity": w.identity, "notice": bool(w.notice),
                            "roles": [[r, role_label(r, language)] for r in w.roles]}
                     for name, w in _workflows().items()}
    return render_template("round_new.html", form=form, workflows=_workflows(),
                           workflow_data=workflow_data,
                           language=language, role_label=role_label,
                           file_again=file_again,
                           max_mb=runtime().settings.max_upload_bytes // (1024 * 1024)), status


@bp.get("/rounds/new")
@staff_page(*MANAGERS)
def new_round():
    workflows = _workflows()
    return _render_form(forms.blank(workflows["standard"], current_language()))


@bp.post("/rounds/new")
@staff_page(*MANAGERS)
def create_round():
    form = forms.read(request.form)
    workflow = _workflows().get(form.values["workflow"]) or _workflows()["standard"]
    action = request.form.get("action", "")
    has_file = bool(getattr(request.files.get("document"), "filename", ""))
    if action and forms.apply_row_action(form, action, (workflow.roles or ("justerare",))[0]):
        return _render_form(form, file_again=has_file)
    forms.check(form, _workflows())
    deadline = _deadline(form)
    if not has_file:
        form.error("document", _("Choose the PDF to be signed."))
    if form.errors:
        return _render_form(form, 400, file_again=has_file)
    try:
        pdf = read_upload()
        spec = rounds.parse_round_spec(forms.spec_input(form))
        session = db()
        round_ = manage.start_round_until(session, runtime().services, g.user, spec, pdf,
                                          deadline)
        session.commit()
    except (InvalidInput, UnsupportedDocument) as exc:
        db().rollback()
        forms.map_refusal(form, exc)
        return _render_form(form, 400, file_again=True)
    flash(_("The round has started and the first invitations are on their way."), "ok")
    return redirect(f"/rounds/{round_.id}", 303)


def _deadline(form: forms.RoundForm):
    from datetime import date

    text = form.values["deadline"]
    if not text or "deadline" in form.errors:
        return None
    try:
        return manage.deadline_from_date(date.fromisoformat(text),
                                         runtime().services.clock.now())
    except InvalidInput as exc:
        form.error("deadline", forms.field_message("deadline", exc))
        return None


@bp.post("/rounds/new/thumbnails")
@staff_page(*MANAGERS)
def new_round_thumbnails():
    """Small images of the chosen file's first pages, rendered in a limited child process."""
    try:
        data = read_upload()
        settings = runtime().settings
        count, images = thumbnails(data, max_bytes=settings.max_upload_bytes,
                                   max_pages=settings.max_pages)
    except (InvalidInput, UnsupportedDocument) as exc:
        return jsonify(error=forms.document_message(exc)), 422
    urls = ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in images]
    return jsonify(pages=count, images=urls)


def _round_page(round_: Round, status: int = 200, *, replace_form=None):
    session = db()
    events = round_events(session, round_.id)
    view = round_view(round_, events, current_language())
    return render_template("round.html", round=round_, view=view,
                           intact=verify_chain(events).intact, replace_form=replace_form,
                           can_manage=g.user.role in MANAGERS,
                           can_evidence=g.user.role in ("auditor", "admin"),
                           pending=round_.status == RoundStatus.PENDING.value,
                           all_signed=rounds.signed_by_all(round_),
                           open_states=manage.replaceable_states(round_),
                           **_notice_facts(session, round_),
                           prepared=manage.prepared_document(session, round_.id),
                           ), status


def _notice_facts(session, round_: Round) -> dict:
    """The round page's notice of justering, where it is and whether it went up late."""
    found = session.get(Notice, round_.id)
    if found is None:
        return {"notice": None}
    return {"notice": found, "notice_board": notice.board_state(session, found),
            "notice_late": notice.is_late(found),
            "notice_due_by": notice.due_by(found).isoformat()}


@bp.get("/rounds/<round_id>")
@staff_page(*READERS)
def show_round(round_id: str):
    return _round_page(rounds.visible_round(db(), g.user, round_id))


@bp.post("/rounds/<round_id>/remind")
@staff_page(*MANAGERS)
def remind(round_id: str):
    session = db()
    try:
        reminded = rounds.remind(session, runtime().services, g.user, round_id)
    except IllegalTransition:
        session.rollback()
        flash(_("The round has ended: there is nobody to remind."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    session.commit()
    if reminded:
        flash(_("A reminder was sent to %(n)d signer(s).", n=len(reminded)), "ok")
    else:
        flash(_("Nobody is waiting to sign just now, so no reminder was sent."), "ok")
    return redirect(f"/rounds/{round_id}", 303)


@bp.post("/rounds/<round_id>/cancel")
@staff_page(*MANAGERS)
def cancel(round_id: str):
    session = db()
    try:
        rounds.cancel(session, runtime().services, g.user, round_id,
                      (request.form.get("reason") or "")[:2000])
    except IllegalTransition as exc:
        session.rollback()
        flash(_("Everyone has signed, and the protocol is being sealed: it can no longer be "
                "cancelled.") if exc.code == "all_signed" else
              _("The round has already ended and cannot be cancelled."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    session.commit()
    flash(_("The round is cancelled. The signing links no longer work, and those who had "
            "one are told by e-mail."), "ok")
    return redirect(f"/rounds/{round_id}", 303)


@bp.post("/rounds/<round_id>/signers/<signer_id>/replace")
@staff_page(*MANAGERS)
def replace_signer(round_id: str, signer_id: str):
    session = db()
    raw = {k: (request.form.get(k) or "").strip()
           for k in ("name", "email", "personal_number", "organisation", "title")}
    try:
        signer = manage.replace_signer(session, runtime().services, g.user, round_id,
                                       signer_id, raw)
    except IllegalTransition:
        session.rollback()
        flash(_("This signer can no longer be replaced: they have signed or declined, "
                "or the round has ended."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    except InvalidInput as exc:
        session.rollback()
        form = forms.RoundForm(raw, [])
        at = f"r-{signer_id}-"
        missing = {"name": _("Give the signer's name."),
                   "email": _("Give the signer's e-mail address.")}
        for key, said in missing.items():
            if not raw[key]:  # an empty address is missing, not "like name@example.se"
                form.error(at + key, said)
        name = str(exc.fields.get("field", ""))
        form.error(at + (name if name in raw else "name"), forms.field_message(name, exc))
        return _round_page(rounds.visible_round(session, g.user, round_id), 400,
                           replace_form={"signer": signer_id, "form": form})
    session.commit()
    flash(_("%(name)s now signs in this place. The earlier link no longer works.",
            name=signer.name), "ok")
    return redirect(f"/rounds/{round_id}", 303)


@bp.get("/rounds/<round_id>/document")
@staff_page(*READERS)
def document(round_id: str):
    return document_response(rounds.visible_round(db(), g.user, round_id))


@bp.get("/rounds/<round_id>/prepared.pdf")
@staff_page(*READERS)
def prepared_document(round_id: str):
    """The prepared PDF, also once the round has moved on to signed versions of it."""
    doc = manage.prepared_document(db(), rounds.visible_round(db(), g.user, round_id).id)
    if doc is None:
        raise NotFound("the round has no prepared document")
    return send_file(io.BytesIO(runtime().services.blobs.get(doc.storage_key)),
                     mimetype="application/pdf", as_attachment=True,
                     download_name=f"{round_id}-prepared.pdf", etag=doc.sha256)


@bp.get("/rounds/<round_id>/events.pdf")
@staff_page(*READERS)
def event_log(round_id: str):
    """The Händelselogg, a GET like the document: it holds no personal number and
    no link, and taking it changes nothing (it is not an audited act)."""
    session = db()
    return event_log_response(session, rounds.visible_round(session, g.user, round_id))


@bp.post("/rounds/<round_id>/evidence")
@staff_page("auditor", "admin")
def evidence(round_id: str):
    """A POST with the form's CSRF token: taking the evidence is an audited act, and
    a link from another site (cookies ride along on top-level GETs) must not do it."""
    return evidence_download(db(), g.user, round_id)


@bp.get("/rounds/<round_id>/notice.pdf")
@staff_page(*READERS)
def notice_pdf(round_id: str):
    """The notice of justering, sealed, as the API gives it."""
    data = sealed_notice(notice.round_notice(db(), g.user, round_id))
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{round_id}-anslag.pdf", max_age=0)


@bp.post("/rounds/<round_id>/notice")
@staff_page(*MANAGERS)
def adjust_notice(round_id: str):
    """Another posting date for the notice of justering, before it is published."""
    session = db()
    try:
        day = date.fromisoformat((request.form.get("posting_date") or "").strip())
        notice.adjust_posting(session, runtime().services, g.user, round_id, day)
    except ValueError:
        flash(_("Give the posting date as YYYY-MM-DD."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    except InvalidInput:
        session.rollback()
        flash(_("The notice must go up between the day of justering and two days after it."),
              "error")
        return redirect(f"/rounds/{round_id}", 303)
    except IllegalTransition:
        session.rollback()
        flash(_("The notice is already published; its dates can no longer change."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    session.commit()
    flash(_("The posting date is changed; the take-down date follows it."), "ok")
    return redirect(f"/rounds/{round_id}", 303)


@bp.post("/rounds/<round_id>/notice/publish")
@staff_page(*MANAGERS)
def publish_notice(round_id: str):
    """Publish the notice of justering now (the notice board hears of it)."""
    session = db()
    try:
        notice.publish_now(session, runtime().services, g.user, round_id)
    except IllegalTransition:
        session.rollback()
        flash(_("The notice is already published."), "error")
        return redirect(f"/rounds/{round_id}", 303)
    session.commit()
    if notice.board_state(session, notice.round_notice(session, g.user, round_id)) == "none":
        flash(_("The notice is published, but no notice board is connected: put it up "
                "yourself."), "error")
    else:
        flash(_("The notice is published and on its way to the notice board."), "ok")
    return redirect(f"/rounds/{round_id}", 303)
