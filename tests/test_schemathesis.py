"""schemathesis holds the running API to its OpenAPI description: for every
operation, generated requests (fitting the description and not) get no server
error, and only statuses, media types and bodies the description names.

Random ids only ever reach the 404s and random bodies the 400s, so each
operation is also asked about real objects (a pending round, a completed
municipal protocol with its notice, a webhook) with a body that can succeed
(a real PDF for round creation and verification, a valid date or person), and
the test requires a 2xx from every operation.  Operations run in the
description's order, the destructive ones last (cancel, publish, delete); a
later answer about a cancelled round or a published notice (409) must be
described all the same.

schemathesis leaves out the operation that serves the description itself;
``tests/test_openapi.py`` asks it directly.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from signflow.web.openapi import description
from tests.conftest import create_round, make_user, signers_spec
from tests.test_notice import protokoll_round  # noqa: F401 - a fixture

#: Last, so that the operations before them see the objects before the change.
DESTRUCTIVE = ("POST /rounds/{round_id}/cancel", "POST /rounds/{round_id}/notice/publish",
               "DELETE /webhooks/{webhook_id}")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: Generated requests per operation, and requests about real objects.
EXAMPLES, REAL_EXAMPLES = 12, 4
#: Webhook receivers that answer nothing at once (the discard port): nothing leaves the host.
NOWHERE = "http://127.0.0.1:9/"


@pytest.fixture
def settings(settings):
    """The suite's settings, with a verification rate limit the run stays under
    (its 429 is described, but then no verification would be checked)."""
    return dataclasses.replace(settings, verify_rate="1000/minute")


@pytest.fixture
def real(client, auth, protocol_pdf, protokoll_round) -> dict:  # noqa: F811
    """Real objects to ask about, and a body for each operation that can succeed."""
    pending = create_round(client, auth, protocol_pdf)
    assert pending.status_code == 201, pending.get_json()
    round_ = pending.get_json()
    hook = client.post("/api/v1/webhooks", headers=auth, json={"url": NOWHERE + "h"})
    assert hook.status_code == 201, hook.get_json()
    notice = client.get(f"/api/v1/rounds/{protokoll_round}/notice", headers=auth).get_json()
    signed = client.get(f"/api/v1/rounds/{protokoll_round}/document", headers=auth).data
    spec = {"title": "Protokoll", "signers": signers_spec("fuzz")}
    return {
        "ids": {"round_id": [round_["id"], protokoll_round],
                "signer_id": [s["id"] for s in round_["signers"]],
                "webhook_id": [hook.get_json()["id"]]},
        "bodies": {
            "POST /rounds": {"round": json.dumps(spec), "document": protocol_pdf},
            "POST /verify": {"document": signed},
            "POST /rounds/{round_id}/deadline": {
                "deadline": (date.today() + timedelta(days=60)).isoformat()},
            "POST /rounds/{round_id}/signers/{signer_id}/replace": {
                "name": "Ny Justerare", "email": "ny-justerare@example.se"},
            "POST /rounds/{round_id}/notice": {"posting_date": notice["justering_date"]},
            "POST /webhooks": {"url": NOWHERE + "other", "events": ["notice.ready"]},
        },
    }


def generated(operation):
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                     operation.as_strategy(GenerationMode.NEGATIVE))


def about_real_objects(operation, real: dict):
    ids = st.fixed_dictionaries({p.name: st.sampled_from(real["ids"][p.name])
                                 for p in operation.path_parameters})
    body = real["bodies"].get(operation.label)
    fixed = {} if body is None else {"body": body}
    return ids.flatmap(lambda chosen: operation.as_strategy(path_parameters=chosen, **fixed))


def run(operation, cases, examples: int, headers: dict, statuses: list[int]) -> None:
    @given(case=cases)
    @hypothesis_settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_described(case):
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses.append(response.status_code)

    answers_as_described()


@pytest.mark.slow
def test_every_operation_answers_as_described(app, runtime, real):
    # an administrator of the organisation may do everything, the evidence ZIP too
    admin = {"Authorization": f"Bearer {make_user(runtime, 'admin-fuzz@example.se', 'admin')}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: op.label in DESTRUCTIVE)
    described = {f"{m.upper()} {p}" for p, item in description()["paths"].items() for m in item}
    assert {op.label for op in operations} == described - {"GET /openapi.json"}
    statuses: dict[str, list[int]] = defaultdict(list)
    failures = []
    for operation in operations:
        try:
            run(operation, generated(operation), EXAMPLES, admin, statuses[operation.label])
            run(operation, about_real_objects(operation, real), REAL_EXAMPLES, admin,
                statuses[operation.label])
        except Exception as exc:  # noqa: BLE001 - every operation's failure, not the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    never_succeeded = [label for label, seen in statuses.items()
                       if not any(200 <= s < 300 for s in seen)]
    assert not never_succeeded, {label: statuses[label] for label in never_succeeded}
