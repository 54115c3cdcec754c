"""BankID's public roots ship with signflow and anchor evidence checks by default."""

from __future__ import annotations

from cryptography import x509

from signflow.adapters.bankid import build
from signflow.adapters.certs import BANKID_PRODUCTION_ROOT, BANKID_TEST_ROOT, shipped_certs
from signflow.config import Settings
from signflow.trust import trust_settings

SKI = {
    BANKID_PRODUCTION_ROOT: ("BankID Root CA v1", "678abab2ea481c7af53b6837277206eb9163cb53"),
    BANKID_TEST_ROOT: ("Test BankID Root CA v1 Test", "4af7a36a08da083817195328c8daa6d634d85aba"),
}


def test_the_shipped_roots_are_bankids_self_signed_member_bank_roots():
    for name, (cn, ski) in SKI.items():
        (cert,) = shipped_certs(name)
        cert.verify_directly_issued_by(cert)
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == cn
        assert cert.subject.get_attributes_for_oid(
            x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "BankID Member Banks CA"
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert ext.value.digest.hex() == ski


def test_a_live_client_takes_only_its_own_environments_root(keys_dir):
    from signflow.pdf.pki import load_pki

    pki = load_pki(keys_dir)
    for url, name in (("https://appapi2.bankid.com", BANKID_PRODUCTION_ROOT),
                      ("https://appapi2.test.bankid.com", BANKID_TEST_ROOT)):
        client = build(Settings(keys_dir=keys_dir, bankid_url=url, dev_mode=False), pki).provider
        assert client.roots == shipped_certs(name)


def test_verification_knows_both_roots_and_the_simulator_only_in_development(keys_dir):
    both = shipped_certs(BANKID_PRODUCTION_ROOT) + shipped_certs(BANKID_TEST_ROOT)
    production = trust_settings(Settings(keys_dir=keys_dir, dev_mode=False)).provider_roots
    assert list(production) == both
    development = trust_settings(Settings(keys_dir=keys_dir, dev_mode=True)).provider_roots
    assert list(development[:2]) == both and len(development) == 3
    assert "Simulator" in development[2].subject.rfc4514_string()
