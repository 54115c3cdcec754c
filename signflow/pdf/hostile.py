"""Structures no honest protocol carries, refused at intake with a reason.

qpdf reads these files without trouble, but a viewer following them does not
come back: objects that contain themselves, actions that trigger each other in
a circle, outlines that never end, object streams that extend themselves,
PostScript calculator functions that overflow or are not calculator code at
all, and JavaScript. Normalization would strip some of them; refusing them says
plainly that the upload was hostile or broken, and the signed PDF that goes out
to every signer and auditor never inherits what is left.

The walk is iterative and budgeted, so a huge or deep file ends in a refusal,
not a recursion error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pikepdf
from pikepdf import Name

from signflow.errors import UnsupportedDocument

#: Keys that point back up or sideways, not down: following them finds the
#: ordinary parent/child and previous/next cycles every PDF has.
#: /AN: a rendition action's screen annotation (LibreOffice's media links point
#: back at their own annotation); /Ref: PDF 2.0 structure elements referring to
#: each other (footnotes); /V: a bead's previous bead, a field's value.
BACK_LINKS = frozenset({Name.Parent, Name.P, Name.Prev, Name.V, Name.Threads, Name.B,
                        Name.Last, Name.AN, Name.Ref})
#: A page is reached through the page tree only; elsewhere it is a pointer
#: (a destination, an annotation's page, a structure element's page). Article
#: threads and their beads are rings by design; they are pointed at, not walked.
PAGE_TYPES = frozenset({Name.Page, Name.Pages, Name.Thread, Name.Bead})
TREE_KEYS = frozenset({Name.Kids, Name.Pages})
#: Actions that, run automatically, leave the document (and can come back to it).
OTHER_DOCUMENT = frozenset({Name.GoToE, Name.GoToR, Name.Launch, Name.ImportData,
                            Name.SubmitForm})
MAX_CONTAINERS = 2_000_000


def check(pdf: pikepdf.Pdf) -> None:
    """Raise :class:`UnsupportedDocument` if *pdf* holds a hostile structure."""
    _walk(pdf)
    _object_stream_chains(pdf)
    _action_loops(pdf)
    _calculator_functions(pdf)


def _refuse(message: str, code: str = "hostile_structure") -> UnsupportedDocument:
    return UnsupportedDocument(message, code=code)


def _children(obj: pikepdf.Object, via: Name | None) -> Iterator[tuple[Name | None,
                                                                      pikepdf.Object]]:
    if isinstance(obj, pikepdf.Dictionary):
        thread_action = obj.get(Name.S) == Name.Thread
        for key in obj.keys():
            name = Name(key)
            if name == Name.V and via == Name.AA:
                yield name, obj[name]  # a form field's validate action, not a value
            elif name not in BACK_LINKS and not (thread_action and name == Name.D):
                yield name, obj[name]
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            yield via, item


def _walk(pdf: pikepdf.Pdf) -> None:
    """Depth-first from the catalog: reference loops and JavaScript."""
    on_path: set[tuple[int, int]] = set()
    done: set[tuple[int, int]] = set()
    seen = 0
    # (object, key it was reached by, entering?) — leaving pops it off the path
    stack: list[tuple[pikepdf.Object, Name | None, bool]] = [(pdf.Root, None, True)]
    while stack:
        obj, via, entering = stack.pop()
        key = obj.objgen if obj.is_indirect else None
        if not entering:
            on_path.discard(key)
            done.add(key)
            continue
        if isinstance(obj, pikepdf.Dictionary) and obj.get(Name.Type) in PAGE_TYPES and \
                via not in TREE_KEYS and via is not None:
            continue
        if key is not None:
            if key in on_path:
                raise _refuse("the PDF holds an object that contains itself (a reference loop)")
            if key in done:
                continue
        seen += 1
        if seen > MAX_CONTAINERS:
            raise _refuse("the PDF has too many objects to check", code="too_complex")
        if isinstance(obj, pikepdf.Dictionary):
            if obj.get(Name.S) == Name.JavaScript or Name.JS in obj:
                raise _refuse("the PDF contains JavaScript; save or print it as a plain "
                              "PDF (for example PDF/A) and upload that", code="active_content")
        if isinstance(obj, pikepdf.Stream) or not isinstance(
                obj, pikepdf.Dictionary | pikepdf.Array):
            continue  # streams and scalars end the walk: their dictionaries are resources
        if key is not None:
            on_path.add(key)
            stack.append((obj, via, False))
        stack.extend((child, name, True) for name, child in _children(obj, via)
                     if isinstance(child, pikepdf.Dictionary | pikepdf.Array))
    names = pdf.Root.get(Name.Names)
    if isinstance(names, pikepdf.Dictionary) and Name.JavaScript in names:
        raise _refuse("the PDF contains JavaScript; save or print it as a plain PDF "
                      "(for example PDF/A) and upload that", code="active_content")


def _object_stream_chains(pdf: pikepdf.Pdf) -> None:
    done: set[tuple[int, int]] = set()  # chains already followed to their end
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get(Name.Type) != Name.ObjStm:
            continue
        chain = [obj.objgen]
        link = obj.get(Name.Extends)
        while isinstance(link, pikepdf.Stream) and link.objgen not in done:
            if link.objgen in chain:
                raise _refuse("the PDF has object streams that extend each other in a loop")
            chain.append(link.objgen)
            link = link.get(Name.Extends)
        done.update(chain)


# --- actions that trigger each other ------------------------------------------------

def _actions(value: pikepdf.Object | None) -> list[pikepdf.Dictionary]:
    if isinstance(value, pikepdf.Dictionary):
        return [value]
    if isinstance(value, pikepdf.Array):
        return [a for a in value if isinstance(a, pikepdf.Dictionary)]
    return []


def _triggered(holder: pikepdf.Object) -> list[pikepdf.Dictionary]:
    """Actions that run on their own when *holder* (catalog, page, annotation) is shown."""
    found: list[pikepdf.Dictionary] = []
    aa = holder.get(Name.AA)
    if isinstance(aa, pikepdf.Dictionary):
        for key in aa.keys():
            found += _actions(aa[key])
    return found


def _page_actions(page: pikepdf.Dictionary) -> list[pikepdf.Dictionary]:
    found = _triggered(page)
    for annot in page.get(Name.Annots, []):
        if isinstance(annot, pikepdf.Dictionary):
            found += _triggered(annot)
    return found


def _action_loops(pdf: pikepdf.Pdf) -> None:
    """Refuse actions that lead back to themselves (through Next or by opening a page).

    The walk goes through actions and the pages they open; a page's successors
    are the actions that run when it is shown.  Every loop passes through an
    indirect object (a direct one cannot contain itself), so those are tracked.
    """
    start: list[pikepdf.Object] = _triggered(pdf.Root) + _actions(pdf.Root.get(Name.OpenAction))
    start += [page.obj for page in pdf.pages]
    budget = 100_000
    done: set[tuple[int, int]] = set()  # explored without a loop: nothing new behind it
    for first in start:
        path: set[tuple[int, int]] = set()
        stack: list[tuple[pikepdf.Object, bool]] = [(first, True)]
        while stack:
            node, entering = stack.pop()
            key = node.objgen
            if not entering:
                path.discard(key)
                done.add(key)
                continue
            budget -= 1
            if budget < 0:
                raise _refuse("the PDF's actions are too many to check", code="too_complex")
            if key != (0, 0):
                if key in path:
                    raise _refuse("the PDF's actions trigger each other in a loop")
                if key in done:
                    continue
                path.add(key)
                stack.append((node, False))
            if node.get(Name.Type) == Name.Page:
                following: list[pikepdf.Object] = list(_page_actions(node))
            else:
                if node.get(Name.S) in OTHER_DOCUMENT:
                    raise _refuse("the PDF opens another document or program by itself")
                following = list(_actions(node.get(Name.Next)))
                page = _destination_page(pdf, node)
                if page is not None:
                    following.append(page)
            stack.extend((n, True) for n in following)


def _destination_page(pdf: pikepdf.Pdf, action: pikepdf.Dictionary) -> pikepdf.Dictionary | None:
    """The page a GoTo action opens, when it names one directly (or by number)."""
    dest = action.get(Name.D) if action.get(Name.S) == Name.GoTo else None
    if not isinstance(dest, pikepdf.Array) or not len(dest):
        return None
    target = dest[0]
    if isinstance(target, pikepdf.Dictionary) and target.get(Name.Type) == Name.Page:
        return target
    if isinstance(target, int) and 0 <= int(target) < len(pdf.pages):  # not allowed, but read
        return pdf.pages[int(target)].obj
    return None


# --- PostScript calculator functions (FunctionType 4) ---------------------------------

MAX_STACK = 100  # the operand stack limit viewers implement (PDF 32000-1, annex C)
MAX_NESTING = 100
_TOKEN = re.compile(rb"[{}]|[^\s{}]+")


class _Invalid(Exception):
    pass


def _parse(code: bytes) -> list:
    if len(code) > 65536:
        raise _Invalid("too long")
    tokens = _TOKEN.findall(code)
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == b"{":
            if len(stack) > MAX_NESTING:
                raise _Invalid("procedures nested too deeply")
            stack.append([])
        elif tok == b"}":
            if len(stack) < 2:
                raise _Invalid("unbalanced braces")
            block = stack.pop()
            stack[-1].append(block)
        else:
            stack[-1].append(_atom(tok))
    if len(stack) != 1 or len(stack[0]) != 1 or not isinstance(stack[0][0], list):
        raise _Invalid("not one procedure")
    return stack[0][0]


def _atom(tok: bytes) -> object:
    text = tok.decode("latin-1")
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        if text not in _OPS and text not in ("if", "ifelse"):
            raise _Invalid(f"{text[:20]!r} is not a calculator operator") from None
        return _Op(text)
    if not math.isfinite(value):
        raise _Invalid("not a finite number")
    return value


class _Op(str):
    pass


def _num(x: object) -> float | int:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise _Invalid("type check")
    return x


def _int(x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _Invalid("type check")
    return x


def _cvi(x: object) -> int:
    value = math.trunc(_num(x))
    if not -(2**31) <= value < 2**31:
        raise _Invalid("range check")
    return value


def _checked(value: float | int) -> float | int:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid("undefined result")
    if isinstance(value, int) and not -(2**31) <= value < 2**31:
        return float(value)
    return value


_BINARY = {
    "add": lambda a, b: _num(a) + _num(b), "sub": lambda a, b: _num(a) - _num(b),
    "mul": lambda a, b: _num(a) * _num(b),
    "div": lambda a, b: _num(a) / _num(b) if _num(b) else _fail("division by zero"),
    "idiv": lambda a, b: int(_int(a) / _int(b)) if _int(b) else _fail("division by zero"),
    "mod": lambda a, b: int(math.fmod(_int(a), _int(b))) if _int(b) else _fail("mod by zero"),
    "exp": lambda a, b: math.pow(_num(a), _num(b)),
    "atan": lambda a, b: math.degrees(math.atan2(_num(a), _num(b))) % 360,
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: _num(a) > _num(b), "ge": lambda a, b: _num(a) >= _num(b),
    "lt": lambda a, b: _num(a) < _num(b), "le": lambda a, b: _num(a) <= _num(b),
    "and": lambda a, b: _logical(a, b, lambda x, y: x & y),
    "or": lambda a, b: _logical(a, b, lambda x, y: x | y),
    "xor": lambda a, b: _logical(a, b, lambda x, y: x ^ y),
    "bitshift": lambda a, b: _bitshift(_int(a), _int(b)),
}
_UNARY = {
    "abs": lambda a: abs(_num(a)), "neg": lambda a: -_num(a),
    "ceiling": lambda a: float(math.ceil(_num(a))), "floor": lambda a: float(math.floor(_num(a))),
    "round": lambda a: float(math.floor(_num(a) + 0.5)), "truncate": lambda a: float(
        math.trunc(_num(a))),
    "sqrt": lambda a: math.sqrt(_num(a)), "sin": lambda a: math.sin(math.radians(_num(a))),
    "cos": lambda a: math.cos(math.radians(_num(a))), "ln": lambda a: math.log(_num(a)),
    "log": lambda a: math.log10(_num(a)), "cvi": _cvi, "cvr": lambda a: float(_num(a)),
    "not": lambda a: (not a) if isinstance(a, bool) else ~_int(a),
}
_STACK_OPS = {"pop", "exch", "dup", "copy", "index", "roll"}
_OPS = set(_BINARY) | set(_UNARY) | _STACK_OPS


def _logical(a: object, b: object, op) -> bool | int:
    """and/or/xor: both booleans, or both integers."""
    if isinstance(a, bool) and isinstance(b, bool):
        return bool(op(a, b))
    return op(_int(a), _int(b))


def _bitshift(value: int, shift: int) -> int:
    if abs(shift) > 31:
        raise _Invalid("range check")
    shifted = value << shift if shift >= 0 else value >> -shift
    return (shifted + 2**31) % 2**32 - 2**31  # a 32-bit integer, as in PostScript


def _fail(why: str):
    raise _Invalid(why)


def _run(proc: list, stack: list) -> None:
    for i, item in enumerate(proc):
        if isinstance(item, list):
            continue  # a block is taken by the if/ifelse after it
        if not isinstance(item, _Op):
            stack.append(item)
        elif item in ("if", "ifelse"):
            blocks = proc[max(0, i - (1 if item == "if" else 2)):i]
            if len(blocks) != (1 if item == "if" else 2) or \
                    not all(isinstance(b, list) for b in blocks):
                raise _Invalid(f"{item} without its procedures")
            if not stack or not isinstance(stack[-1], bool):
                raise _Invalid("type check")
            cond = stack.pop()
            if item == "if":
                if cond:
                    _run(blocks[0], stack)
            else:
                _run(blocks[0] if cond else blocks[1], stack)
        elif item in _BINARY:
            if len(stack) < 2:
                raise _Invalid("stack underflow")
            b, a = stack.pop(), stack.pop()
            try:
                stack.append(_checked(_BINARY[item](a, b)))
            except (OverflowError, ValueError, ZeroDivisionError) as exc:
                raise _Invalid(str(exc)) from None
        elif item in _UNARY:
            if not stack:
                raise _Invalid("stack underflow")
            try:
                stack.append(_checked(_UNARY[item](stack.pop())))
            except (OverflowError, ValueError) as exc:
                raise _Invalid(str(exc)) from None
        else:
            _stack_op(item, stack)
        if len(stack) > MAX_STACK:
            raise _Invalid("stack overflow")


def _stack_op(op: str, stack: list) -> None:
    if op == "dup":
        if not stack:
            raise _Invalid("stack underflow")
        stack.append(stack[-1])
        return
    if op == "pop":
        if not stack:
            raise _Invalid("stack underflow")
        stack.pop()
        return
    if op == "exch":
        if len(stack) < 2:
            raise _Invalid("stack underflow")
        stack[-1], stack[-2] = stack[-2], stack[-1]
        return
    if not stack:
        raise _Invalid("stack underflow")
    if op == "roll":
        j, n = _int(stack.pop()), _int(stack.pop() if stack else _fail("stack underflow"))
        if n < 0 or n > len(stack):
            raise _Invalid("range check")
        if n:
            part = stack[-n:]
            j %= n
            stack[-n:] = part[-j:] + part[:-j] if j else part
        return
    n = _int(stack.pop())
    if n < 0 or n > len(stack) or (op == "copy" and len(stack) + n > MAX_STACK):
        raise _Invalid("range check" if n < 0 or n > len(stack) else "stack overflow")
    if op == "copy":
        stack.extend(stack[len(stack) - n:])
    else:  # index
        if n >= len(stack):
            raise _Invalid("range check")
        stack.append(stack[-1 - n])


def _calculator_functions(pdf: pikepdf.Pdf) -> None:
    """Run every calculator function once at the corners and middle of its domain."""
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get(Name.FunctionType) != 4:
            continue
        try:
            proc = _parse(obj.read_bytes())
            domain = [float(x) for x in obj.get(Name.Domain, [])]
            if not domain or len(domain) % 2:
                raise _Invalid("no domain")
            lows, highs = domain[0::2], domain[1::2]
            for inputs in (lows, highs, [(a + b) / 2 for a, b in zip(lows, highs, strict=True)]):
                _run(proc, list(inputs))
        except (_Invalid, TypeError, ValueError) as exc:
            raise _refuse(f"the PDF has a PostScript calculator function that cannot be "
                          f"run safely ({exc})") from None
        except pikepdf.PdfError:
            raise _refuse("the PDF has a PostScript calculator function that cannot be read"
                          ) from None
