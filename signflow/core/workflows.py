"""Workflow templates: ``workflows/*.toml`` loaded into frozen dataclasses.

A workflow is a list of steps; each step is a set of roles whose signers sign
in parallel, and the steps run in turn (secretary → both justerare → chair).
Per role it bounds how many signers the secretariat names; per workflow it
sets the identity provider and policy, the deadline, the reminder schedule,
the language and what a decline does.  A ``standard`` workflow always exists.

The older form, ``order = "parallel" | "sequential"`` with ``roles``, still
loads: parallel is one step, sequential signs in the order the signers are
given.  A file that cannot work stops start-up with its name, the line and
the problem (:class:`~signflow.errors.ConfigError`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from signflow.core.identity import IdentityPolicy
from signflow.errors import ConfigError, InvalidInput


@dataclass(frozen=True)
class RoleLimit:
    """How many signers of one role a round names."""

    min: int = 1
    max: int = 1


@dataclass(frozen=True)
class Reminders:
    """Reminders to a signer who has not signed: *first_after_days* after the
    invitation, then every *every_days*, *at_most* in all (0: none)."""

    first_after_days: float = 2.0
    every_days: float = 1.0
    at_most: int = 3


NO_REMINDERS = Reminders(at_most=0)


@dataclass(frozen=True)
class Workflow:
    #: The name the round API's ``workflow`` field uses.
    name: str
    #: Title per language.
    title: dict[str, str] = field(default_factory=dict)
    #: ``parallel``, ``sequential`` (in the order given) or ``steps`` (:attr:`steps`).
    order: str = "parallel"
    #: The steps in turn, each the roles that sign in it together (``steps`` order).
    steps: tuple[tuple[str, ...], ...] = ()
    #: Per role, how many signers; a role not named here (outside ``steps``
    #: order) is free.
    limits: Mapping[str, RoleLimit] = field(default_factory=dict)
    #: Roles offered on the new-round form, in order.
    roles: tuple[str, ...] = ()
    #: Registered identity provider (entry point name) the signers use.
    provider: str = "bankid"
    #: How signers are bound to their invitations: ``personal_number``,
    #: ``name`` or ``none`` (:class:`~signflow.core.identity.IdentityPolicy`);
    #: unset: the personal number where the secretariat gave one, else the name.
    identity: str = IdentityPolicy.AUTO.value
    #: Days from the start to the deadline; 0: the service's default.
    deadline_days: int = 0
    reminders: Reminders = NO_REMINDERS
    #: The round's language unless the secretariat chose one; empty: Swedish.
    language: str = ""
    #: ``end`` (the round ends) or ``replace`` (the secretariat may name another).
    on_decline: str = "end"
    #: Who gets the signed protocol: ``secretariat`` and/or ``signers``.
    notify: tuple[str, ...] = ("secretariat", "signers")
    #: Whether completion prepares the notice of justering (*anslag*, KL 8:12);
    #: such rounds need ``body`` and ``meeting_date`` (:mod:`signflow.core.notice`).
    notice: bool = False

    def step_of(self, role: str) -> int:
        """1-based step of *role* in ``steps`` order."""
        for number, roles in enumerate(self.steps, start=1):
            if role in roles:
                return number
        raise KeyError(role)

    def check_signers(self, roles: Sequence[str]) -> None:
        """Raise :class:`InvalidInput` unless *roles* (one per signer) fit this workflow."""
        if self.order == "steps":
            known = {r for step in self.steps for r in step}
            for role in roles:
                if role not in known:
                    raise InvalidInput(
                        f"workflow {self.name!r} has no role {role!r}; its roles: "
                        f"{', '.join(sorted(known))}", code="unknown_role", field="role")
        for role, limit in self.limits.items():
            count = sum(1 for r in roles if r == role)
            if not limit.min <= count <= limit.max:
                wanted = (f"{limit.min}" if limit.min == limit.max
                          else f"{limit.min} to {limit.max}")
                raise InvalidInput(
                    f"workflow {self.name!r} needs {wanted} signer(s) with the role "
                    f"{role!r}, not {count}", code="role_count", field="role")

    def check_notice_facts(self, body: str, meeting_date: date | None, kept_at: str) -> None:
        """Raise :class:`InvalidInput` (naming the fields) unless a round of this
        workflow, which prepares a notice of justering, names its body, its meeting
        date and where the protocol is kept (KL 8 kap. 12 §: the notice says where)."""
        if not self.notice:
            return
        missing = [key for key, value in (("body", body), ("meeting_date", meeting_date),
                                          ("kept_at", kept_at)) if not value]
        if missing:
            raise InvalidInput(
                f"workflow {self.name!r} prepares a notice of justering: give the round's "
                f"{' and '.join(missing)}", code="notice_facts_required", field=missing[0],
                fields_missing=missing)


STANDARD = Workflow(name="standard", title={"sv": "Justering av protokoll",
                                            "en": "Approval of minutes"},
                    roles=("sekreterare", "justerare", "ordforande"))

_ORDERS = ("parallel", "sequential", "steps")
_TOP_KEYS = {"name", "title", "order", "roles", "steps", "limits", "provider", "identity",
             "deadline_days", "reminders", "language", "on_decline", "notify",
             "notice"}


class _Problem(Exception):
    """What is wrong, and where: the setting *key*, in the *step*-th ``[[steps]]``."""

    def __init__(self, key: str, message: str, step: int = 0) -> None:
        super().__init__(message)
        self.key, self.message, self.step = key, message, step


def load_workflows(directory: Path) -> dict[str, Workflow]:
    """Every ``*.toml`` in *directory*, plus the built-in ``standard``."""
    found = {STANDARD.name: STANDARD}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        try:
            wf = _parse(tomllib.loads(text), path.stem)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"workflow {path}: {exc}") from None
        except _Problem as problem:
            raise ConfigError(
                f"workflow {path}, line {_line_of(text, problem.key, problem.step)}: "
                f"{problem.message}"
            ) from None
        if wf.name in found and wf.name != STANDARD.name:
            raise ConfigError(f"workflow {path}: another file already defines {wf.name!r}")
        found[wf.name] = wf
    return found


def _parse(raw: dict[str, Any], stem: str) -> Workflow:
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise _Problem(unknown[0], f"unknown setting {unknown[0]!r}; known: "
                       f"{', '.join(sorted(_TOP_KEYS))}")
    steps, limits = _steps(raw.get("steps"))
    order = _choice(raw, "order", _ORDERS, "steps" if steps else "parallel")
    if order == "steps" and not steps:
        raise _Problem("order", 'order "steps" needs at least one [[steps]] table')
    if steps and order != "steps":
        raise _Problem("order", f'[[steps]] need order "steps" (or no order), not {order!r}')
    roles = tuple(r for step in steps for r in step) if steps else _strings(raw, "roles")
    limits.update(_limits(raw.get("limits"), roles))
    identity = _choice(raw, "identity", tuple(p.value for p in IdentityPolicy),
                       IdentityPolicy.AUTO.value)
    return Workflow(
        name=_string(raw, "name", stem), title=_title(raw.get("title")), order=order,
        steps=steps, limits=limits, roles=roles,
        provider=_string(raw, "provider", "bankid"), identity=identity,
        deadline_days=_number(raw, "deadline_days", 0, int, 0, 365),
        reminders=_reminders(raw.get("reminders")),
        language=_choice(raw, "language", ("sv", "en", ""), ""),
        on_decline=_choice(raw, "on_decline", ("end", "replace"), "end"),
        notify=_subset(raw, "notify", ("secretariat", "signers"), ("secretariat", "signers")),
        notice=_flag(raw, "notice", False),
    )


def _steps(value: object) -> tuple[tuple[tuple[str, ...], ...], dict[str, RoleLimit]]:
    if value is None:
        return (), {}
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise _Problem("steps", "steps must be [[steps]] tables, each with roles = [...]")
    steps: list[tuple[str, ...]] = []
    limits: dict[str, RoleLimit] = {}
    for number, step in enumerate(value, start=1):
        extra = sorted(set(step) - {"roles", "min", "max"})
        if extra:
            raise _Problem(extra[0], f"step {number}: unknown setting {extra[0]!r}", number)
        roles = step.get("roles")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not roles or not all(
                isinstance(r, str) and re.fullmatch(r"[a-z_]{1,50}", r) for r in roles):
            raise _Problem("roles", f"step {number}: roles must be a list of role names "
                           "(a-z and _)", number)
        for role in roles:
            if role in limits:
                raise _Problem("roles", f"step {number}: the role {role!r} is in two steps",
                               number)
            try:
                low = _number(step, "min", 1, int, 0, 50)
                high = _number(step, "max", max(1, low), int, 1, 50)
            except _Problem as problem:
                raise _Problem(problem.key, f"step {number}: {problem.message}", number) from None
            if low > high:
                raise _Problem("min", f"step {number}: min ({low}) is above max ({high})",
                               number)
            limits[role] = RoleLimit(low, high)
        steps.append(tuple(roles))
    return tuple(steps), limits


def _limits(value: object, roles: tuple[str, ...]) -> dict[str, RoleLimit]:
    """``[limits.<role>]`` tables: min and max for one role, over its step's."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise _Problem("limits", "limits must be tables: [limits.<role>] with min and max")
    found = {}
    for role, table in value.items():
        if role not in roles:
            raise _Problem("limits", f"limits: {role!r} is not one of the roles "
                           f"({', '.join(roles)})")
        extra = sorted(set(table) - {"min", "max"})
        if extra:
            raise _Problem(extra[0], f"limits.{role}: unknown setting {extra[0]!r}")
        low = _number(table, "min", 1, int, 0, 50)
        high = _number(table, "max", max(1, low), int, 1, 50)
        if low > high:
            raise _Problem("limits", f"limits.{role}: min ({low}) is above max ({high})")
        found[role] = RoleLimit(low, high)
    return found


def _reminders(value: object) -> Reminders:
    if value is None:
        return NO_REMINDERS
    if not isinstance(value, dict):
        raise _Problem("reminders", "reminders must be a table: first_after_days, "
                       "every_days, at_most")
    extra = sorted(set(value) - {"first_after_days", "every_days", "at_most"})
    if extra:
        raise _Problem(extra[0], f"reminders: unknown setting {extra[0]!r}")
    return Reminders(
        first_after_days=_number(value, "first_after_days", 2.0, float, 0.01, 60),
        every_days=_number(value, "every_days", 1.0, float, 0.01, 60),
        at_most=_number(value, "at_most", 3, int, 0, 20))


def _number(raw: Mapping[str, Any], key: str, default, kind: type, low: float, high: float):
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not isinstance(value, int)):
        raise _Problem(key, f"{key} must be a{'n integer' if kind is int else ' number'}")
    if not low <= value <= high:
        raise _Problem(key, f"{key} must be between {low:g} and {high:g}, not {value}")
    return kind(value)


def _flag(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise _Problem(key, f"{key} must be true or false, not {value!r}")
    return value


def _string(raw: Mapping[str, Any], key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip() and default:
        raise _Problem(key, f"{key} must be a text")
    return value


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Problem(key, f"{key} must be a list of texts")
    return tuple(value)


def _choice(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed if a)
        raise _Problem(key, f"{key} must be one of {shown}, not {value!r}")
    return str(value)


def _subset(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...],
            default: tuple[str, ...]) -> tuple[str, ...]:
    value = tuple(_strings(raw, key)) if key in raw else default
    wrong = [v for v in value if v not in allowed]
    if wrong:
        raise _Problem(key, f"{key}: {wrong[0]!r} is not one of {', '.join(allowed)}")
    return value


def _title(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Problem("title", "title must be a table of texts per language: "
                       "{ sv = \"…\", en = \"…\" }")
    return dict(value)


def _line_of(text: str, key: str, step: int = 0) -> int:
    """The line where *key* is set or its table starts, within the *step*-th
    ``[[steps]]`` table if given (else the first such line); 1 if none is found."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if step:
        headers = [i for i, line in enumerate(lines) if re.match(r"\s*\[\[\s*steps\s*\]\]", line)]
        if len(headers) >= step:
            start = headers[step - 1]
            end = next((i for i in range(start + 1, len(lines))
                        if re.match(r"\s*\[", lines[i])), len(lines))
    pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*\]\]?|{re.escape(key)}\s*=)")
    for number in range(start, end):
        if pattern.search(lines[number]):
            return number + 1
    return start + 1


def workflow_named(workflows: Mapping[str, Workflow], name: str) -> Workflow:
    try:
        return workflows[name]
    except KeyError:
        raise InvalidInput(f"no workflow named {name!r}; known: {', '.join(sorted(workflows))}",
                           field="workflow") from None
