"""The service seal from PKCS#12 and from a PKCS#11 token (SoftHSM2)."""

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from signflow.core.ports import SignerBlock
from signflow.errors import ConfigError
from signflow.pdf.pki import load_pki
from signflow.pdf.verify import verify_pdf
from signflow.runtime import build_runtime


def certified_ok(runtime, protocol_pdf) -> None:
    prepared = runtime.services.pdf.prepare(
        protocol_pdf, round_id="seal", title="T", language="sv",
        blocks=[SignerBlock(1, "Underskrift1", "Justerare")]).data
    report = verify_pdf(prepared, runtime.trust_anchors())
    cert = report.signatures[0]
    assert cert.kind == "certification" and cert.valid, cert.problems
    assert cert.signer == "signflow Service Seal"


def test_seal_from_pkcs12(settings, keys_dir, tmp_path, protocol_pdf, worker):
    pki = load_pki(keys_dir)
    p12 = tmp_path / "seal.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"seal", pki.seal.key, pki.seal.cert, [pki.root.cert],
        serialization.BestAvailableEncryption(b"hemligt")))
    rt = build_runtime(settings.with_overrides(seal_key=str(p12), seal_password="hemligt"))
    try:
        certified_ok(rt, protocol_pdf)
    finally:
        rt.close()
    with pytest.raises(ConfigError):
        build_runtime(settings.with_overrides(seal_key=str(p12), seal_password="fel"))


def test_seal_from_pem_files(settings, keys_dir, protocol_pdf, worker):
    rt = build_runtime(settings.with_overrides(seal_key=str(keys_dir / "seal.key"),
                                               seal_cert=str(keys_dir / "seal.pem")))
    try:
        certified_ok(rt, protocol_pdf)
    finally:
        rt.close()


MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture
def softhsm(tmp_path, monkeypatch, keys_dir):
    util = shutil.which("softhsm2-util")
    if util is None or not shutil.os.path.exists(MODULE):
        pytest.skip("LOUD SKIP: SoftHSM2 is not installed (make test installs softhsm2 with "
                    "apt where it can)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run([util, "--init-token", "--free", "--label", "signflow", "--pin", "1234",
                    "--so-pin", "5678"], check=True, capture_output=True)
    subprocess.run([util, "--import", str(keys_dir / "seal.key"), "--token", "signflow",
                    "--label", "seal", "--id", "01", "--pin", "1234"], check=True,
                   capture_output=True)
    return MODULE


def test_seal_from_pkcs11_token(softhsm, settings, keys_dir, protocol_pdf, worker):
    rt = build_runtime(settings.with_overrides(
        seal_pkcs11_module=softhsm, seal_pkcs11_token="signflow", seal_pkcs11_key="seal",
        seal_pkcs11_pin="1234", seal_cert=str(keys_dir / "seal.pem")))
    try:
        certified_ok(rt, protocol_pdf)
    finally:
        rt.close()
    with pytest.raises(ConfigError):
        build_runtime(settings.with_overrides(
            seal_pkcs11_module=softhsm, seal_pkcs11_token="nosuch", seal_pkcs11_key="seal",
            seal_pkcs11_pin="1234"))
