"""Workflow templates: ``workflows/*.toml`` loaded into frozen dataclasses.

A workflow names the signing order, the roles it expects and the identity
provider its signers use.  A ``standard`` workflow always exists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from signflow.core.identity import IdentityPolicy
from signflow.errors import ConfigError, InvalidInput


@dataclass(frozen=True)
class Workflow:
    #: The name the round API's ``workflow`` field uses.
    name: str
    #: Title per language.
    title: dict[str, str] = field(default_factory=dict)
    #: ``parallel`` or ``sequential``, unless the round says otherwise.
    order: str = "parallel"
    #: Roles the secretariat is expected to name (informational for now).
    roles: tuple[str, ...] = ()
    #: Registered identity provider (entry point name) the signers use.
    provider: str = "bankid"
    #: How signers are bound to their invitations: ``personal_number``,
    #: ``name`` or ``none`` (:class:`~signflow.core.identity.IdentityPolicy`);
    #: unset: the personal number where the secretariat gave one, else the name.
    identity: str = IdentityPolicy.AUTO.value


STANDARD = Workflow(name="standard", title={"sv": "Justering av protokoll",
                                            "en": "Approval of minutes"},
                    roles=("sekreterare", "justerare", "ordforande"))


def load_workflows(directory: Path) -> dict[str, Workflow]:
    """Every ``*.toml`` in *directory*, plus the built-in ``standard``."""
    found = {STANDARD.name: STANDARD}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            wf = Workflow(
                name=str(raw.get("name") or path.stem),
                title=dict(raw.get("title") or {}),
                order=str(raw.get("order", "parallel")),
                roles=tuple(raw.get("roles") or ()),
                provider=str(raw.get("provider", "bankid")),
                identity=str(raw.get("identity", IdentityPolicy.AUTO.value)),
            )
        except (tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
            raise ConfigError(f"workflow {path} is not valid: {exc}") from None
        if wf.order not in ("parallel", "sequential"):
            raise ConfigError(f"workflow {path}: order must be parallel or sequential")
        if wf.identity not in {p.value for p in IdentityPolicy} - {IdentityPolicy.AUTO.value} \
                and "identity" in raw:
            raise ConfigError(f"workflow {path}: identity must be personal_number, name or none")
        found[wf.name] = wf
    return found


def workflow_named(workflows: dict[str, Workflow], name: str) -> Workflow:
    try:
        return workflows[name]
    except KeyError:
        raise InvalidInput(f"no workflow named {name!r}; known: {', '.join(sorted(workflows))}",
                           field="workflow") from None
