"""The OCSP responder answers every request with an OCSP response, never a 500.

Requests are built with asn1crypto, which writes whatever it is told to: hash
algorithms :mod:`cryptography` refuses to read, several certificates, bad hashes.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from signflow.pdf.pki import load_pki

MALFORMED = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
UNAUTHORIZED = ocsp.OCSPResponseStatus.UNAUTHORIZED
SHA256 = "2.16.840.1.101.3.4.2.1"


def cert_id_of(keys_dir, algorithm: str = "sha256") -> dict:
    """The CertID fields naming the signer CA, hashed with *algorithm* (hashlib's name)."""
    ca = asn1_x509.Certificate.load(load_pki(keys_dir).signer_ca.cert.public_bytes(Encoding.DER))
    return {"issuer_name_hash": hashlib.new(algorithm, ca.subject.dump()).digest(),
            "issuer_key_hash": hashlib.new(algorithm, ca.public_key["public_key"].contents[1:])
            .digest()}


def request_der(algorithm: str, name_hash: bytes, key_hash: bytes, *, serial: int = 7,
                count: int = 1, extensions: list | None = None) -> bytes:
    one = {"req_cert": {"hash_algorithm": {"algorithm": algorithm},
                        "issuer_name_hash": name_hash, "issuer_key_hash": key_hash,
                        "serial_number": serial}}
    tbs: dict = {"request_list": [one] * count}
    if extensions is not None:
        tbs["request_extensions"] = extensions
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def post(client, body: bytes, content_type: str = "application/ocsp-request"):
    resp = client.post("/pki/ocsp", data=body, content_type=content_type)
    assert resp.status_code == 200 and resp.mimetype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(resp.data)


@pytest.mark.parametrize(("oid", "hash_name"), [
    ("1.2.840.113549.2.5", "md5"),
    ("2.16.840.1.101.3.4.2.8", "sha3_256"),
    ("2.16.840.1.101.3.4.2.10", "sha3_512"),
    ("1.2.3.4.5.6.7", "sha256"),  # an OID no one has defined as a hash
])
def test_a_cert_id_hashed_with_an_algorithm_we_do_not_take_is_a_malformed_request(
        client, keys_dir, oid, hash_name):
    ids = cert_id_of(keys_dir, hash_name)
    answer = post(client, request_der(oid, ids["issuer_name_hash"], ids["issuer_key_hash"]))
    assert answer.response_status == MALFORMED


@pytest.mark.parametrize("body", [
    b"", b"junk", b"\x30\x03\x02\x01\x05", b"\x30\x82\xff\xff" + b"\0" * 64, b"\xff" * 9000,
], ids=["empty", "text", "wrong-structure", "truncated", "oversized"])
def test_garbage_is_a_malformed_request(client, body):
    assert post(client, body).response_status == MALFORMED


def test_a_request_that_is_not_labelled_ocsp_is_answered_in_ocsp(client, keys_dir):
    ids = cert_id_of(keys_dir)
    body = request_der(SHA256, ids["issuer_name_hash"], ids["issuer_key_hash"])
    assert post(client, body, "application/json").response_status == MALFORMED


def test_requests_we_cannot_answer_whole_are_malformed(client, keys_dir):
    ids = cert_id_of(keys_dir)
    name, key = ids["issuer_name_hash"], ids["issuer_key_hash"]
    nonce = {"extn_id": "nonce", "extn_value": b"\x04\x01a"}
    for body in (request_der(SHA256, name, key, count=2),
                 request_der(SHA256, name, key, count=0),
                 request_der(SHA256, name, key, serial=-7),
                 request_der(SHA256, name, key, extensions=[nonce, nonce])):
        assert post(client, body).response_status == MALFORMED


def test_an_issuer_that_is_not_ours_is_unauthorized(client, keys_dir):
    ids = cert_id_of(keys_dir)
    stranger = hashlib.sha256(b"someone else's key").digest()
    for body in (request_der(SHA256, ids["issuer_name_hash"], stranger),
                 request_der(SHA256, stranger, ids["issuer_key_hash"]),
                 # our key hash, but a name hash of the wrong length for SHA-256
                 request_der(SHA256, b"\x01" * 20, ids["issuer_key_hash"]),
                 request_der("1.3.14.3.2.26", b"\0" * 20, b"\0" * 20)):
        assert post(client, body).response_status == UNAUTHORIZED


@pytest.mark.parametrize(("oid", "hash_name"), [
    ("1.3.14.3.2.26", "sha1"), (SHA256, "sha256"), ("2.16.840.1.101.3.4.2.3", "sha512"),
])
def test_our_issuer_by_sha1_or_sha2_is_answered_good_with_the_nonce(
        client, keys_dir, oid, hash_name):
    ids = cert_id_of(keys_dir, hash_name)
    nonce = {"extn_id": "nonce", "extn_value": b"\x04\x10" + b"n" * 16}
    answer = post(client, request_der(oid, ids["issuer_name_hash"], ids["issuer_key_hash"],
                                      extensions=[nonce]))
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == 7 and answer.hash_algorithm.name == hash_name
    assert b"n" * 16 in answer.extensions.get_extension_for_class(
        x509.OCSPNonce).value.nonce


def test_get_requests_are_answered_in_ocsp_whatever_the_path(client, keys_dir):
    ids = cert_id_of(keys_dir)
    good = request_der(SHA256, ids["issuer_name_hash"], ids["issuer_key_hash"])
    encoded = base64.b64encode(good).decode()
    for path, status in ((quote(encoded, safe=""), ocsp.OCSPResponseStatus.SUCCESSFUL),
                         ("not-base64!", MALFORMED), ("abc", MALFORMED),
                         (quote("é"), MALFORMED),
                         (quote(base64.b64encode(b"junk").decode(), safe=""), MALFORMED)):
        resp = client.get(f"/pki/ocsp/{path}")
        assert resp.status_code == 200 and resp.mimetype == "application/ocsp-response", path
        assert ocsp.load_der_ocsp_response(resp.data).response_status == status, path
