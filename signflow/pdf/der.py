"""Just enough DER to write CMS signatures and timestamp tokens quickly.

asn1crypto re-serializes whole certificate trees whenever a structure holding
them is dumped; that was most of a signature's cost (about 15 ms of asn1crypto
work per approval). What we write is a handful of fixed shapes around bytes we
already have in DER (certificates, names, the TST info), so we concatenate
those directly. Reading stays with asn1crypto: it is lazy and cheap there.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    """A DER SET OF: members in ascending order of their encodings."""
    return tlv(0x31, b"".join(sorted(parts)))


def explicit(number: int, body: bytes) -> bytes:
    """``[number] EXPLICIT``: a constructed context tag around a whole encoding."""
    return tlv(0xA0 | number, body)


def implicit_set(number: int, *parts: bytes, sort: bool = True) -> bytes:
    """``[number] IMPLICIT SET OF``: the SET's contents under a context tag."""
    return tlv(0xA0 | number, b"".join(sorted(parts) if sort else parts))


def integer(value: int) -> bytes:
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1  # room for the sign bit
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


@functools.cache
def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def generalized_time(moment: datetime) -> bytes:
    """GeneralizedTime in UTC with the microseconds a TSA may state."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return tlv(0x18, (text + "Z").encode())


def utc_time(moment: datetime) -> bytes:
    return tlv(0x17, moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ").encode())


def attribute(type_oid: str, *values: bytes) -> bytes:
    """A CMS Attribute: its type and the SET OF its values."""
    return seq(oid(type_oid), set_of(*values))


def algorithm(dotted: str) -> bytes:
    """An AlgorithmIdentifier without parameters (SHA-2, ECDSA)."""
    return seq(oid(dotted))


def algorithm_null(dotted: str) -> bytes:
    """An AlgorithmIdentifier with NULL parameters (RSA PKCS #1)."""
    return seq(oid(dotted), b"\x05\x00")
