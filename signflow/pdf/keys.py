"""Bridges from :mod:`cryptography` key material to pyHanko signers and TSAs."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from asn1crypto import cms, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signflow.pdf import der
from signflow.pdf.cms import CertRef, timestamp_token
from signflow.pdf.pki import KeyPair, Pki

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def asn1_key(pair: KeyPair) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(pair.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))


def parsed_for_threads(signer: Signer) -> Signer:
    """*signer* with every asn1crypto value it holds parsed now.

    asn1crypto parses lazily, and two threads parsing the same value at once can
    leave it broken: twin requests certifying with the one seal signer of a
    process ended in ``KeyError: 'No field numbered 1'`` from pyHanko reading
    the key's curve.  Parsed once, while one thread has it, it is only read after.
    """
    values = [signer.signing_cert, getattr(signer, "signing_key", None),
              *(signer.cert_registry or ())]
    for value in values:
        if value is not None:
            value.native  # noqa: B018 - parses the whole value
    return signer


def simple_signer(pair: KeyPair, chain: list[x509.Certificate]) -> SimpleSigner:
    """A pyHanko signer holding an already parsed key (no re-parse per signature)."""
    return SimpleSigner(
        signing_cert=asn1_cert(pair.cert),
        signing_key=asn1_key(pair),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(c) for c in chain]),
    )


class DevTimeStamper(DummyTimeStamper):
    """The built-in development TSA: RFC 3161 tokens written straight in DER.

    pyHanko's in-process TSA re-parses its RSA key and rebuilds every structure
    with asn1crypto for each token (5-40 ms); this one signs with a key object
    parsed once and writes the token in about a millisecond.
    """

    POLICY = "1.3.6.1.4.1.4146.2.2"

    def __init__(self, pki: Pki) -> None:
        super().__init__(
            tsa_cert=asn1_cert(pki.tsa.cert), tsa_key=asn1_key(pki.tsa),
            certs_to_embed=SimpleCertificateStore.from_certs([asn1_cert(pki.root.cert)]))
        for value in (self.tsa_cert, self.tsa_key, *self.certs_to_embed):  # shared by threads:
            value.native  # noqa: B018 - parsed now (see parsed_for_threads)
        self._key = pki.tsa.key
        self._tsa = CertRef.of(pki.tsa.cert)
        self._embed = [CertRef.of(pki.root.cert)]

    def token(self, digest: bytes, nonce: int | None = None) -> bytes:
        """A DER TimeStampToken over a SHA-256 *digest*, stamped now."""
        return timestamp_token(
            digest=digest, tsa=self._tsa, key=self._key, embed=self._embed,
            serial=secrets.randbits(63), policy=self.POLICY, when=datetime.now(UTC),
            nonce=nonce)

    def request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """The answer to an RFC 3161 request over HTTP (the development TSA's
        endpoint; the fault tests' and ``make load``'s TSA), its nonce echoed.
        pyHanko's re-read the RSA key with its consistency check for every token:
        the load bench's TSA then used more CPU than signflow's workers.  Like
        pyHanko's, it takes every request as asking for the certificates."""
        imprint = req["message_imprint"]
        digest = imprint["hashed_message"].native
        if imprint["hash_algorithm"]["algorithm"].native != "sha256" or len(digest) != 32:
            return super().request_tsa_response(req)
        token = self.token(digest, nonce=req["nonce"].native)
        granted = der.seq(der.integer(0))  # PKIStatusInfo: granted
        return tsp.TimeStampResp.load(der.seq(granted, token))

    async def async_timestamp(self, message_digest, md_algorithm) -> cms.ContentInfo:
        if md_algorithm.lower() != "sha256":
            return await super().async_timestamp(message_digest, md_algorithm)
        return cms.ContentInfo.load(self.token(message_digest))


def timestamp_token_for(timestamper: TimeStamper, digest: bytes) -> bytes:
    """A DER token over a SHA-256 *digest* from any TSA pyHanko can talk to."""
    return asyncio.run(timestamper.async_timestamp(digest, "sha256")).dump()


def warm_timestamper(timestamper: TimeStamper) -> None:
    """Have *timestamper* fetch, now, the sample token pyHanko sizes a signature's
    room by (kept on it once fetched), at a worker's start rather than in its
    first job; processes forked from this one inherit it.  A TSA that cannot be
    reached now is asked later, by the job."""
    try:
        asyncio.run(timestamper.async_dummy_response("sha256"))
    except Exception as exc:  # noqa: BLE001 - only a head start; the job asks again
        log.warning("the TSA's sample token could not be fetched ahead: %s: %s",
                    type(exc).__name__, exc)


def dev_timestamper(pki: Pki) -> DevTimeStamper:
    """The built-in development TSA: RFC 3161 tokens signed by the dev TSA key."""
    return DevTimeStamper(pki)


class HttpTimeStamper(TimeStamper):
    """An RFC 3161 TSA over HTTP(S), asked with requests.

    pyHanko's ``HTTPTimeStamper`` opens an aiohttp session for every token, and
    with it TLS settings that read the system's CA certificates, even for a
    plain-HTTP TSA: under load that was 30 % of a worker's CPU.  This one keeps
    a requests session per thread and per process (a forked child never writes
    into its parent's connection), and says every failure as pyHanko's
    ``TimestampRequestError``; pyHanko checks the answer (status, nonce, imprint).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        import requests  # here: verifying, which imports this module, never asks a TSA

        mine = getattr(self._local, "session", None)
        if mine is None or mine[0] != os.getpid():
            mine = self._local.session = (os.getpid(), requests.Session())
        return mine[1]

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        import requests

        try:
            resp = self._session().post(
                self.url, data=req.dump(), timeout=self.timeout,
                headers={"Content-Type": "application/timestamp-query",
                         "Accept": "application/timestamp-reply"})
        except requests.RequestException as exc:
            raise TimestampRequestError(
                f"the TSA at {self.url} cannot be reached: {type(exc).__name__}") from exc
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if resp.status_code != 200 or kind != "application/timestamp-reply":
            raise TimestampRequestError(
                f"the TSA at {self.url} answered {resp.status_code} {kind or '(no type)'}, "
                "not a timestamp reply")
        try:
            return tsp.TimeStampResp.load(resp.content, strict=True)
        except ValueError as exc:
            raise TimestampRequestError(f"the TSA at {self.url} sent an unreadable reply") \
                from exc


def make_timestamper(pki: Pki, tsa_url: str) -> TimeStamper:
    if tsa_url:
        return HttpTimeStamper(tsa_url, timeout=10)
    return dev_timestamper(pki)
