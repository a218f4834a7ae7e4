"""Scenarios and their checks: the plugin interface every repair is written against.

A *check* looks at one cause of a boot failure (`check(ctx) -> Finding`) and, when asked, plans
the edit that removes it (`plan(ctx, finding) -> Step | tuple[Step, ...] | None`). A *scenario* is
one documented boot failure (a stop code, a symptom): its checks in order, the options its fix
takes, and what the operator does once the disk is repaired. Each scenario lives in one module of
`rescue.repairs.scenarios` and registers itself when imported (`register`); the registry finds the
modules itself, so adding a scenario touches no central list (the pattern of regipy's plugins and
dissect.target's plugin registration; one conversion interface per guest, as in virt-v2v).

Every check must have validation cases (tests/validation): a sample with the problem and one
without, the exact finding and the exact planned change. A meta-test fails when one is missing.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Union

from rescue.errors import UsageError
from rescue.repairs.findings import Finding
from rescue.safety.plan import Step

if TYPE_CHECKING:
    from rescue.repairs.context import RepairContext

PlanResult = Union[Step, Tuple[Step, ...], None]


class OptionKind(Enum):
    FLAG = "flag"       # --cleanup: on when given
    TEXT = "text"       # --dump-file F:\MEMORY.DMP
    SIZE = "size"       # --ram 16G: parsed to bytes
    INT = "int"         # --timeout 5


@dataclass(frozen=True)
class Option:
    """One option of a scenario's fix (and of `diagnose`, when `diagnose` is True)."""

    name: str                   # the attribute checks read: ctx.options.<name>
    flag: str                   # as typed: "--ram"
    help: str
    kind: OptionKind = OptionKind.TEXT
    default: Any = None
    metavar: Optional[str] = None
    diagnose: bool = True       # also an option of `rescue diagnose` (it changes what checks see)

    def parse(self, raw: Any) -> Any:
        """The typed value of what was given on the command line (None/False: not given)."""
        if raw is None or self.kind is OptionKind.FLAG:
            return raw if raw is not None else self.default
        if self.kind is OptionKind.SIZE:
            from rescue.units import parse_size

            try:
                return parse_size(str(raw))
            except ValueError as exc:
                raise UsageError(f"{self.flag} {raw}: {exc}") from None
        if self.kind is OptionKind.INT:
            try:
                return int(raw)
            except ValueError:
                raise UsageError(f"{self.flag} wants a whole number, not {raw!r}.") from None
        return str(raw)


class OptionValues:
    """The parsed option values a check reads as attributes (`ctx.options.ram_bytes`). Unknown
    names are a programming error (a check reading an option its scenario does not declare)."""

    def __init__(self, values: Optional[Dict[str, Any]] = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no option {name!r} (declare it in the scenario's options)") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("options are read-only")

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"OptionValues({self._values!r})"


@dataclass(frozen=True)
class Check:
    """One cause, checked read-only, and the plan that removes it."""

    id: str                                             # stable finding id, e.g. "bcd-badmemory"
    title: str                                          # what is checked, in words
    check: Callable[["RepairContext"], Finding]
    plan: Optional[Callable[["RepairContext", Finding], PlanResult]] = None
    options: Tuple[str, ...] = ()                       # names of the options it reads

    def run(self, ctx: "RepairContext") -> Finding:
        finding = self.check(ctx)
        if finding.id != self.id:
            raise ValueError(f"check {self.id} returned a finding with id {finding.id}")
        return finding

    def planned(self, ctx: "RepairContext", finding: Finding) -> Tuple[Step, ...]:
        if self.plan is None:
            return ()
        steps = self.plan(ctx, finding)
        if steps is None:
            return ()
        return (steps,) if isinstance(steps, Step) else tuple(steps)


@dataclass(frozen=True)
class Scenario:
    """One documented boot failure and its offline fix."""

    name: str                                 # `rescue fix NAME`
    summary: str                              # one line for `rescue scenarios`
    title: str                                # the plan's title, e.g. "Fix stop error 0xC0000017 ..."
    checks: Tuple[Check, ...]
    aliases: Tuple[str, ...] = ()             # stop codes ("0xC0000017") and symptom words
    options: Tuple[Option, ...] = ()
    source: str = ""                          # the Microsoft article (or script) the fix follows
    can_expand: bool = False                  # takes --expand SIZE|fill (grow the OS disk first)
    next_steps: Callable[["RepairContext", bool], Sequence[str]] = field(
        default=lambda ctx, grown: (), compare=False)

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"name": self.name, "aliases": list(self.aliases), "summary": self.summary,
                "source": self.source, "checks": [{"id": c.id, "title": c.title} for c in self.checks],
                "options": [o.flag for o in self.options] + (["--expand"] if self.can_expand else [])}


# --- the registry ------------------------------------------------------------------------------
_REGISTRY: Dict[str, Scenario] = {}
_LOADED = False
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def register(scenario: Scenario) -> Scenario:
    """Add a scenario (called at the bottom of its module). Names, aliases and check ids are
    unique across the registry: a command or a finding id must mean one thing."""
    if not _NAME.match(scenario.name):
        raise ValueError(f"scenario name {scenario.name!r}: lower-case words joined by '-'")
    taken_names = {}
    taken_checks = {}
    for s in _REGISTRY.values():
        if s.name == scenario.name:
            continue
        for n in (s.name, *s.aliases):
            taken_names[n.lower()] = s.name
        for c in s.checks:
            taken_checks[c.id] = s.name
    for n in (scenario.name, *scenario.aliases):
        if n.lower() in taken_names:
            raise ValueError(f"{n!r} of scenario {scenario.name} is already used by {taken_names[n.lower()]}")
    for c in scenario.checks:
        if c.id in taken_checks:
            raise ValueError(f"check {c.id} of {scenario.name} is already a check of {taken_checks[c.id]}")
        unknown = set(c.options) - {o.name for o in scenario.options} - {"expand"}
        if unknown:
            raise ValueError(f"check {c.id} reads undeclared option(s) {sorted(unknown)}")
    _REGISTRY[scenario.name] = scenario
    return scenario


def unregister(name: str) -> None:
    """Remove a scenario (tests that register a throw-away one clean up with this)."""
    _REGISTRY.pop(name, None)


def load_all() -> None:
    """Import every module of rescue.repairs.scenarios once: each registers its scenario."""
    global _LOADED
    if _LOADED:
        return
    from rescue.repairs import scenarios as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    _LOADED = True


def scenarios() -> Tuple[Scenario, ...]:
    """Every registered scenario: the built-in ones in module order, then any registered later."""
    load_all()
    return tuple(_REGISTRY.values())


def get(name: str) -> Scenario:
    """A scenario by name or alias (aliases such as stop codes are matched case-insensitively)."""
    load_all()
    key = name.lower()
    for s in _REGISTRY.values():
        if key == s.name or key in (a.lower() for a in s.aliases):
            return s
    known = ", ".join(s.name for s in _REGISTRY.values())
    raise UsageError(f"No scenario is called {name!r}.", hint=f"Known: {known} (`rescue scenarios` lists them).")


def all_checks() -> Tuple[Tuple[Scenario, Check], ...]:
    return tuple((s, c) for s in scenarios() for c in s.checks)
