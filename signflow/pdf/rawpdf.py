"""Random access to the few objects an approval rewrites, without parsing the file.

A general reader (qpdf, pyHanko) loads every cross-reference entry first: 8-20
ms on a 1000-page protocol, and growing with it. An approval needs four or five
objects, so this reader finds their entries directly in the classic
cross-reference sections (each entry is 20 bytes at a computable place) and
parses only those objects. Dictionaries keep their values' original bytes, so
what we write back is exactly what was there.

It reads documents our own pipeline wrote (the prepared, certified protocol and
its approvals); anything else is a :class:`RawPdfError`, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WHITESPACE = b"\x00\t\n\x0c\r "
DELIMITERS = b"()<>[]{}/%"


class RawPdfError(ValueError):
    """The bytes are not the classic-xref PDF this reader handles."""


@dataclass(frozen=True)
class Ref:
    num: int
    gen: int

    def pdf(self) -> bytes:
        return b"%d %d R" % (self.num, self.gen)


class Name(str):
    """A PDF name, kept with its slash: ``Name("/Sig")``."""


class Dict(dict):
    """A parsed dictionary that also remembers each value's original bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, bytes] = {}

    def unparse(self, *, drop: tuple[str, ...] = (), add: bytes = b"") -> bytes:
        """The dictionary as written, without the keys in *drop*, with *add* appended."""
        items = [key.encode("latin-1") + b" " + raw for key, raw in self.raw.items()
                 if key not in drop]
        if add:
            items.append(add)
        return b"<< " + b" ".join(items) + b" >>"


_NUMBER = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)")
_REF = re.compile(rb"(\d+)\s+(\d+)\s+R")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
            ord("f"): b"\f", ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}


class _Parser:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def skip_space(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n:
            c = data[self.pos]
            if c in WHITESPACE:
                self.pos += 1
            elif c == 0x25:  # comment to end of line
                while self.pos < n and data[self.pos] not in b"\r\n":
                    self.pos += 1
            else:
                return

    def value(self, depth: int = 0) -> object:
        if depth > 64:
            raise RawPdfError("objects nested too deeply")
        self.skip_space()
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise RawPdfError("unexpected end of data")
        c = data[pos:pos + 1]
        if data.startswith(b"<<", pos):
            return self._dict(depth)
        if c == b"[":
            self.pos += 1
            items: list[object] = []
            while True:
                self.skip_space()
                if self.data[self.pos:self.pos + 1] == b"]":
                    self.pos += 1
                    return items
                items.append(self.value(depth + 1))
        if c == b"(":
            return self._literal()
        if c == b"<":
            end = data.find(b">", pos)
            hexdigits = re.sub(rb"\s", b"", data[pos + 1:end])
            if end < 0 or not re.fullmatch(rb"[0-9A-Fa-f]*", hexdigits):
                raise RawPdfError(f"bad hex string at {pos}")
            self.pos = end + 1
            return bytes.fromhex((hexdigits + b"0" * (len(hexdigits) % 2)).decode())
        if c == b"/":
            end = pos + 1
            while end < len(data) and data[end] not in WHITESPACE + DELIMITERS:
                end += 1
            self.pos = end
            return Name(data[pos:end].decode("latin-1"))
        ref = _REF.match(data, pos)
        if ref:
            self.pos = ref.end()
            return Ref(int(ref.group(1)), int(ref.group(2)))
        number = _NUMBER.match(data, pos)
        if number:
            self.pos = number.end()
            text = number.group(0)
            return float(text) if b"." in text else int(text)
        for word, result in ((b"true", True), (b"false", False), (b"null", None)):
            if data.startswith(word, pos):
                self.pos += len(word)
                return result
        raise RawPdfError(f"unexpected {data[pos:pos + 10]!r} at {pos}")

    def _dict(self, depth: int) -> Dict:
        self.pos += 2
        out = Dict()
        while True:
            self.skip_space()
            if self.data.startswith(b">>", self.pos):
                self.pos += 2
                return out
            key = self.value(depth + 1)
            if not isinstance(key, Name):
                raise RawPdfError("dictionary key is not a name")
            self.skip_space()
            start = self.pos
            out[key] = self.value(depth + 1)
            out.raw[key] = self.data[start:self.pos]

    def _literal(self) -> bytes:
        data, pos, depth, out = self.data, self.pos + 1, 1, bytearray()
        while pos < len(data):
            c = data[pos]
            if c == 0x5C:  # backslash
                if pos + 1 >= len(data):
                    break
                nxt = data[pos + 1]
                if nxt in _ESCAPES:
                    out += _ESCAPES[nxt]
                    pos += 2
                elif 0x30 <= nxt <= 0x37:
                    digits = re.match(rb"[0-7]{1,3}", data[pos + 1:pos + 4])
                    octal = digits.group(0) if digits else b"0"
                    out.append(int(octal, 8) & 0xFF)
                    pos += 1 + len(octal)
                elif nxt in b"\r\n":  # line continuation
                    pos += 2 + (nxt == 0x0D and data[pos + 2:pos + 3] == b"\n")
                else:
                    pos += 1
                continue
            if c == 0x0D:  # an unescaped end of line reads as LF
                out += b"\n"
                pos += 2 if data[pos + 1:pos + 2] == b"\n" else 1
                continue
            if c == 0x28:
                depth += 1
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    self.pos = pos + 1
                    return bytes(out)
            out.append(c)
            pos += 1
        raise RawPdfError("unterminated string")


_OBJ = re.compile(rb"(\d+)\s+(\d+)\s+obj")
_XREF_HEAD = re.compile(rb"(\d+)\s+(\d+)")


def _parsed(parser: _Parser) -> object:
    """One value, with any slip of the parser reported as :class:`RawPdfError`."""
    try:
        return parser.value()
    except RawPdfError:
        raise
    except (IndexError, ValueError, AttributeError) as exc:
        raise RawPdfError(f"unreadable object: {exc}") from None


class RawPdf:
    """The last revision's trailer and any object by number, read on demand."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        match = re.search(rb"startxref\s+(\d+)\s*%%EOF\s*$", data[-1024:])
        if not match:
            raise RawPdfError("the document does not end in a cross-reference pointer")
        self.startxref = int(match.group(1))
        self._trailers: dict[int, Dict] = {}  # by section offset: each is parsed once
        self.trailer = self._section_trailer(self.startxref)

    def _section_trailer(self, offset: int) -> Dict:
        if offset in self._trailers:
            return self._trailers[offset]
        if not self.data.startswith(b"xref", offset):
            raise RawPdfError("only classic cross-reference tables are read here")
        at = self.data.find(b"trailer", offset)
        if at < 0:
            raise RawPdfError("cross-reference section without trailer")
        trailer = _parsed(_Parser(self.data, at + len(b"trailer")))
        if not isinstance(trailer, Dict):
            raise RawPdfError("trailer is not a dictionary")
        if "/Encrypt" in trailer:
            raise RawPdfError("the document is encrypted")
        self._trailers[offset] = trailer
        return trailer

    def _lookup(self, num: int) -> tuple[int, int] | None:
        """(offset, generation) of object *num* from the newest section naming it."""
        offset: int | None = self.startxref
        seen: set[int] = set()
        while offset is not None and offset not in seen:
            seen.add(offset)
            parser = _Parser(self.data, offset + len(b"xref"))
            while True:
                parser.skip_space()
                head = _XREF_HEAD.match(self.data, parser.pos)
                if not head:
                    break
                start, count = int(head.group(1)), int(head.group(2))
                parser.pos = head.end()
                parser.skip_space()
                if start <= num < start + count:
                    at = parser.pos + 20 * (num - start)
                    entry = self.data[at:at + 20]
                    fields = entry.split()
                    if len(fields) != 3 or fields[2] not in (b"n", b"f") or \
                            not (fields[0].isdigit() and fields[1].isdigit()):
                        raise RawPdfError(f"bad cross-reference entry for object {num}")
                    if fields[2] == b"f":
                        return None
                    return int(fields[0]), int(fields[1])
                parser.pos += 20 * count
            prev = self._section_trailer(offset).get("/Prev")
            offset = prev if isinstance(prev, int) else None
        return None

    def exists(self, num: int) -> bool:
        """Whether object *num* is in use in the document."""
        return self._lookup(num) is not None

    def _body(self, ref: Ref) -> _Parser:
        """A parser placed after ``N G obj`` of *ref*."""
        found = self._lookup(ref.num)
        if found is None or found[1] != ref.gen:
            raise RawPdfError(f"object {ref.num} {ref.gen} is not in the document")
        head = _OBJ.match(self.data, found[0])
        if not head or (int(head.group(1)), int(head.group(2))) != (ref.num, ref.gen):
            raise RawPdfError(f"object {ref.num} is not where the cross-reference says")
        return _Parser(self.data, head.end())

    def get(self, ref: Ref) -> object:
        """The object *ref* points to (a stream's dictionary, for a stream)."""
        return _parsed(self._body(ref))

    def resolve(self, value: object) -> object:
        return self.get(value) if isinstance(value, Ref) else value

    def stream_bytes(self, ref: Ref) -> bytes:
        """The raw (unfiltered) data of an unfiltered stream, as DSS entries are."""
        parser = self._body(ref)
        entries = _parsed(parser)
        length = self.resolve(entries.get("/Length")) if isinstance(entries, Dict) else None
        parser.skip_space()
        if not isinstance(length, int) or not self.data.startswith(b"stream", parser.pos):
            raise RawPdfError(f"object {ref.num} is not a stream")
        start = parser.pos + len(b"stream")
        start += 2 if self.data[start:start + 2] == b"\r\n" else 1
        end = _Parser(self.data, start + length)
        end.skip_space()
        if length < 0 or not self.data.startswith(b"endstream", end.pos):
            raise RawPdfError(f"object {ref.num}'s /Length does not end at endstream")
        return self.data[start:start + length]
