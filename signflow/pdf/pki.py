"""The development PKI: root CA, service seal, signer CA, TSA.

Made with :mod:`cryptography` by ``signflow keys init``.  Production operators
replace the seal (PEM or PKCS#12) and point ``SIGNFLOW_TSA_URL`` at a real TSA;
the signer CA stays ours, since it certifies each BankID-identified act.
"""

from __future__ import annotations

import ipaddress
import os
import stringprep
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from signflow.adapters.certs import read_pem_certs
from signflow.errors import ConfigError

#: Sweden Connect's OID for the identity provider's transaction identifier.
OID_TRANSACTION_ID = ObjectIdentifier("1.2.752.201.3.2")
#: Validity of a per-signer certificate: it serves one signing act, right away.
#: Validators place the signature in time by its timestamp and the CRL embedded
#: with it (PAdES B-LT/LTA), not by a long certificate life.
SIGNER_CERT_VALIDITY = timedelta(days=1)

FILES = {
    "root": "root-ca",
    "seal": "seal",
    "signer_ca": "signer-ca",
    "tsa": "tsa",
    "bankid_sim": "bankid-sim-ca",
}


@dataclass(frozen=True)
class KeyPair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Pki:
    """The loaded key material of the service."""

    root: KeyPair
    seal: KeyPair
    signer_ca: KeyPair
    tsa: KeyPair
    #: The BankID simulator's CA (development only).
    bankid_sim: KeyPair
    keys_dir: Path


def _name(cn: str, org: str = "signflow") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def crl_url(base_url: str, which: str) -> str:
    return f"{base_url.rstrip('/')}/pki/{FILES[which]}.crl"


def named_base_url(pki: Pki) -> str | None:
    """The base URL the service's CA certificates name for their revocation lists
    (``keys init`` wrote the SIGNFLOW_BASE_URL of that day); None if they name none."""
    try:
        points = pki.signer_ca.cert.extensions.get_extension_for_class(
            x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in points:
        for name in point.full_name or ():
            url = str(name.value)
            if isinstance(name, x509.UniformResourceIdentifier) and "/pki/" in url:
                return url.rsplit("/pki/", 1)[0]
    return None


def _builder(subject: x509.Name, issuer: KeyPair | None, pub, days: int) -> x509.CertificateBuilder:
    now = datetime.now(UTC) - timedelta(minutes=5)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    )
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return b


def _ca(cn: str, parent: KeyPair | None, days: int, crl: str | None,
        org: str = "signflow") -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    b = _builder(_name(cn, org), parent, key.public_key(), days)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0),
                        critical=True)
    b = b.add_extension(_ku(cert_sign=True), critical=True)
    if crl:
        b = b.add_extension(_crl_dp(crl), critical=False)
    return KeyPair(b.sign(parent.key if parent else key, hashes.SHA256()), key)


def _ku(*, cert_sign: bool = False, signing: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing, content_commitment=signing, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([
        x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    ])


def _leaf(cn: str, issuer: KeyPair, days: int, crl: str, eku=None, rsa_key=False,
          org: str = "signflow") -> KeyPair:
    # The dev TSA is RSA: pyHanko's in-process timestamper signs with RSA only.
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key
           else ec.generate_private_key(ec.SECP256R1()))
    b = _builder(_name(cn, org), issuer, key.public_key(), days)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(_ku(signing=True), critical=True)
    b = b.add_extension(_crl_dp(crl), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return KeyPair(b.sign(issuer.key, hashes.SHA256()), key)


def _write(keys_dir: Path, stem: str, pair: KeyPair) -> None:
    (keys_dir / f"{stem}.pem").write_bytes(pair.cert.public_bytes(serialization.Encoding.PEM))
    path = keys_dir / f"{stem}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pair.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))


def keys_present(keys_dir: Path) -> bool:
    return all((keys_dir / f"{stem}.key").exists() for stem in FILES.values())


#: The development evidence certificate and key (``<stem>.pem``/``.key``):
#: the identity evidence in signed PDFs is sealed to it unless
#: ``SIGNFLOW_EVIDENCE_CERTS`` names the organisation's own.
EVIDENCE = "evidence"


def init_keys(keys_dir: Path, base_url: str, organisation: str = "signflow") -> bool:
    """Create the service PKI in *keys_dir*, what of it is missing. True if made.

    The root and the signer CA serve production too (every signer's certificate
    chains to them), named for *organisation* (``SIGNFLOW_CA_ORGANISATION``); the
    seal, the TSA and the BankID simulator's root are development stand-ins.
    """
    made = _init_evidence_key(keys_dir)
    if keys_present(keys_dir):
        return made
    keys_dir.mkdir(parents=True, exist_ok=True)
    org = name_safe(organisation).strip() or "signflow"
    root = _ca("signflow Root CA", None, 20 * 365, None, org)
    signer_ca = _ca("signflow Signer CA", root, 10 * 365, crl_url(base_url, "root"), org)
    seal = _leaf("signflow Service Seal", root, 5 * 365, crl_url(base_url, "root"), org=org)
    tsa = _leaf("signflow Development TSA", root, 10 * 365, crl_url(base_url, "root"),
                eku=[ExtendedKeyUsageOID.TIME_STAMPING], rsa_key=True)
    sim = _ca("BankID Simulator Root CA (test only)", None, 20 * 365, None)
    for which, pair in (("root", root), ("signer_ca", signer_ca), ("seal", seal),
                        ("tsa", tsa), ("bankid_sim", sim)):
        _write(keys_dir, FILES[which], pair)
    return True


def _init_evidence_key(keys_dir: Path) -> bool:
    """An RSA evidence key (sealing wraps keys with RSA-OAEP), for development only."""
    if (keys_dir / f"{EVIDENCE}.key").exists():
        return False
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ku = x509.KeyUsage(digital_signature=False, content_commitment=False,
                       key_encipherment=True, data_encipherment=False, key_agreement=False,
                       key_cert_sign=False, crl_sign=False, encipher_only=False,
                       decipher_only=False)
    cert = (x509.CertificateBuilder()
            .subject_name(_name("signflow Development Evidence Key"))
            .issuer_name(_name("signflow Development Evidence Key"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.now(UTC) - timedelta(minutes=5))
            .not_valid_after(datetime.now(UTC) + timedelta(days=20 * 365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(ku, critical=True)
            .sign(key, hashes.SHA256()))
    _write(keys_dir, EVIDENCE, KeyPair(cert, key))
    return True


def load_evidence_certificates(keys_dir: Path, configured: str) -> list[x509.Certificate]:
    """The certificates evidence is sealed to: *configured* (a PEM file), else the dev one."""
    path = Path(configured) if configured else keys_dir / f"{EVIDENCE}.pem"
    return read_pem_certs(path, "" if configured else
                          "; run 'signflow keys init' or set SIGNFLOW_EVIDENCE_CERTS")


def _load(keys_dir: Path, stem: str) -> KeyPair:
    try:
        cert = x509.load_pem_x509_certificate((keys_dir / f"{stem}.pem").read_bytes())
        key = serialization.load_pem_private_key((keys_dir / f"{stem}.key").read_bytes(), None)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"key material missing in {keys_dir} ({exc.filename}); run 'signflow keys init'"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"{stem}.key must be an EC or RSA key")
    return KeyPair(cert, key)


def load_pki(keys_dir: Path) -> Pki:
    pairs = {which: _load(keys_dir, stem) for which, stem in FILES.items()}
    return Pki(keys_dir=keys_dir, **pairs)


def load_root_certificate(keys_dir: Path) -> x509.Certificate | None:
    path = keys_dir / f"{FILES['root']}.pem"
    return x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None


def issue_signer_certificate(
    pki: Pki, *, name: str, organisation: str, title: str, transaction_id: str, base_url: str,
) -> KeyPair:
    """A fresh key and certificate for one signing act; the key is never stored."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "SE")]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, name_safe(organisation)))
    if title:
        attrs.append(x509.NameAttribute(NameOID.TITLE, name_safe(title)))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, name_safe(name)))
    b = (
        _builder(x509.Name(attrs), pki.signer_ca, key.public_key(), SIGNER_CERT_VALIDITY.days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ku(signing=True), critical=True)
        .add_extension(_crl_dp(crl_url(base_url, "signer_ca")), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(OID_TRANSACTION_ID, _der_utf8(transaction_id)),
            critical=False,
        )
    )
    return KeyPair(b.sign(pki.signer_ca.key, hashes.SHA256()), key)


def name_safe(text: str, limit: int = 64) -> str:
    """*text* (at most *limit* characters) as a certificate name attribute that
    every verifier can compare.

    Verifiers compare names after RFC 4518's string preparation (asn1crypto, and
    so pyHanko, does), which refuses code points unassigned in Unicode 3.2 (an
    emoji, "₹"), private use, non-characters, U+FFFD, and left-to-right letters
    mixed with right-to-left ones, or right-to-left text that does not begin and
    end with a right-to-left letter ("محمد (2)").  One such attribute in a
    signer's certificate made pyHanko fail every signature of the file, for
    good.  The signature page and the evidence keep the text as given; the
    certificate gets it without those characters: right-to-left text without
    what stands before its first letter and after its last; both directions
    mixed, without the right-to-left letters; failing all else, its ASCII letters.
    """
    kept = "".join(c for c in text[:limit] if not _unpreparable(c)).strip()
    if not _prepares(kept) and any(map(stringprep.in_table_d1, kept)):
        if not any(map(stringprep.in_table_d2, kept)):  # right to left only: trim its ends
            letters = [i for i, c in enumerate(kept) if stringprep.in_table_d1(c)]
            kept = kept[letters[0]:letters[-1] + 1]
        else:
            kept = " ".join("".join(c for c in kept if not stringprep.in_table_d1(c)).split())
    if not _prepares(kept):
        kept = unicodedata.normalize("NFKD", kept).encode("ascii", "ignore").decode().strip()
    return kept[:limit].strip() or "-"


def _unpreparable(char: str) -> bool:
    return char == "\ufffd" or any(test(char) for test in (
        stringprep.in_table_a1, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c8))


def _prepares(text: str) -> bool:
    """Whether verifiers can compare *text* as a name (asn1crypto's own preparation)."""
    from asn1crypto import x509 as asn1_x509

    value = asn1_x509.DirectoryString(name="utf8_string", value=text)
    try:
        prepared = asn1_x509.NameTypeAndValue({"type": "common_name", "value": value})
        return isinstance(prepared.prepped_value, str)  # raises ValueError if it cannot
    except ValueError:
        return False


def _der_utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) >= 128:
        raise ValueError("transaction id too long")
    return bytes([0x0C, len(raw)]) + raw


#: One CRL of ours per period: issued at its start and signed deterministically
#: (RFC 6979), so every process hands out the same bytes all period.  signflow
#: never revokes, so a new CRL says what the last one said; signing one per
#: signature put eight CRLs (four copies of two) into a round's DSS, and every
#: verifier worked through all of them.  An hour matches the Cache-Control of
#: ``/pki/<name>.crl`` and lies well inside the CRLs' validity (7 days and more).
CRL_PERIOD = timedelta(hours=1)
#: How far before now a CRL's thisUpdate stays, for verifiers whose clock is behind.
CRL_SKEW = timedelta(minutes=1)


def make_crl(ca: KeyPair, *, days: int = 7,
             now: datetime | None = None) -> x509.CertificateRevocationList:
    """*ca*'s current CRL, empty (signflow never revokes a signing act's
    certificate): the same bytes from every process within one :data:`CRL_PERIOD`."""
    moment = (now or datetime.now(UTC)) - CRL_SKEW
    issued = moment - (moment - datetime(2000, 1, 1, tzinfo=UTC)) % CRL_PERIOD
    deterministic = True if isinstance(ca.key, ec.EllipticCurvePrivateKey) else None
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(issued)
        .next_update(issued + timedelta(days=days))
        .add_extension(x509.CRLNumber(int(issued.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256(), ecdsa_deterministic=deterministic)
    )


def issue_tls_certificate(
    ca: KeyPair, common_name: str, *, server: bool, days: int = 825,
) -> KeyPair:
    """A TLS server (localhost) or client certificate from *ca* (simulators and tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        _builder(_name(common_name), ca, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
    )
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
    return KeyPair(b.sign(ca.key, hashes.SHA256()), key)


def write_pair(directory: Path, stem: str, pair: KeyPair) -> tuple[Path, Path]:
    """Write a certificate and its private key (0600); return both paths."""
    _write(directory, stem, pair)
    return directory / f"{stem}.pem", directory / f"{stem}.key"


def ocsp_good(ca: KeyPair, cert: x509.Certificate, *, hours: int = 24 * 7) -> bytes:
    """A signed OCSP response: *cert*, issued by *ca*, is not revoked."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(cert=cert, issuer=ca.cert, algorithm=hashes.SHA256(),
                      cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                      next_update=now + timedelta(hours=hours), revocation_time=None,
                      revocation_reason=None)
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        .sign(ca.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
