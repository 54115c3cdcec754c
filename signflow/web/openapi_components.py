"""The reusable parts of the API's OpenAPI description: schemas, parameters,
headers and error responses (:mod:`signflow.web.openapi` puts them together).

Closed sets (statuses, policies, webhook events, limits) are read from the code
that enforces them, so the description cannot name a value the service does
not know; the shapes of :mod:`signflow.web.serialize` and friends are checked
against real answers in ``tests/test_openapi.py``.
"""

from __future__ import annotations

from typing import Any

from signflow.core import notice, rounds, webhooks
from signflow.core.identity import IdentityPolicy
from signflow.core.states import NoticeStatus, RoundStatus, SignerStatus

Schema = dict[str, Any]


def ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def nullable(type_: str, **more: Any) -> Schema:
    return {"type": [type_, "null"], **more}


def obj(properties: dict[str, Schema], *, required: list[str] | None = None,
        closed: bool = True, **more: Any) -> Schema:
    """An object schema; *required* defaults to every property, *closed* forbids others."""
    out: Schema = {"type": "object", "properties": properties,
                   "required": list(properties) if required is None else required}
    if closed:
        out["additionalProperties"] = False
    return out | more


TIMESTAMP = nullable("string", format="date-time",
                     description="RFC 3339, UTC (`Z`); null until it happens")
DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

SIGNER = obj({
    "id": {"type": "string"},
    "position": {"type": "integer", "minimum": 1,
                 "description": "1-based; *Underskrift N* on the signature page"},
    "name": {"type": "string"},
    "email": {"type": "string"},
    "role": {"type": "string", "description": "`ordforande`, `justerare`, `sekreterare` or "
                                              "a role the workflow names"},
    "organisation": {"type": "string"},
    "title": {"type": "string"},
    "status": {"type": "string", "enum": [s.value for s in SignerStatus]},
    "signed_at": TIMESTAMP,
    "transaction_id": nullable("string", description="the identity provider's order "
                                                      "reference (Transaktions-ID)"),
    "method": nullable("string", description="identification method, once signed"),
    "verified_name": nullable("string", description="the name the identity provider "
                                                     "reported"),
    "decline_reason": nullable("string"),
    "personal_number_required": {"type": "boolean", "description": "whether a personnummer "
                                 "binds the signer (the number itself is never shown)"},
    "identity_check": nullable("string", description="what the signature was checked "
                                                      "against, once signed"),
})

ROUND = obj({
    "id": {"type": "string"},
    "title": {"type": "string"},
    "status": {"type": "string", "enum": [s.value for s in RoundStatus]},
    "workflow": {"type": "string"},
    "language": {"type": "string", "enum": ["sv", "en"]},
    "order": {"type": "string", "description": "`parallel`, `sequential` or `steps`"},
    "identity_policy": {"type": "string", "enum": [p.value for p in IdentityPolicy]},
    "document_sha256": {"type": "string", "description": "SHA-256 of the prepared PDF "
                                                         "every signer approves"},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time",
                   "description": "the deadline: the signing links end then"},
    "completed_at": TIMESTAMP,
    "body": {"type": "string", "description": "the body whose meeting it records"},
    "meeting_date": nullable("string", format="date"),
    "kept_at": {"type": "string", "description": "where the protocol is kept"},
    "signers": {"type": "array", "items": ref("schemas", "Signer")},
})

TEXT_OR_NULL = {"type": ["string", "null"]}
SIGNER_SPEC = obj({
    "name": {**TEXT_OR_NULL, "maxLength": 200},
    "email": {**TEXT_OR_NULL, "maxLength": 320, "description": "an e-mail address"},
    "role": {**TEXT_OR_NULL, "maxLength": 50, "description":
             "`ordforande`, `justerare`, `sekreterare` (or `chair`, `adjuster`, `secretary`), "
             "or a role the workflow names"},
    "organisation": {**TEXT_OR_NULL, "maxLength": 200},
    "title": {**TEXT_OR_NULL, "maxLength": 200},
    "personal_number": {**TEXT_OR_NULL, "maxLength": 13,
                        "description": "Swedish personnummer YYYYMMDDNNNC (a hyphen before "
                                       "the last four accepted), checksum-checked"},
}, required=["name", "email", "role"], closed=False)

ROUND_SPEC = obj({
    "title": {**TEXT_OR_NULL, "maxLength": 300},
    "workflow": {**TEXT_OR_NULL, "maxLength": 100, "description": "default `standard`"},
    "language": {"type": ["string", "null"], "enum": ["sv", "en", "", None]},
    "order": {"type": ["string", "null"], "enum": ["parallel", "sequential", "", None],
              "description": "empty: the workflow's"},
    "signers": {"type": "array", "minItems": 1, "maxItems": rounds.MAX_SIGNERS,
                "items": ref("schemas", "SignerSpec")},
    "message": {**TEXT_OR_NULL, "maxLength": 4000},
    "body": {**TEXT_OR_NULL, "maxLength": 200,
             "description": "the body whose meeting it records (a notice workflow needs it)"},
    "meeting_date": {**TEXT_OR_NULL,
                     "description": "YYYY-MM-DD (a notice workflow needs it)"},
    "kept_at": {**TEXT_OR_NULL, "maxLength": 300,
                "description": "where the protocol is kept, which the notice says (a notice "
                               "workflow needs it)"},
}, required=["title", "signers"], closed=False)

AUDIT_EVENT = obj({
    "seq": {"type": "integer"},
    "type": {"type": "string"},
    "at": {"type": "string", "format": "date-time"},
    "actor": {"type": "string"},
    "data": {"type": "object"},
    "prev_hash": HEX64,
    "hash": HEX64,
}, description="`hash`: SHA-256 of the event's JSON without `hash`, keys sorted, "
               "separators `,` and `:`; `prev_hash` of the first event: 64 zeros")

WEBHOOK = obj({
    "id": {"type": "string"},
    "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string", "enum": list(webhooks.EVENTS)}},
    "active": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time"},
})

#: The signer an event is about, as its ``data`` names them.
_EVENT_SIGNER = obj({"id": {"type": "string"}, "name": {"type": "string"},
                     "role": {"type": "string"}})
#: What each event's ``data`` holds (a receiver may get more fields later).
EVENT_DATA: dict[str, Schema] = {
    "signer.signed": obj({"signer": obj({**_EVENT_SIGNER["properties"],
                                         "position": {"type": "integer"}}),
                          "transaction_id": {"type": "string"},
                          "signed_at": {"type": "string", "format": "date-time"}},
                         closed=False),
    "signer.declined": obj({"signer": _EVENT_SIGNER, "reason": {"type": "string"},
                            "round_continues": {"type": "boolean", "description":
                                                "the workflow lets another person take the "
                                                "place; else `round.declined` follows"}},
                           closed=False),
    "round.declined": obj({"signer": _EVENT_SIGNER, "reason": {"type": "string"}},
                          closed=False),
    "round.completed": obj({"sha256": HEX64,
                            "completed_at": {"type": "string", "format": "date-time"},
                            "document": {"type": "string", "description": "its API URL"}},
                           closed=False),
    "round.expired": obj({"expires_at": {"type": "string", "format": "date-time"},
                          "unsigned": {"type": "array", "items": {"type": "string"},
                                       "description": "the names of those who had not"}},
                         closed=False),
    "round.cancelled": obj({"reason": {"type": "string", "description": "empty: none given"}},
                           closed=False),
    "notice.ready": obj({"notice": ref("schemas", "Notice"),
                         "pdf": {"type": "string", "description": "the notice's PDF, its "
                                                                  "API URL"}}, closed=False),
    "document.renewed": obj({"previous_sha256": HEX64, "sha256": HEX64,
                             "document": {"type": "string", "description":
                                          "the renewed PDF (a newer document timestamp), "
                                          "its API URL: archives holding the earlier copy "
                                          "fetch this one"}}, closed=False),
}


def event_body(event: str) -> Schema:
    """The JSON body of a delivery of *event* (``Signflow-Delivery`` is its ``id``)."""
    return obj({
        "id": {"type": "string", "description": "the delivery: the same on every retry"},
        "event": {"type": "string", "const": event},
        "created_at": {"type": "string", "format": "date-time"},
        "round": obj({"id": {"type": "string"}, "title": {"type": "string"},
                      "status": {"type": "string"}, "url": {"type": "string"}}),
        "data": EVENT_DATA[event],
    })


DELIVERY = obj({
    "id": {"type": "string"},
    "webhook": {"type": "string"},
    "url": {"type": "string"},
    "event": {"type": "string", "enum": list(webhooks.EVENTS)},
    "round": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "state": {"type": "string", "enum": ["pending", "failing", "delivered", "dropped"],
              "description": "dropped: the webhook was removed before it went out"},
    "attempts": {"type": "integer", "minimum": 0},
    "last_status": nullable("integer"),
    "last_error": nullable("string"),
    "delivered_at": TIMESTAMP,
    "next_attempt_at": TIMESTAMP,
})

NOTICE = obj({
    "round": {"type": "string"},
    "title": {"type": "string"},
    "state": {"type": "string", "enum": [s.value for s in NoticeStatus]},
    "body": {"type": "string"},
    "organisation": {"type": "string"},
    "meeting_date": nullable("string", format="date"),
    "justering_date": DATE,
    "posting_date": DATE,
    "takedown_date": DATE,
    "kept_at": {"type": "string"},
    "published_at": TIMESTAMP,
    "late": {"type": "boolean", "description": "published after the last day KL 8 kap. 12 § "
                                               "allows (two days after the justering)"},
    "board": {"type": ["string", "null"], "enum": [*notice.BOARD_STATES, None],
              "description": "the API only, once published: whether a notice board has it "
                             "(none: no webhook for notice.ready was registered)"},
}, required=["round", "title", "state", "body", "organisation", "meeting_date",
             "justering_date", "posting_date", "takedown_date", "kept_at", "published_at",
             "late"])

STRINGS = {"type": "array", "items": {"type": "string"}}
EVIDENCE = obj({
    "provider": nullable("string"), "order_ref": nullable("string"),
    "completed_at": nullable("string"), "document_sha256": nullable("string"),
    "matches_document": {"type": "boolean"}, "provider_signature_valid": nullable("boolean"),
    "problems": STRINGS, "identity_check": nullable("string"), "sealed": {"type": "boolean"},
    "sealed_intact": nullable("boolean"), "opened": {"type": "boolean"},
    "recipients": STRINGS, "name": nullable("string"),
})
SIGNATURE_REPORT = obj({
    "field": {"type": "string"},
    "kind": {"type": "string", "enum": ["certification", "approval", "timestamp"]},
    "signer": {"type": "string"}, "signer_subject": {"type": "string"},
    "signing_time": nullable("string"), "timestamp_time": nullable("string"),
    "intact": {"type": "boolean"}, "trusted": {"type": "boolean"},
    "modification_level": nullable("string"), "coverage": nullable("string"),
    "docmdp_ok": nullable("boolean"), "transaction_id": nullable("string"),
    "valid": {"type": "boolean"}, "problems": STRINGS,
    "pades_level": nullable("string"), "ades_indication": nullable("string"),
    "evidence": {"oneOf": [ref("schemas", "EvidenceReport"), {"type": "null"}]},
    "indication": {"type": "string"}, "sub_indication": nullable("string"),
    "trust_anchors_url": nullable("string"), "role": nullable("string"),
})
ROUND_CHECK = obj({
    "id": {"type": "string"}, "title": {"type": "string"},
    "status": {"type": "string", "enum": [s.value for s in RoundStatus]},
    "signers_required": {"type": "integer"}, "signers_in_document": {"type": "integer"},
    "all_required_signers_present": {"type": "boolean"},
    "transaction_ids_match": {"type": "boolean"}, "times_match_audit_trail": {"type": "boolean"},
    "chain_intact": {"type": "boolean"},
    "audit_trail_matches": nullable(
        "boolean", description="the audit-trail head the file commits to is this round's "
        "event at that number, intact from the first (null: the file names no head)"),
}, description="the service's records of the round, for a token of its organisation")
TRAIL_REPORT = obj({
    "seq": {"type": "integer"}, "head": HEX64,
    "timestamped_at": nullable("string"), "timestamp_valid": {"type": "boolean"},
    "problems": STRINGS, "matches_trail": nullable("boolean"),
}, description="the round's audit-trail head the file commits to, timestamped (RFC 3161)")
VERIFICATION = obj({
    "valid": {"type": "boolean", "description": "the file has signatures and all are valid"},
    "signatures": {"type": "array", "items": ref("schemas", "SignatureReport")},
    "problems": STRINGS,
    "sha256": HEX64,
    "indication": nullable("string", description="TOTAL-PASSED, TOTAL-FAILED or "
                                                 "INDETERMINATE; null without signatures"),
    "sub_indication": nullable("string"),
    "audit_trail": {"oneOf": [ref("schemas", "TrailReport"), {"type": "null"}]},
    "unsigned_fields": {"type": "array", "description": "signature fields nobody has signed "
                                                        "(a round still running)",
                        "items": obj({"field": {"type": "string"}, "role": nullable("string")},
                                     required=["field", "role"])},
    "trailing_bytes": {"type": "integer", "description": "bytes after the file's last "
                                                         "revision: in no signature"},
    "known_to_service": {"type": "boolean", "description": "this service issued the file"},
    "round": ref("schemas", "RoundCheck"),
}, required=["valid", "signatures", "problems", "sha256", "indication", "sub_indication",
             "known_to_service"])

ERROR = obj({
    "error": obj({
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string", "description": "for people"},
        "field": {"type": "string", "description": "the input at fault, when one is"},
    }, required=["code", "message"], closed=False,
        description="more fields may say more (e.g. `max_bytes`, `retry_after`)"),
}, description="every 4xx and 5xx answer of the API")

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR, "Signer": SIGNER, "Round": ROUND,
    "SignerSpec": SIGNER_SPEC, "RoundSpec": ROUND_SPEC,
    "RoundsPage": obj({
        "rounds": {"type": "array", "items": ref("schemas", "Round")},
        "total": {"type": "integer", "minimum": 0}, "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1}}),
    "AuditEvent": AUDIT_EVENT,
    "AuditTrail": obj({
        "events": {"type": "array", "items": ref("schemas", "AuditEvent")},
        "head": {**HEX64, "description": "the last event's hash (64 zeros without events)"},
        "intact": {"type": "boolean", "description": "every hash and link checks out"}}),
    "Cancellation": obj({"reason": {**TEXT_OR_NULL, "maxLength": 2000,
                                    "description": "e-mailed to the signers"}},
                        closed=False),
    "Person": obj({
        "name": {**TEXT_OR_NULL, "maxLength": 200}, "email": {**TEXT_OR_NULL, "maxLength": 320},
        "personal_number": {**TEXT_OR_NULL, "maxLength": 13},
        "organisation": {**TEXT_OR_NULL, "maxLength": 200,
                         "description": "as the signature page prints it; default: none"},
        "title": {**TEXT_OR_NULL, "maxLength": 200,
                  "description": "as the signature page prints it; default: none"}},
        required=["name", "email"], closed=False),
    "Webhook": WEBHOOK,
    "NewWebhook": obj({**WEBHOOK["properties"], "secret": {
        "type": "string", "description": "the HMAC-SHA256 key of `Signflow-Signature`, "
                                         "shown this once"}}),
    "WebhookRequest": obj({
        "url": {"type": "string", "description": "https (http in development mode)"},
        "events": {"type": "array", "items": {"type": "string", "enum": list(webhooks.EVENTS)},
                   "description": "default: every event"}}, required=["url"], closed=False),
    "Delivery": DELIVERY,
    "Notice": NOTICE,
    "EvidenceReport": EVIDENCE, "SignatureReport": SIGNATURE_REPORT, "TrailReport": TRAIL_REPORT,
    "RoundCheck": ROUND_CHECK, "VerificationReport": VERIFICATION,
}

HEADERS: dict[str, Schema] = {
    "ETag": {"description": "the representation's entity tag, for `If-None-Match`",
             "schema": {"type": "string"}},
    "Location": {"description": "the new round", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when a retry with the same `Idempotency-Key` got the round "
                       "the first request made", "schema": {"type": "string", "enum": ["true"]}},
    "Retry-After": {"description": "seconds to wait before asking again",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
}

PARAMETERS: dict[str, Schema] = {
    "round_id": {"name": "round_id", "in": "path", "required": True,
                 "schema": {"type": "string"}, "description": "the round's id"},
    "signer_id": {"name": "signer_id", "in": "path", "required": True,
                  "schema": {"type": "string"}, "description": "a signer of the round"},
    "webhook_id": {"name": "webhook_id", "in": "path", "required": True,
                   "schema": {"type": "string"}},
    "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False,
                      "schema": {"type": "string"},
                      "description": "an `ETag` from an earlier answer: 304 if unchanged"},
    "Idempotency-Key": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
        "description": "a retry with the same key and the same request within a day answers "
                       "with the round the first one made; with another request, 409"},
}


def _error(description: str, *, retry: bool = False) -> Schema:
    out: Schema = {"description": description,
                   "content": {"application/json": {"schema": ref("schemas", "Error")}}}
    if retry:
        out["headers"] = {"Retry-After": ref("headers", "Retry-After")}
    return out


RESPONSES: dict[str, Schema] = {
    "NotModified": {"description": "unchanged since the `ETag` sent in `If-None-Match`",
                    "headers": {"ETag": ref("headers", "ETag")}},
    "BadRequest": _error("malformed input (`invalid_input` and kin); nothing was changed"),
    "Unauthorized": _error("no valid token (`unauthorized`)"),
    "Forbidden": _error("the token's role may not do this (`forbidden`)"),
    "NotFound": _error("no such object, or not one of the caller's organisation (`not_found`)"),
    "Conflict": _error("the object's state does not allow this (`conflict`, `round_closed`, "
                       "`signer_done`, `notice_published`, `idempotency_key_reused`…)"),
    "TooLarge": _error("the upload is larger than the service takes (`too_large`)"),
    "NotPdf": _error("the upload is not a PDF, or empty (`not_pdf`)"),
    "Unprocessable": _error("a PDF the service cannot take (`unsupported_document` and kin)"),
    "RateLimited": _error("too many requests from this address (`rate_limited`)", retry=True),
    "Unavailable": _error("briefly unavailable (`unavailable`: the database; `busy`)",
                          retry=True),
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API token (`signflow users add` prints one)"},
}
