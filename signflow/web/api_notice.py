"""``/api/v1/rounds/<id>/notice``: the notice of justering (on the API's blueprint)."""

from __future__ import annotations

import io

from flask import g, jsonify, send_file

from signflow.core import notice
from signflow.core.models import Notice
from signflow.pdf.notice import NoticeSheet, notice_pdf
from signflow.web import db, json_date, runtime
from signflow.web.api import READERS, bp
from signflow.web.auth import require


@bp.get("/rounds/<round_id>/notice")
@require(*READERS)
def get_notice(round_id: str):
    """The notice of justering of a completed municipal protocol (dates YYYY-MM-DD)."""
    return jsonify(notice.notice_view(db(), notice.round_notice(db(), g.user, round_id)))


@bp.get("/rounds/<round_id>/notice.pdf")
@require(*READERS)
def get_notice_pdf(round_id: str):
    """The notice as a one-page PDF sealed by the service, made from the stored notice
    on each request (its facts are what is kept; a published notice's never change)."""
    found = notice.round_notice(db(), g.user, round_id)
    data = sealed_notice(found)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{round_id}-anslag.pdf", max_age=0)


def sealed_notice(found: Notice) -> bytes:
    """*found* as its PDF, certified by the service's seal, timestamped, B-LTA."""
    facts = notice.notice_dict(found)
    sheet = NoticeSheet(
        organisation=facts["organisation"], body=facts["body"], title=facts["title"],
        meeting_date=facts["meeting_date"] or "–", justering_date=facts["justering_date"],
        posting_date=facts["posting_date"], takedown_date=facts["takedown_date"],
        kept_at=facts["kept_at"], signed_by="signflow", round_id=found.round_id,
        published=facts["state"] == "published")
    return runtime().services.pdf.seal_report(notice_pdf(sheet), "sv", kind="notice")


@bp.post("/rounds/<round_id>/notice")
@require("secretariat", "admin")
def adjust_notice(round_id: str):
    """Another posting date before publication: ``{"posting_date": "YYYY-MM-DD"}``."""
    day = json_date("posting_date")
    session = db()
    found = notice.adjust_posting(session, runtime().services, g.user, round_id, day)
    session.commit()
    return jsonify(notice.notice_view(session, found))


@bp.post("/rounds/<round_id>/notice/publish")
@require("secretariat", "admin")
def publish_notice(round_id: str):
    """Publish the notice now (``notice.ready`` to the organisation's webhooks)."""
    session = db()
    found = notice.publish_now(session, runtime().services, g.user, round_id)
    session.commit()
    return jsonify(notice.notice_view(session, found))
