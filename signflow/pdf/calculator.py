"""PostScript calculator functions (PDF FunctionType 4), run the way a viewer would.

The calculator language has no loops or procedures, only ``if``/``ifelse``,
so one run touches each operator at most once; what can go wrong is an
operand stack past a viewer's limit of 100, numbers out of range, or code
that is not calculator code at all (the PDF101 suite's D1-D3 files). Intake
runs every such function at the corners and middle of its domain and refuses
the document if a run fails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

MAX_STACK = 100  # the operand stack limit viewers implement (PDF 32000-1, annex C)
MAX_NESTING = 100
_TOKEN = re.compile(rb"[{}]|[^\s{}]+")


class CalculatorError(ValueError):
    """The function cannot run within a viewer's limits, or is not calculator code."""


def _parse(code: bytes) -> list:
    if len(code) > 65536:
        raise CalculatorError("too long")
    tokens = _TOKEN.findall(code)
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == b"{":
            if len(stack) > MAX_NESTING:
                raise CalculatorError("procedures nested too deeply")
            stack.append([])
        elif tok == b"}":
            if len(stack) < 2:
                raise CalculatorError("unbalanced braces")
            block = stack.pop()
            stack[-1].append(block)
        else:
            stack[-1].append(_atom(tok))
    if len(stack) != 1 or len(stack[0]) != 1 or not isinstance(stack[0][0], list):
        raise CalculatorError("not one procedure")
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
            raise CalculatorError(f"{text[:20]!r} is not a calculator operator") from None
        return _Op(text)
    if not math.isfinite(value):
        raise CalculatorError("not a finite number")
    return value


class _Op(str):
    pass


def _num(x: object) -> float | int:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise CalculatorError("type check")
    return x


def _int(x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise CalculatorError("type check")
    return x


def _cvi(x: object) -> int:
    value = math.trunc(_num(x))
    if not -(2**31) <= value < 2**31:
        raise CalculatorError("range check")
    return value


def _checked(value: float | int) -> float | int:
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("undefined result")
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
        raise CalculatorError("range check")
    shifted = value << shift if shift >= 0 else value >> -shift
    return (shifted + 2**31) % 2**32 - 2**31  # a 32-bit integer, as in PostScript


def _fail(why: str):
    raise CalculatorError(why)


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
                raise CalculatorError(f"{item} without its procedures")
            if not stack or not isinstance(stack[-1], bool):
                raise CalculatorError("type check")
            cond = stack.pop()
            if item == "if":
                if cond:
                    _run(blocks[0], stack)
            else:
                _run(blocks[0] if cond else blocks[1], stack)
        elif item in _BINARY:
            if len(stack) < 2:
                raise CalculatorError("stack underflow")
            b, a = stack.pop(), stack.pop()
            try:
                stack.append(_checked(_BINARY[item](a, b)))
            except (OverflowError, ValueError, ZeroDivisionError) as exc:
                raise CalculatorError(str(exc)) from None
        elif item in _UNARY:
            if not stack:
                raise CalculatorError("stack underflow")
            try:
                stack.append(_checked(_UNARY[item](stack.pop())))
            except (OverflowError, ValueError) as exc:
                raise CalculatorError(str(exc)) from None
        else:
            _stack_op(item, stack)
        if len(stack) > MAX_STACK:
            raise CalculatorError("stack overflow")


def _stack_op(op: str, stack: list) -> None:
    if op == "dup":
        if not stack:
            raise CalculatorError("stack underflow")
        stack.append(stack[-1])
        return
    if op == "pop":
        if not stack:
            raise CalculatorError("stack underflow")
        stack.pop()
        return
    if op == "exch":
        if len(stack) < 2:
            raise CalculatorError("stack underflow")
        stack[-1], stack[-2] = stack[-2], stack[-1]
        return
    if not stack:
        raise CalculatorError("stack underflow")
    if op == "roll":
        j, n = _int(stack.pop()), _int(stack.pop() if stack else _fail("stack underflow"))
        if n < 0 or n > len(stack):
            raise CalculatorError("range check")
        if n:
            part = stack[-n:]
            j %= n
            stack[-n:] = part[-j:] + part[:-j] if j else part
        return
    n = _int(stack.pop())
    if n < 0 or n > len(stack) or (op == "copy" and len(stack) + n > MAX_STACK):
        raise CalculatorError("range check" if n < 0 or n > len(stack) else "stack overflow")
    if op == "copy":
        stack.extend(stack[len(stack) - n:])
    else:  # index
        if n >= len(stack):
            raise CalculatorError("range check")
        stack.append(stack[-1 - n])


def check(code: bytes, domain: Sequence[float]) -> None:
    """Run *code* at *domain*'s lows, highs and middle; raise :class:`CalculatorError`."""
    if not domain or len(domain) % 2:
        raise CalculatorError("no domain")
    proc = _parse(code)
    lows, highs = list(domain[0::2]), list(domain[1::2])
    for inputs in (lows, highs, [(a + b) / 2 for a, b in zip(lows, highs, strict=True)]):
        try:
            _run(proc, list(inputs))
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(str(exc)) from None
