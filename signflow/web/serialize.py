"""API representations of domain objects."""

from __future__ import annotations

from datetime import UTC, datetime

from signflow.core.models import Round, Signer


def _ts(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z``: every time the API gives is written alike (a deadline
    just moved is in Swedish time until read back)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def signer_dict(s: Signer) -> dict:
    return {
        "id": s.id, "position": s.position, "name": s.name, "email": s.email, "role": s.role,
        "organisation": s.organisation, "title": s.title, "status": s.status,
        "signed_at": _ts(s.signed_at), "transaction_id": s.transaction_id, "method": s.method,
        "verified_name": s.verified_name, "decline_reason": s.decline_reason or None,
        # whether a personnummer binds the signer; the number itself never leaves
        "personal_number_required": s.personal_number_given,
        "identity_check": s.identity_check,
    }


def round_dict(r: Round) -> dict:
    return {
        "id": r.id, "title": r.title, "status": r.status, "workflow": r.workflow,
        "language": r.language, "order": r.order, "identity_policy": r.identity_policy,
        "document_sha256": r.document_sha256,
        "created_at": _ts(r.created_at), "expires_at": _ts(r.expires_at),
        "completed_at": _ts(r.completed_at),
        "body": r.body, "meeting_date": r.meeting_date.isoformat() if r.meeting_date else None,
        "kept_at": r.kept_at,
        "signers": [signer_dict(s) for s in r.signers],
    }
