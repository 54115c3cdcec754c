"""What verifying a file of ours tells whom: only its own organisation learns the round."""

from __future__ import annotations

import io

import pytest

from tests.conftest import make_user
from tests.test_verify_page import post_verify

#: What our records say of a round, and nothing but its own organisation may read.
PRIVATE_KEYS = {"round", "title", "status", "signers", "round_id", "id"}


def verify_api(client, pdf: bytes, headers: dict | None = None):
    return client.post("/api/v1/verify", headers=headers or {},
                       data={"document": (io.BytesIO(pdf), "x.pdf")})


def assert_tells_only_that_it_is_known(resp, round_body: dict) -> None:
    assert resp.status_code == 200, resp.get_json()
    report = resp.get_json()
    assert report["known_to_service"] is True and report["valid"] is True
    assert not PRIVATE_KEYS & set(report)
    text = resp.get_data(as_text=True)
    assert round_body["id"] not in text and round_body["title"] not in text
    for signer in round_body["signers"]:
        assert signer["email"] not in text and signer["id"] not in text


def test_an_anonymous_caller_learns_only_that_the_document_is_ours(completed_round, client):
    body, pdf = completed_round
    assert_tells_only_that_it_is_known(verify_api(client, pdf), body)


def test_another_organisation_learns_only_that_the_document_is_ours(
        completed_round, client, runtime):
    body, pdf = completed_round
    stranger = make_user(runtime, "revisor@annan.example.se", "auditor", org="Annan kommun")
    resp = verify_api(client, pdf, {"Authorization": f"Bearer {stranger}"})
    assert_tells_only_that_it_is_known(resp, body)


def test_the_rounds_own_organisation_gets_the_round_and_its_cross_check(
        completed_round, client, runtime):
    body, pdf = completed_round
    colleague = make_user(runtime, "revisor@fh.example.se", "auditor")  # same organisation
    resp = verify_api(client, pdf, {"Authorization": f"Bearer {colleague}"})
    assert resp.status_code == 200
    report = resp.get_json()
    assert report["known_to_service"] is True
    cross = report["round"]
    assert cross["id"] == body["id"] and cross["title"] == body["title"]
    assert cross["status"] == "completed" and cross["signers_required"] == 3
    assert cross["all_required_signers_present"] and cross["chain_intact"]


def test_a_file_we_never_saw_is_not_known(client, auth, protocol_pdf):
    for headers in (None, auth):
        report = verify_api(client, protocol_pdf, headers).get_json()
        assert report["known_to_service"] is False and "round" not in report


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer "])
def test_a_token_that_is_sent_must_be_valid(client, protocol_pdf, header):
    resp = verify_api(client, protocol_pdf, {"Authorization": header})
    assert resp.status_code == 401


def test_the_verify_page_shows_nothing_of_our_records(completed_round, client):
    body, pdf = completed_round
    resp = post_verify(client, pdf)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert body["id"] not in html and body["title"] not in html
    for signer in body["signers"]:
        assert signer["email"] not in html and signer["id"] not in html
    download = post_verify(client, pdf, format="json")
    assert not PRIVATE_KEYS & set(download.get_json())
