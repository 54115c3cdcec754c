"""Published PKI material: CA certificates, CRLs, and the development TSA."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from asn1crypto import tsp
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from flask import Blueprint, Response, request

from signflow.errors import InvalidInput, NotFound
from signflow.pdf.keys import DevTimeStamper, dev_timestamper
from signflow.pdf.ocsp_responder import answer_ocsp, refusal
from signflow.pdf.pki import FILES, make_crl
from signflow.pdf.sign import ROOT_CRL_DAYS
from signflow.web import runtime

bp = Blueprint("pki", __name__)
PUBLISHED = {"root", "signer_ca", "seal", "tsa"}


def _pair(stem: str):
    pki = runtime().pki
    for which, name in FILES.items():
        if name == stem and which in PUBLISHED:
            return getattr(pki, which)
    raise NotFound("no such certificate")


@bp.get("/pki/<stem>.crl")
def crl(stem: str):
    if stem not in (FILES["root"], FILES["signer_ca"]):
        raise NotFound("no such CRL")
    days = ROOT_CRL_DAYS if stem == FILES["root"] else 7
    der = make_crl(_pair(stem), days=days).public_bytes(Encoding.DER)
    return Response(der, mimetype="application/pkix-crl",
                    headers={"Cache-Control": "public, max-age=3600"})


@bp.get("/pki/<stem>.pem")
def certificate(stem: str):
    return Response(_pair(stem).cert.public_bytes(Encoding.PEM), mimetype="application/x-pem-file")


#: The longest OCSP request read: one CertID, a nonce and a signature fit many times over.
OCSP_REQUEST_LIMIT = 8192


@bp.post("/pki/ocsp")
def ocsp_post():
    """OCSP (RFC 6960) for the root and the signer CA.

    Whatever arrives is answered with an OCSP response, status 200: an OCSP
    client reads only that, so a wrong content type or an oversized body is a
    ``malformedRequest`` like any other request it cannot read.
    """
    if (request.mimetype != "application/ocsp-request"
            or (request.content_length or 0) > OCSP_REQUEST_LIMIT):
        return _ocsp_response(refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    return _ocsp(request.stream.read(OCSP_REQUEST_LIMIT + 1))  # a chunked body has no length


@bp.get("/pki/ocsp/<path:encoded>")
def ocsp_get(encoded: str):
    try:
        body = base64.b64decode(unquote(encoded), validate=False)
    except ValueError:  # binascii.Error: bad padding
        return _ocsp_response(refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    return _ocsp(body)


def _ocsp(body: bytes) -> Response:
    if len(body) > OCSP_REQUEST_LIMIT:
        return _ocsp_response(refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    pki = runtime().pki
    return _ocsp_response(answer_ocsp(body, [pki.signer_ca, pki.root]))


def _ocsp_response(der: bytes) -> Response:
    return Response(der, mimetype="application/ocsp-response",
                    headers={"Cache-Control": "no-store"})


@bp.post("/tsa")
def tsa():
    """RFC 3161 over HTTP, answered by the development TSA (development mode only:
    it would timestamp anything for anyone)."""
    settings = runtime().settings
    if not settings.dev_mode:
        raise NotFound("no such page")
    if settings.tsa_url:
        raise NotFound("the development TSA is off: SIGNFLOW_TSA_URL is set")
    if request.content_type != "application/timestamp-query":
        raise InvalidInput("Content-Type must be application/timestamp-query")
    body = request.get_data(cache=False)
    if len(body) > 16384:
        raise InvalidInput("time-stamp request too large")
    try:
        req = tsp.TimeStampReq.load(body)
        _ = req.native  # parse fully now, so garbage is refused here
    except (ValueError, TypeError):
        raise InvalidInput("not a time-stamp request") from None
    stamper = runtime().services.pdf.timestamper  # the development TSA (no TSA URL)
    if not isinstance(stamper, DevTimeStamper):
        stamper = dev_timestamper(runtime().pki)
    resp = stamper.request_tsa_response(req)
    return Response(resp.dump(), mimetype="application/timestamp-reply")
