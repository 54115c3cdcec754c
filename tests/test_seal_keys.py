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


@pytest.mark.parametrize("other", ["ec", "rsa"])
def test_a_seal_key_that_is_not_the_certificates_is_refused_at_start(settings, keys_dir,
                                                                     tmp_path, other, caplog):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = ec.generate_private_key(ec.SECP256R1()) if other == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "other.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="is not the key of the seal certificate"):
        build_runtime(settings.with_overrides(seal_key=str(path),
                                              seal_cert=str(keys_dir / "seal.pem")))
    with pytest.raises(ConfigError, match="SIGNFLOW_SEAL_CERT names .*missing.pem, which is "
                                          "not a file here"):
        build_runtime(settings.with_overrides(seal_key=str(keys_dir / "seal.key"),
                                              seal_cert=str(tmp_path / "missing.pem")))
    assert "Traceback" not in caplog.text


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


def test_a_fresh_seal_signer_is_safe_for_threads_from_the_start(keys_dir):
    """Twin requests certify with the process's one seal signer at once; asn1crypto's
    lazy parsing broke under that (KeyError 'No field numbered 1' from pyHanko reading
    the key's curve, seen in CI). Against the unparsed signer this fails in about one
    trial in six; the signer PdfWorks holds is parsed before any thread has it."""
    import sys
    import threading

    from signflow.pdf.keys import dev_timestamper
    from signflow.pdf.service import PdfWorks

    pki = load_pki(keys_dir)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads change as often as the interpreter allows
    failures: list[BaseException] = []
    try:
        for _ in range(60):
            seal = PdfWorks(pki, dev_timestamper(pki), base_url="http://x", max_bytes=1,
                            max_pages=1)._seal

            def use(seal=seal) -> None:
                try:
                    key = seal.signing_cert.public_key
                    assert key.algorithm != "ec" or key.curve
                except BaseException as exc:  # noqa: BLE001 - any failure counts
                    failures.append(exc)

            threads = [threading.Thread(target=use) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []


def test_a_worker_fetches_the_tsa_sample_token_once_for_every_job(keys_dir, caplog):
    """pyHanko sizes a signature by a sample token it keeps on the timestamper; the
    worker fetches it at start, and neither its jobs nor a child forked from it
    ask the TSA again."""
    import asyncio
    import os

    from signflow.pdf.keys import DevTimeStamper, warm_timestamper
    from signflow.pdf.pki import load_pki

    class Counting(DevTimeStamper):
        asked = 0

        async def async_timestamp(self, message_digest, md_algorithm):
            Counting.asked += 1
            return await super().async_timestamp(message_digest, md_algorithm)

    tsa = Counting(load_pki(keys_dir))
    warm_timestamper(tsa)
    assert Counting.asked == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked child: sizing a signature asks the TSA nothing
        asyncio.run(tsa.async_dummy_response("sha256"))
        os.write(write, str(Counting.asked).encode())
        os._exit(0)
    os.close(write)
    asked_in_child = os.read(read, 16)
    os.waitpid(pid, 0)
    assert asked_in_child == b"1"

    class Down(DevTimeStamper):
        async def async_timestamp(self, message_digest, md_algorithm):
            raise ConnectionError("the TSA is down")

    warm_timestamper(Down(load_pki(keys_dir)))  # said, not raised: each job asks again
    assert "sample token could not be fetched ahead" in caplog.text


def test_a_worker_reads_once_what_every_job_needs(runtime):
    """The font's metrics and the metrics' instruments, made before RQ forks."""
    from signflow import metrics
    from signflow.pdf.pages import font_data

    font_data.cache_clear()
    runtime.services.pdf.warm()
    assert font_data.cache_info().currsize == 2
    metrics.make_instruments()
    assert not metrics.ENABLED or "job" in metrics._instruments


def _self_signed_seal(tmp_path):
    """An operator's seal certificate of its own making (no CA of the service's)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kommunen e-sigill"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kommunen")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=900))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "kommun-seal.key", tmp_path / "kommun-seal.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_a_seal_chaining_to_no_trusted_root_is_refused_and_accepted_once_trusted(
        settings, keys_dir, tmp_path, protocol_pdf, worker):
    """The service's own /verify judged every document INDETERMINATE under an operator's
    seal whose root it was not told: start-up now says where the root belongs."""
    key, cert = _self_signed_seal(tmp_path)
    own = settings.with_overrides(seal_key=str(key), seal_cert=str(cert))
    with pytest.raises(ConfigError, match="chains to no trusted root.*SIGNFLOW_TRUST_ROOTS"):
        build_runtime(own)
    rt = build_runtime(own.with_overrides(trust_roots=str(cert)))
    try:
        prepared = rt.services.pdf.prepare(
            protocol_pdf, round_id="seal", title="T", language="sv",
            blocks=[SignerBlock(1, "Underskrift1", "Justerare")]).data
        seal = verify_pdf(prepared, rt.trust_anchors()).signatures[0]
        assert seal.kind == "certification" and seal.valid, seal.problems
        assert seal.signer == "Kommunen e-sigill"
    finally:
        rt.close()


def test_a_seal_key_the_process_cannot_read_is_named_so(settings, keys_dir, monkeypatch):
    """Copied in as root with mode 0600 (docker compose cp), the key was reported as
    'wrong password or format'."""
    import signflow.pdf.seal as seal

    unreadable = str(keys_dir / "seal.key")
    real = seal.os.access
    monkeypatch.setattr(seal.os, "access", lambda p, mode: str(p) != unreadable
                        and real(p, mode))
    with pytest.raises(ConfigError, match="SIGNFLOW_SEAL_KEY .*seal.key is not readable by "
                                          "this process"):
        build_runtime(settings.with_overrides(seal_key=unreadable,
                                              seal_cert=str(keys_dir / "seal.pem")))
