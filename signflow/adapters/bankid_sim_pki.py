"""The BankID simulator's certificates: BankID's hierarchy below the simulator root.

A bank CA, its customer CA (which issues people's Mobile BankID certificates,
with the test policy and the personal number as serialNumber) and a delegated
OCSP responder, made in memory once per process and root, as BankID's hang
below BankID's own root.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from signflow.pdf.pki import KeyPair

if TYPE_CHECKING:
    from signflow.adapters.bankid_sim import Persona

#: BankID's certificate policy for Mobile BankID in its test environment.
MOBILE_BANKID_TEST_POLICY = "1.2.3.4.25"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testbank A AB (publ)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: x509.Name, issuer: KeyPair, key: rsa.RSAPrivateKey, days: int,
           extensions: list[tuple[x509.ExtensionType, bool]]) -> KeyPair:
    now = datetime.now(UTC) - timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer.key.public_key()), critical=False))
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return KeyPair(builder.sign(issuer.key, hashes.SHA256()), key)


def _key_usage(**on: bool) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment",
             "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
             "encipher_only", "decipher_only")
    return x509.KeyUsage(**{f: on.get(f, False) for f in flags})


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca(cn: str, issuer: KeyPair, path_length: int) -> KeyPair:
    return _issue(_name(cn), issuer, _rsa(), 10 * 365, [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_key_usage(key_cert_sign=True, crl_sign=True), True)])


#: Where the simulated people's certificates say their status is answered.
OCSP_URL = "http://ocsp.bankid-simulator.invalid"


class SimulatorPki:
    """BankID's hierarchy below the simulator root: a bank CA, its customer CA
    (which issues people's certificates) and an OCSP responder, made in memory."""

    def __init__(self, root: KeyPair) -> None:
        self.root = root
        self.bank_ca = _ca("Testbank A CA v1 for BankID Simulator", root, 1)
        self.customer_ca = _ca("Testbank A Customer CA1 v1 for BankID Simulator",
                               self.bank_ca, 0)
        #: A delegated responder, issued by the CA whose certificates it answers for.
        self.ocsp = _issue(_name("Testbank A OCSP Responder for BankID Simulator"),
                           self.customer_ca, _rsa(), 2 * 365, [
                               (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                                True),
                               (_key_usage(digital_signature=True), True),
                               (x509.OCSPNoCheck(), False)])
        self._people: dict[Persona, KeyPair] = {}
        self._lock = threading.Lock()

    def person(self, persona: Persona) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """The person's key and Mobile BankID certificate (made once per persona)."""
        with self._lock:
            if persona not in self._people:
                self._people[persona] = self._issue_person(persona)
            pair = self._people[persona]
        assert isinstance(pair.key, rsa.RSAPrivateKey)
        return pair.key, pair.cert

    def _issue_person(self, persona: Persona) -> KeyPair:
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testbank A AB (publ)"),
            x509.NameAttribute(NameOID.SURNAME, persona.surname),
            x509.NameAttribute(NameOID.GIVEN_NAME, persona.given_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, persona.personal_number),
            # X.520 "name", as BankID's own certificates carry it
            x509.NameAttribute(ObjectIdentifier("2.5.4.41"),
                               f"{persona.name} - Mobilt BankID (simulator)"),
            x509.NameAttribute(NameOID.COMMON_NAME, persona.name),
        ])
        return _issue(subject, self.customer_ca, _rsa(), 365, [
            (x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(OCSP_URL))]), False),
            (x509.CertificatePolicies([x509.PolicyInformation(
                ObjectIdentifier(MOBILE_BANKID_TEST_POLICY), None)]), False),
            (_key_usage(content_commitment=True), True)])

    def ocsp_good(self, cert: x509.Certificate) -> bytes:
        """The responder's answer, now, that *cert* is good (DER)."""
        now = datetime.now(UTC)
        resp = (
            ocsp.OCSPResponseBuilder()
            .add_response(cert=cert, issuer=self.customer_ca.cert, algorithm=hashes.SHA256(),
                          cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                          next_update=None, revocation_time=None, revocation_reason=None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ocsp.cert)
            .certificates([self.ocsp.cert])
            .sign(self.ocsp.key, hashes.SHA256())
        )
        return resp.public_bytes(serialization.Encoding.DER)


_HIERARCHIES: dict[bytes, SimulatorPki] = {}
_HIERARCHIES_LOCK = threading.Lock()


def simulator_pki(root: KeyPair) -> SimulatorPki:
    """The hierarchy below *root*, made once per process (RSA keys take a while)."""
    fingerprint = root.cert.fingerprint(hashes.SHA256())
    with _HIERARCHIES_LOCK:
        if fingerprint not in _HIERARCHIES:
            _HIERARCHIES[fingerprint] = SimulatorPki(root)
        return _HIERARCHIES[fingerprint]
