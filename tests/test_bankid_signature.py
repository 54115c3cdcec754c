"""BankID's evidence as the real service makes it: the XML signature's shape,
checked by an independent XML-DSig implementation (xmlsec1), and the OCSP
answer that comes with it."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from werkzeug.serving import make_server

from signflow.adapters.bankid import BankIDClient
from signflow.adapters.bankid_sim import PERSONAS, Simulator
from signflow.adapters.bankid_sim_web import create_simulator_app
from signflow.adapters.bankid_xml import (
    BID,
    C14N_EXCLUSIVE,
    C14N_INCLUSIVE,
    DS,
    canonicalize,
    check_signature,
)
from signflow.adapters.evidence_checks import CHECKS, check_ocsp
from signflow.core.ports import SignRequest
from signflow.pdf.pki import KeyPair, load_pki

XMLSEC = shutil.which("xmlsec1")
NS = {"ds": DS, "bid": BID}
DOC_HASH = bytes(range(32))


@pytest.fixture
def simulator(keys_dir):
    sim = Simulator(load_pki(keys_dir).bankid_sim)
    server = make_server("127.0.0.1", 0, create_simulator_app(sim), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield sim, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def completed(sim, url: str, persona=PERSONAS[1]) -> dict:
    """A sign order approved over HTTP by *persona*; its completionData."""
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(SignRequest(
        end_user_ip="192.0.2.3", visible_text="# Signera\n\n*Protokoll*",
        non_visible_data=DOC_HASH, personal_number=persona.personal_number))
    requests.post(f"{url}/sim/orders/{order.order_ref}/approve",
                  json={"personalNumber": persona.personal_number}, timeout=5)
    done = client.collect(order.order_ref)
    assert done.status == "complete" and done.signature_valid, done.signature_problems
    return dict(done.completion, orderRef=order.order_ref)


def xml_of(completion: dict) -> bytes:
    return base64.b64decode(completion["signature"])


def test_the_xml_has_bankids_shape(simulator):
    sim, url = simulator
    root = etree.fromstring(xml_of(completed(sim, url)))
    assert root.tag == f"{{{DS}}}Signature"
    info = root.find("ds:SignedInfo", NS)
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == C14N_INCLUSIVE
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == \
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    refs = info.findall("ds:Reference", NS)
    assert [r.get("URI") for r in refs] == ["#bidSignedData", "#bidKeyInfo"]
    assert refs[0].get("Type") == BID
    assert {t.get("Algorithm") for t in info.iterfind(".//ds:Transform", NS)} == {C14N_INCLUSIVE}
    data = root.find("ds:Object/bid:bankIdSignedData", NS)
    assert data.get("Id") == "bidSignedData"
    assert [c.tag.split("}")[1] for c in data] == ["usrVisibleData", "usrNonVisibleData",
                                                  "srvInfo", "clientInfo"]
    visible = data.find("bid:usrVisibleData", NS)
    assert (visible.get("charset"), visible.get("format"), visible.get("visible")) == \
        ("UTF-8", "simpleMarkdownV1", "wysiwys")  # the client sent simpleMarkdownV1
    assert [c.tag.split("}")[1] for c in data.find("bid:srvInfo", NS)] == \
        ["name", "nonce", "displayName"]
    assert data.findtext("bid:clientInfo/bid:funcId", namespaces=NS) == "Signing"


def test_keyinfo_holds_the_person_and_two_cas_below_the_root(simulator):
    sim, url = simulator
    root = etree.fromstring(xml_of(completed(sim, url)))
    certs = [x509.load_der_x509_certificate(base64.b64decode(c.text))
             for c in root.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    assert len(certs) == 3 and sim.ca.cert not in certs  # the root is not sent
    person, customer_ca, bank_ca = certs
    person.verify_directly_issued_by(customer_ca)
    customer_ca.verify_directly_issued_by(bank_ca)
    bank_ca.verify_directly_issued_by(sim.ca.cert)
    assert isinstance(person.public_key(), rsa.RSAPublicKey)
    serial = person.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == PERSONAS[1].personal_number
    policies = person.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.2.3.4.25"]
    for ca in (customer_ca, bank_ca):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_no_format_attribute_without_formatted_text(simulator):
    sim, url = simulator
    r = requests.post(f"{url}/rp/v6.0/sign", json={
        "endUserIp": "192.0.2.1", "userVisibleData": base64.b64encode(b"plain").decode()},
        timeout=5)
    ref = r.json()["orderRef"]
    sim.approve(ref)
    xml = xml_of(requests.post(f"{url}/rp/v6.0/collect", json={"orderRef": ref},
                               timeout=5).json()["completionData"])
    visible = etree.fromstring(xml).find(".//bid:usrVisibleData", NS)
    assert visible.get("format") is None and visible.get("visible") == "wysiwys"


def _write(path, cert: x509.Certificate):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def xmlsec_verify(xml: bytes, trusted: x509.Certificate, tmp_path) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify``: the chain in KeyInfo must lead to *trusted*."""
    if XMLSEC is None:
        pytest.skip("LOUD SKIP: xmlsec1 is not installed (make test installs it with apt where "
                    "it can); the independent XML-DSig check did not run")
    doc = tmp_path / "signature.xml"
    doc.write_bytes(xml)
    return subprocess.run(
        [XMLSEC, "--verify", "--enabled-key-data", "x509",
         "--trusted-pem", _write(tmp_path / "root.pem", trusted),
         "--id-attr:Id", f"{BID}:bankIdSignedData", "--id-attr:Id", f"{DS}:KeyInfo",
         str(doc)], capture_output=True, text=True, timeout=30)


def test_xmlsec1_verifies_the_simulators_signature(simulator, tmp_path, keys_dir):
    sim, url = simulator
    xml = xml_of(completed(sim, url))
    ok = xmlsec_verify(xml, sim.ca.cert, tmp_path)
    assert ok.returncode == 0 and "References (ok/all): 2/2" in ok.stderr, ok.stderr
    tampered = xml.replace(base64.b64encode(DOC_HASH), base64.b64encode(b"\x00" * 32))
    assert tampered != xml and xmlsec_verify(tampered, sim.ca.cert, tmp_path).returncode != 0
    other_root = load_pki(keys_dir).root.cert
    assert xmlsec_verify(xml, other_root, tmp_path).returncode != 0


def resigned(xml: bytes, algorithm: str, key: rsa.RSAPrivateKey) -> bytes:
    """*xml* signed again with *algorithm*, under a root declaring an unused
    namespace: inclusive C14N carries it into every digest, exclusive does not."""
    old = etree.fromstring(xml)
    root = etree.Element(f"{{{DS}}}Signature", nsmap={None: DS, "x": "urn:example:unused"})
    root.extend(list(old))
    info = root.find("ds:SignedInfo", NS)
    info.find("ds:CanonicalizationMethod", NS).set("Algorithm", algorithm)
    for ref in info.iterfind("ds:Reference", NS):
        ref.find("ds:Transforms/ds:Transform", NS).set("Algorithm", algorithm)
        target = root.xpath("//*[@Id=$i]", i=ref.get("URI")[1:])[0]
        digest = hashes.Hash(hashes.SHA256())
        digest.update(canonicalize(target, algorithm))
        ref.find("ds:DigestValue", NS).text = base64.b64encode(digest.finalize()).decode()
    value = key.sign(canonicalize(info, algorithm), padding.PKCS1v15(), hashes.SHA256())
    root.find("ds:SignatureValue", NS).text = base64.b64encode(value).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def renamed(xml: bytes, algorithm: str) -> bytes:
    """*xml* claiming another canonicalization than it was signed with."""
    root = etree.fromstring(xml)
    for el in root.iterfind(".//ds:Transform", NS):
        el.set("Algorithm", algorithm)
    return etree.tostring(root)


@pytest.mark.parametrize("algorithm", [C14N_INCLUSIVE, C14N_EXCLUSIVE])
def test_the_checker_canonicalizes_as_the_signature_says(simulator, tmp_path, algorithm):
    sim, url = simulator
    key, _ = sim.pki.person(PERSONAS[1])
    xml = resigned(xml_of(completed(sim, url)), algorithm, key)
    assert check_signature(xml, [sim.ca.cert]).valid, check_signature(xml, [sim.ca.cert])
    if XMLSEC:  # the independent implementation agrees on both algorithms
        assert xmlsec_verify(xml, sim.ca.cert, tmp_path).returncode == 0
    other = C14N_EXCLUSIVE if algorithm == C14N_INCLUSIVE else C14N_INCLUSIVE
    check = check_signature(renamed(xml, other), [sim.ca.cert])
    assert not check.valid and any("digest" in p for p in check.problems)


def test_other_canonicalizations_are_refused(simulator):
    sim, url = simulator
    xml = renamed(xml_of(completed(sim, url)), "http://www.w3.org/2006/12/xml-c14n11")
    check = check_signature(xml, [sim.ca.cert])
    assert not check.valid and any("unsupported transform" in p for p in check.problems)


def test_inclusive_c14n_of_a_subtree_keeps_its_namespace(simulator):
    """lxml's own subtree C14N writes xmlns="" on grandchildren; ours must not."""
    sim, url = simulator
    data = etree.fromstring(xml_of(completed(sim, url))).find(".//bid:bankIdSignedData", NS)
    c14n = canonicalize(data, C14N_INCLUSIVE)
    assert b'xmlns=""' not in c14n and b"<nonce>" in c14n


# --- the OCSP answer -------------------------------------------------------------

def now() -> datetime:
    return datetime.now(UTC)


def test_the_evidence_check_names_the_person_and_accepts_good_ocsp(simulator):
    sim, url = simulator
    completion = completed(sim, url)
    found = CHECKS["bankid"](completion, [sim.ca.cert], completion["orderRef"], now())
    assert found.valid, found.problems
    assert (found.personal_number, found.name) == (PERSONAS[1].personal_number,
                                                   PERSONAS[1].name)
    assert found.non_visible_b64 == base64.b64encode(DOC_HASH).decode()


def answer(sim, cert, *, status=ocsp.OCSPCertStatus.GOOD, signer: KeyPair | None = None,
           about=None) -> bytes:
    """An OCSP response as a (possibly wrong) responder would make it."""
    signer = signer or sim.pki.ocsp
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=about or cert, issuer=sim.pki.customer_ca.cert,
                             algorithm=hashes.SHA1(), cert_status=status, this_update=now(),
                             next_update=None, revocation_time=now() if revoked else None,
                             revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.NAME, signer.cert)
               .certificates([signer.cert]))
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def responder(issuer: KeyPair, *, eku: bool = True) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Responder")]))
               .issuer_name(issuer.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now() - timedelta(hours=1))
               .not_valid_after(now() + timedelta(days=1)))
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
    return KeyPair(builder.sign(issuer.key, hashes.SHA256()), key)


def stranger() -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not BankID")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now() - timedelta(hours=1))
            .not_valid_after(now() + timedelta(days=1)).sign(key, hashes.SHA256()))
    return KeyPair(cert, key)


def test_ocsp_answers_that_do_not_prove_good_are_refused(simulator):
    sim, url = simulator
    completion = completed(sim, url)
    chain = check_signature(xml_of(completion), [sim.ca.cert]).certificates
    person = chain[0]
    _, someone_else = sim.pki.person(PERSONAS[2])
    cases = {
        "revoked": answer(sim, person, status=ocsp.OCSPCertStatus.REVOKED),
        "another certificate": answer(sim, person, about=someone_else),
        "does not chain": answer(sim, person, signer=responder(stranger())),
        "not authorised": answer(sim, person, signer=responder(sim.pki.customer_ca,
                                                               eku=False)),
        "is try_later": ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER),
    }
    for expected, der in cases.items():
        problems = check_ocsp(der, chain, [sim.ca.cert], now())
        assert any(expected in p for p in problems), (expected, problems)
    good = base64.b64decode(completion["ocspResponse"])
    value = ocsp.load_der_ocsp_response(good).signature
    forged = good.replace(value, value[:-1] + bytes([value[-1] ^ 1]))
    assert any("signature" in p for p in check_ocsp(forged, chain, [sim.ca.cert], now()))
    assert check_ocsp(None, chain, [sim.ca.cert], now()) == ["no OCSP response"]


def test_ocsp_signed_by_the_issuing_ca_itself_is_accepted(simulator):
    sim, url = simulator
    chain = check_signature(xml_of(completed(sim, url)), [sim.ca.cert]).certificates
    der = answer(sim, chain[0], signer=sim.pki.customer_ca)
    assert check_ocsp(der, chain, [sim.ca.cert], now()) == []


def test_ocsp_must_be_produced_near_the_completion(simulator):
    sim, url = simulator
    completion = completed(sim, url)
    ref = completion["orderRef"]
    assert CHECKS["bankid"](completion, [sim.ca.cert], ref, now() + timedelta(minutes=9)).valid
    late = CHECKS["bankid"](completion, [sim.ca.cert], ref, now() + timedelta(minutes=11))
    assert not late.valid and any("completion time" in p for p in late.problems)
    # naive times are UTC, as the database keeps them
    naive = (now() - timedelta(hours=2)).replace(tzinfo=None)
    assert not CHECKS["bankid"](completion, [sim.ca.cert], ref, naive).valid
    assert CHECKS["bankid"](completion, [sim.ca.cert], ref).valid  # no time: not compared


def test_completion_user_must_be_the_person_in_the_signature(simulator):
    """completionData.user is plain JSON; the signed certificate decides who signed."""
    sim, url = simulator
    client = BankIDClient(url, roots=[sim.ca.cert])
    order = client.start_sign(SignRequest(end_user_ip="192.0.2.3", visible_text="x",
                                          non_visible_data=DOC_HASH))
    sim.approve(order.order_ref, PERSONAS[0])
    user = sim.orders[order.order_ref].completion["user"]
    user["personalNumber"] = PERSONAS[2].personal_number  # a lying middlebox
    done = client.collect(order.order_ref)
    assert done.signature_valid is False
    assert any("completionData.user" in p for p in done.signature_problems)
