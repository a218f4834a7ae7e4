"""Typed diagnosis results shared by `rescue diagnose`, `rescue fix` and `rescue inspect`."""

from __future__ import annotations

from dataclasses import dataclass, field

FOUND, OK, UNKNOWN = "found", "ok", "unknown"


@dataclass(frozen=True)
class Finding:
    """One cause the article names, checked: found / ok (not found) / unknown (cannot tell)."""

    id: str                 # stable key for scripts, e.g. "bcd-badmemory"
    title: str              # what was checked, in words
    status: str             # FOUND | OK | UNKNOWN
    evidence: str           # what was seen, e.g. "badmemorylist holds 3 pages: 0x1f3a, ..."
    fixable: bool = False   # `rescue fix no-memory` repairs it (possibly with an option)
    fix_option: str | None = None   # the option the fix needs for it, e.g. "--cleanup"
    blocker: bool = False   # an unsafe state that blocks any fix (BitLocker, hibernation, dirty hive)

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "status": self.status, "evidence": self.evidence,
                "fixable": self.fixable, "fix_option": self.fix_option, "blocker": self.blocker}


@dataclass(frozen=True)
class Diagnosis:
    disks: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def found(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == FOUND)

    @property
    def blockers(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.found if f.blocker)

    @property
    def healthy(self) -> bool:
        return not self.found

    def fix_commands(self) -> list[str]:
        """The exact command that fixes what was found (empty when nothing to fix or blocked): one
        `rescue fix no-memory` run with the options the findings ask for (--cleanup, --expand SIZE).
        A list, so a future finding that needs its own command has a place."""
        fixable = [f for f in self.found if f.fixable]
        if not fixable or self.blockers:
            return []
        disks = " ".join(_quote(d) for d in self.disks)
        opts = sorted({f.fix_option for f in fixable if f.fix_option})
        return [" ".join(["rescue fix no-memory", disks, *opts])]

    def fix_command(self) -> str | None:
        cmds = self.fix_commands()
        return " && ".join(cmds) if cmds else None

    def to_json(self) -> dict:
        return {"disks": list(self.disks), "healthy": self.healthy,
                "findings": [f.to_json() for f in self.findings],
                "blockers": [f.id for f in self.blockers],
                "fix_command": self.fix_command(), "fix_commands": self.fix_commands()}


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
