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

    def fix_command(self, extra: str = "") -> str | None:
        """The exact command that fixes what was found (None when nothing to fix or blocked)."""
        fixable = [f for f in self.found if f.fixable]
        if not fixable or self.blockers:
            return None
        opts = sorted({f.fix_option for f in fixable if f.fix_option})
        disks = " ".join(_quote(d) for d in self.disks)
        return " ".join(x for x in ["rescue fix no-memory", disks, *opts, extra] if x)

    def to_json(self) -> dict:
        return {"disks": list(self.disks), "healthy": self.healthy,
                "findings": [f.to_json() for f in self.findings],
                "blockers": [f.id for f in self.blockers],
                "fix_command": self.fix_command()}


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
