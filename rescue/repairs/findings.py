"""Typed diagnosis results shared by `rescue diagnose`, `rescue fix` and `rescue inspect`."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Optional, Sequence


class Status(str, Enum):
    """What a check saw. A str enum: JSON shows the value, and comparisons with the plain strings
    scripts already use ("found") keep working."""

    FOUND = "found"         # the problem is there
    OK = "ok"               # checked, not there
    UNKNOWN = "unknown"     # could not tell (say why in the evidence)

    def __str__(self) -> str:
        return self.value


FOUND, OK, UNKNOWN = Status.FOUND, Status.OK, Status.UNKNOWN


@dataclass(frozen=True)
class Finding:
    """One cause, checked: found / ok (not found) / unknown (cannot tell), with what was seen."""

    id: str                 # stable key for scripts, e.g. "bcd-badmemory"
    title: str              # what was checked, in words
    status: Status
    evidence: str           # what was seen, e.g. "badmemorylist holds 3 pages: 0x1f3a, ..."
    fixable: bool = False   # the scenario's fix repairs it (possibly with an option)
    fix_option: Optional[str] = None   # the option the fix needs for it, e.g. "--cleanup"
    blocker: bool = False   # an unsafe state that blocks any fix (BitLocker, dirty hive)
    scenario: Optional[str] = None     # the scenario whose check made it (None: a disk-wide state)
    fix_note: Optional[str] = None     # one sentence on what `fix_option` does (and costs)

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "status": self.status.value, "evidence": self.evidence,
                "fixable": self.fixable, "fix_option": self.fix_option, "blocker": self.blocker,
                "scenario": self.scenario, "fix_note": self.fix_note}

    def of(self, scenario: str) -> "Finding":
        return replace(self, scenario=scenario)


def quote(s: str) -> str:
    return shlex.quote(s)


def fix_command(scenario: str, disks: Sequence[str], findings: Sequence[Finding],
                wide_options: Sequence[str] = ()) -> Optional[str]:
    """The exact command that fixes what `findings` found, or None when nothing there is fixable:
    `rescue fix SCENARIO DISK...` with the options the findings ask for (--cleanup, --expand SIZE),
    plus `wide_options`, what a disk-wide state needs before any write (--reset-ntfs-log)."""
    fixable = [f for f in findings if f.status == FOUND and f.fixable]
    if not fixable:
        return None
    opts = sorted({f.fix_option for f in fixable if f.fix_option} | set(wide_options))
    return " ".join(["rescue fix", scenario, *(quote(d) for d in disks), *opts])


@dataclass(frozen=True)
class Diagnosis:
    """Findings of one or more scenarios' checks on one disk set, plus the disk-wide blockers."""

    disks: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    scenarios: tuple[str, ...] = ()     # the scenarios whose checks ran, in registry order

    @property
    def found(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == FOUND)

    @property
    def blockers(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.found if f.blocker)

    @property
    def healthy(self) -> bool:
        return not self.found

    def of_scenario(self, name: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.scenario == name)

    def fix_commands(self) -> list[str]:
        """One exact fixing command per scenario with something fixable, in registry order (empty
        when a blocker stops every fix)."""
        if self.blockers:
            return []
        names = self.scenarios or tuple(dict.fromkeys(f.scenario for f in self.findings if f.scenario))
        cmds = [fix_command(n, self.disks, self.of_scenario(n), self.wide_options()) for n in names]
        return [c for c in cmds if c]

    def wide_options(self) -> tuple[str, ...]:
        """Options every fix needs for a disk-wide state it can get past (a crashed NTFS volume:
        --reset-ntfs-log; a hibernated one: --discard-hibernation)."""
        return tuple(sorted({f.fix_option for f in self.found
                             if f.scenario is None and f.fixable and f.fix_option and not f.blocker}))

    def fix_notes(self) -> list[str]:
        """One sentence for each wide option in the fixing commands: what it does and costs."""
        if not self.fix_commands():
            return []
        return list(dict.fromkeys(f.fix_note for f in self.found
                                  if f.scenario is None and f.fixable and f.fix_note and not f.blocker))

    def fix_command(self) -> Optional[str]:
        cmds = self.fix_commands()
        return " && ".join(cmds) if cmds else None

    def to_json(self) -> dict:
        return {"disks": list(self.disks), "healthy": self.healthy,
                "findings": [f.to_json() for f in self.findings],
                "blockers": [f.id for f in self.blockers],
                "fix_command": self.fix_command(), "fix_commands": self.fix_commands(),
                "fix_notes": self.fix_notes()}
