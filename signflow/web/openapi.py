"""The OpenAPI 3.1 description of ``/api/v1``, served at ``GET /api/v1/openapi.json``.

The description is data, written here in Python rather than shipped as a
YAML or JSON file: the closed sets it names (statuses, webhook events, limits)
are read from the code that enforces them, the repeated parts (error answers,
``ETag`` reads) are made by one function each instead of being copied forty
times, and no package-data or YAML parser is needed.  What cannot be read from
the code is checked against it by ``tests/test_openapi.py``: every route of the
blueprint is described and nothing else is, the document is valid OpenAPI 3.1,
and schemathesis holds the running API to it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from flask import Blueprint, Response, jsonify, request

from signflow.core import webhooks
from signflow.web.openapi_components import (
    HEADERS,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    SECURITY_SCHEMES,
    Schema,
    event_body,
    ref,
)

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"
#: What an error status means, as a reusable response of the description.
ERRORS = {"304": "NotModified", "400": "BadRequest", "401": "Unauthorized", "403": "Forbidden",
          "404": "NotFound", "409": "Conflict", "413": "TooLarge", "415": "NotPdf",
          "422": "Unprocessable", "429": "RateLimited", "503": "Unavailable"}
ANYONE: list[dict] = []  # no token needed
TOKEN_OPTIONAL: list[dict] = [{}, {"bearer": []}]


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """This description (no token needed)."""
    resp = jsonify(description())
    resp.add_etag()
    resp.make_conditional(request)
    return resp


def json_body(schema: str, description: str, headers: dict | None = None) -> Schema:
    out: Schema = {"description": description,
                   "content": {"application/json": {"schema": ref("schemas", schema)}}}
    if headers:
        out["headers"] = headers
    return out


def file_body(media_type: str, description: str, *, etag: bool = False) -> Schema:
    out: Schema = {"description": description,
                   "content": {media_type: {"schema": {"type": "string",
                                                       "contentMediaType": media_type}}}}
    if etag:
        out["headers"] = {"ETag": ref("headers", "ETag")}
    return out


def operation(op_id: str, summary: str, ok: dict[str, Schema], *errors: str, tag: str,
              params: tuple[str, ...] = (), body: Schema | None = None,
              security: list[dict] | None = None, read: bool = False,
              description: str = "") -> Schema:
    """One operation; *errors* are the statuses it may answer besides *ok*.

    A token-bound operation may also answer 401 and 403, every one 503 (the
    database away); a *read* carries an ``ETag`` and answers ``If-None-Match``."""
    ok = copy.deepcopy(ok)
    statuses = set(errors) | {"503"}
    if security is None:
        statuses |= {"401", "403"}
    parameters = [ref("parameters", p) for p in params]
    if read:
        statuses.add("304")
        parameters.append(ref("parameters", "If-None-Match"))
        for answer in ok.values():
            answer.setdefault("headers", {})["ETag"] = ref("headers", "ETag")
    responses = dict(ok) | {s: ref("responses", ERRORS[s]) for s in sorted(statuses)}
    out: Schema = {"operationId": op_id, "summary": summary, "tags": [tag],
                   "responses": responses}
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    if security is not None:
        out["security"] = security
    return out


def json_request(schema: str, required: bool = True) -> Schema:
    return {"required": required,
            "content": {"application/json": {"schema": ref("schemas", schema)}}}


def upload(extra: dict[str, Schema] | None = None, required: tuple[str, ...] = ()) -> Schema:
    properties: dict[str, Schema] = {
        "document": {"type": "string", "format": "binary", "description": "the PDF"},
    } | (extra or {})
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": properties,
                   "required": ["document", *required]},
        "encoding": {"document": {"contentType": "application/pdf"}}}}}


ROUND = {"200": json_body("Round", "the round")}
NOTICE = {"200": json_body("Notice", "the notice of justering")}


def round_paths() -> dict[str, dict[str, Schema]]:
    rid = ("round_id",)
    return {
        "/rounds": {
            "post": operation(
                "createRound", "Start a round", {"201": json_body(
                    "Round", "the new round (or, replayed, the one the key made)",
                    {"Location": ref("headers", "Location"),
                     "Idempotent-Replayed": ref("headers", "Idempotent-Replayed")})},
                "400", "409", "413", "415", "422", tag="rounds",
                params=("Idempotency-Key",),
                body=upload({"round": {
                    "type": "string", "contentMediaType": "application/json",
                    "contentSchema": ref("schemas", "RoundSpec"),
                    "description": "the round, as JSON text"}}, ("round",)),
                description="Secretariat or admin. The PDF is prepared (signature page, "
                            "fields), certified by the service and the first signers invited."),
            "get": operation(
                "listRounds", "The organisation's rounds, newest first",
                {"200": json_body("RoundsPage", "one page of rounds")}, "400",
                tag="rounds", read=True, params=("q", "status", "page", "per_page")),
        },
        "/rounds/{round_id}": {"get": operation(
            "getRound", "One round", dict(ROUND), "404", tag="rounds", params=rid,
            read=True)},
        "/rounds/{round_id}/document": {"get": operation(
            "getDocument", "The round's PDF: the signed one once completed",
            {"200": file_body("application/pdf", "the PDF")}, "404", tag="rounds",
            params=rid, read=True)},
        "/rounds/{round_id}/audit": {"get": operation(
            "getAudit", "The round's hash-chained audit trail",
            {"200": json_body("AuditTrail", "the events and the chain's head")}, "404",
            tag="audit", params=rid, read=True)},
        "/rounds/{round_id}/evidence": {"get": operation(
            "getEvidence", "The evidence ZIP (auditors and admins; recorded in the trail)",
            {"200": file_body("application/zip", "final PDF, audit trail, Händelselogg and "
                                                 "each signer's identity evidence")},
            "404", tag="audit", params=rid, read=True)},
        "/rounds/{round_id}/events.pdf": {"get": operation(
            "getEventLog", "The Händelselogg: every event in words, sealed",
            {"200": file_body("application/pdf", "the sealed PDF")}, "404", tag="audit",
            params=rid)},
        "/rounds/{round_id}/remind": {"post": operation(
            "remind", "E-mail every invited signer who has not signed their link again",
            {"200": json_body("Reminded", "the signers reminded")}, "404", "409",
            tag="rounds", params=rid)},
        "/rounds/{round_id}/cancel": {"post": operation(
            "cancel", "Cancel the round (again: no change); those sent a link are told, "
            "with the reason if one is given. 409 `all_signed` once everyone has signed "
            "(only the sealing is left)", dict(ROUND), "400", "404", "409",
            tag="rounds", params=rid, body=json_request("Cancellation", required=False))},
        "/rounds/{round_id}/signers/{signer_id}/replace": {"post": operation(
            "replaceSigner", "Another person in the place of a signer who has not signed",
            dict(ROUND), "400", "404", "409", tag="rounds", params=("round_id", "signer_id"),
            body=json_request("Person"))},
        "/rounds/{round_id}/deadline": {"post": operation(
            "extendDeadline", "A later deadline: the end of that day, Swedish time",
            dict(ROUND), "400", "404", "409", tag="rounds", params=rid,
            body=json_request("Deadline"))},
    }


def notice_paths() -> dict[str, dict[str, Schema]]:
    rid = ("round_id",)
    return {
        "/rounds/{round_id}/notice": {
            "get": operation("getNotice", "The notice of justering of a completed protocol",
                             dict(NOTICE), "404", tag="notice", params=rid, read=True),
            "post": operation("adjustNotice", "Another posting date, before publication",
                              dict(NOTICE), "400", "404", "409", tag="notice", params=rid,
                              body=json_request("PostingDate")),
        },
        "/rounds/{round_id}/notice.pdf": {"get": operation(
            "getNoticePdf", "The notice as a one-page PDF sealed by the service",
            {"200": file_body("application/pdf", "the sealed PDF")}, "404", tag="notice",
            params=rid)},
        "/rounds/{round_id}/notice/publish": {"post": operation(
            "publishNotice", "Publish the notice now (`notice.ready` to the webhooks)",
            dict(NOTICE), "404", "409", tag="notice", params=rid)},
    }


def webhook_paths() -> dict[str, dict[str, Schema]]:
    return {
        "/webhooks": {
            "get": operation("listWebhooks", "The organisation's webhooks",
                             {"200": json_body("WebhookList", "the webhooks")},
                             tag="webhooks", read=True),
            "post": operation("addWebhook", "Register a receiver",
                              {"201": json_body("NewWebhook", "the webhook, with its secret")},
                              "400", tag="webhooks", body=json_request("WebhookRequest")),
        },
        "/webhooks/{webhook_id}": {"delete": operation(
            "removeWebhook", "Stop a webhook (its deliveries stay on record)",
            {"200": json_body("Webhook", "the webhook, inactive")}, "404", tag="webhooks",
            params=("webhook_id",))},
        "/webhooks/deliveries": {"get": operation(
            "listDeliveries", "The latest deliveries and how they went",
            {"200": json_body("DeliveryList", "newest first")}, tag="webhooks", read=True)},
    }


def public_paths() -> dict[str, dict[str, Schema]]:
    return {
        "/verify": {"post": operation(
            "verify", "The verdict on a PDF, judged as `signflow verify` judges it",
            {"200": {"description": "the verdict: JSON; with `format=pdf` a sealed one-page "
                                    "report; with `format=etsi` the ETSI TS 119 102-2 report",
                     "content": {
                         "application/json": {"schema": ref("schemas", "VerificationReport")},
                         "application/pdf": {"schema": {"type": "string"}},
                         "application/xml": {"schema": {"type": "string"}}}}},
            "400", "401", "413", "415", "422", "429", tag="verify",
            params=("format", "language"), body=upload(), security=TOKEN_OPTIONAL,
            description="Anyone may ask; a token that is sent must be valid (401). What the "
                        "service's records say of the round goes only to a token of its "
                        "organisation. Bounded: 413 too large, 422 `too_costly`, 429, 503 "
                        "`busy`.")},
        "/trust-anchors": {"get": operation(
            "trustAnchors", "The roots the service's signatures chain to",
            {"200": file_body("application/x-pem-file", "PEM certificates")}, tag="verify",
            security=ANYONE, read=True)},
        "/openapi.json": {"get": operation(
            "openapi", "This description",
            {"200": {"description": "OpenAPI 3.1",
                     "content": {"application/json": {"schema": {"type": "object"}}}}},
            tag="meta", security=ANYONE, read=True)},
    }


QUERY: dict[str, Schema] = {
    "q": {"name": "q", "in": "query", "schema": {"type": "string"},
          "description": "in the title or a signer's name"},
    "status": {"name": "status", "in": "query", "schema": {
        "type": "string", "enum": SCHEMAS["Round"]["properties"]["status"]["enum"]}},
    "page": {"name": "page", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1}},
    "per_page": {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
    "format": {"name": "format", "in": "query",
               "schema": {"type": "string", "enum": ["json", "pdf", "etsi"]},
               "description": "`pdf`: the sealed report; `etsi`: ETSI TS 119 102-2 XML; "
                              "anything else: JSON"},
    "language": {"name": "language", "in": "query",
                 "schema": {"type": "string", "enum": ["sv", "en"]},
                 "description": "of the PDF report (default sv)"},
}

BODIES: dict[str, Schema] = {
    "Reminded": {"type": "object", "required": ["reminded"], "additionalProperties": False,
                 "properties": {"reminded": {"type": "array", "items": {"type": "string"},
                                             "description": "signer ids"}}},
    "Deadline": {"type": "object", "required": ["deadline"],
                 "properties": {"deadline": {"type": "string", "format": "date"}}},
    "PostingDate": {"type": "object", "required": ["posting_date"],
                    "properties": {"posting_date": {"type": "string", "format": "date"}}},
    "WebhookList": {"type": "object", "required": ["webhooks"], "additionalProperties": False,
                    "properties": {"webhooks": {"type": "array",
                                                "items": ref("schemas", "Webhook")}}},
    "DeliveryList": {"type": "object", "required": ["deliveries"],
                     "additionalProperties": False,
                     "properties": {"deliveries": {"type": "array",
                                                   "items": ref("schemas", "Delivery")}}},
}


@functools.cache
def description() -> dict[str, Any]:
    """The whole document (made once per process; treat it as read-only)."""
    paths = round_paths() | notice_paths() | webhook_paths() | public_paths()
    return {
        "openapi": "3.1.0",
        "info": {"title": "signflow API", "version": "1",
                 "description": "E-signature rounds for meeting protocols. JSON; errors are "
                                "`{\"error\": {\"code\", \"message\"}}` with a 4xx status."},
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": {event: {"post": {
            "operationId": f"on_{event.replace('.', '_')}",
            "summary": f"`{event}` to a registered webhook URL: a JSON POST, signed with "
                       "`Signflow-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "
                       "\"<t>.\" + body)>`; retried with backoff until a 2xx; order not "
                       "guaranteed",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": event_body(event)}}},
            "responses": {"2XX": {"description": "received; anything else: tried again"}},
        }} for event in webhooks.EVENTS},
        "components": {"schemas": SCHEMAS | BODIES, "parameters": PARAMETERS | QUERY,
                       "headers": HEADERS, "responses": RESPONSES,
                       "securitySchemes": SECURITY_SCHEMES},
    }
