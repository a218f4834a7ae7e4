"""Boot the last known good control set, where Windows keeps one.

Sources: Microsoft, "How to start Azure Windows VM with Last Known Good Configuration" (load the
offline SYSTEM hive, point Select at the last known good control set) and Azure/repair-script-library
src/windows/win-LKGC.ps1 (SYSTEM backed up first; Select Current/Default/Failed/LastKnownGood
rewritten). Select (REG_DWORDs): Current = the ControlSet00N Windows boots, Default = the one it
boots next time, LastKnownGood = the copy of the last set that booted and logged on, Failed = the
set abandoned by the last fallback. Windows 8 / Server 2012 and later do not keep a separate last
known good set by default: LastKnownGood then equals Current, and there is nothing to fall back to.

  select-current-missing  Select is missing or names a ControlSet00N that does not exist (Windows
                          cannot load its configuration at all). Fix: Current and Default point at
                          the last known good set, else Default, else the lowest existing set.
  lkg-boot                asked for with `rescue fix last-known-good`: Current and Default become
                          LastKnownGood, Failed the set that was current (as Windows records a
                          fallback). In a triage it only says whether a last known good set exists.
Only Select changes; both control sets are kept as they are, so `rescue undo` (or pointing Select
back) returns to the previous set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from rescue.errors import RescueError
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.sources import SourceError, unreadable
from rescue.safety.plan import Step

SCENARIO_NAME = "last-known-good"


@dataclass(frozen=True)
class SelectState:
    current: Optional[int]
    default: Optional[int]
    failed: Optional[int]
    last_known_good: Optional[int]
    sets: Tuple[int, ...]               # ControlSet00N keys that exist

    @property
    def lkg(self) -> Optional[int]:
        """The last known good set when it is a different, existing set (None: Windows keeps none)."""
        n = self.last_known_good
        return n if n and n != self.current and n in self.sets else None

    def fallback(self) -> Optional[int]:
        for n in (self.lkg, self.last_known_good, self.default):
            if n in self.sets:
                return n
        return self.sets[0] if self.sets else None


def cs(n: Optional[int]) -> str:
    return f"ControlSet{n:03d}" if n is not None else "none"


def select_state(ctx: RepairContext) -> SelectState:
    def load() -> SelectState:
        import re

        from rescue.hive import Hive

        path = sources.hive_path(ctx, "SYSTEM")
        try:
            hive = Hive(path)
            try:
                vals = {n: hive.get_value("Select", n) for n in ("Current", "Default", "Failed", "LastKnownGood")}
                sets = sorted(int(m.group(1)) for k in hive.child_names("")
                              if (m := re.fullmatch(r"ControlSet(\d{3})", k, re.I)))
            finally:
                hive.close()
        except RescueError as exc:
            raise SourceError(unreadable("SYSTEM", exc), exc) from None
        ints = {k: v if isinstance(v, int) else None for k, v in vals.items()}
        return SelectState(ints["Current"], ints["Default"], ints["Failed"], ints["LastKnownGood"], tuple(sets))

    return ctx.memo(f"select:{sources.discard_logs(ctx)}", load)


def _select_line(s: SelectState) -> str:
    return (f"Select Current {s.current}, Default {s.default}, Failed {s.failed}, LastKnownGood {s.last_known_good}; "
            f"control sets {', '.join(cs(n) for n in s.sets) or 'none'}")


# --- select-current-missing --------------------------------------------------------------------------
def _check_current(ctx: RepairContext) -> Finding:
    s = select_state(ctx)
    title = "Select\\Current names an existing control set"
    if s.current in s.sets:
        return Finding("select-current-missing", title, OK, f"Windows boots {cs(s.current)} (Select\\Current)")
    target = s.fallback()
    tail = f": point it at {cs(target)}" if target else ": no control set to point it at"
    return Finding("select-current-missing", title, FOUND,
                   f"Select\\Current is {s.current if s.current is not None else 'missing'}, but there is no "
                   f"{cs(s.current) if s.current is not None else 'Select value'} ({_select_line(s)}){tail}",
                   fixable=target is not None)


def _set_select(ctx: RepairContext, values, reason: str):
    from rescue.hive import Hive
    from rescue.hive import values as V
    from rescue.safety.plan import SetValue

    ref = sources.hive_ref(ctx, "SYSTEM")
    hive = Hive(sources.hive_path(ctx, "SYSTEM"))
    try:
        out = []
        for name, n in values:
            before = hive.get("Select", name)
            data = V.encode_dword(n)
            if before is not None and before.type == V.REG_DWORD and before.data[:4] == data:
                continue
            out.append(SetValue(ref, "Select", name, V.REG_DWORD, data, before.type if before else None,
                                before.data if before else None, reason))
        return tuple(out)
    finally:
        hive.close()


def _plan_current(ctx: RepairContext, finding: Finding):
    s = select_state(ctx)
    if s.current in s.sets:
        return None
    target = s.fallback()
    if target is None:
        return Step("select.current", "Point Select at an existing control set",
                    skipped="SYSTEM has no ControlSet00N key at all: restore the hive (rescue fix registry)")
    return Step("select.current", f"Boot {cs(target)}",
                _set_select(ctx, (("Current", target), ("Default", target)),
                            f"Select\\Current names a control set that does not exist; {cs(target)} does"))


# --- lkg-boot -------------------------------------------------------------------------------------------
NONE_KEPT = ("Windows keeps no last known good control set apart from the current one (Windows 8 / Server 2012 "
             "and later do not keep one by default)")


def _check_lkg(ctx: RepairContext) -> Finding:
    s = select_state(ctx)
    title = "boot the last known good control set"
    if s.current not in s.sets:
        return Finding("lkg-boot", title, OK, "see select-current-missing")
    if s.lkg is None:
        return Finding("lkg-boot", title, OK,
                       f"{NONE_KEPT}: Select\\LastKnownGood {s.last_known_good}, Current {s.current}")
    if ctx.fixing == SCENARIO_NAME:
        return Finding("lkg-boot", title, FOUND,
                       f"Windows boots {cs(s.current)} (Select\\Current); {cs(s.lkg)} is the last known good: boot it",
                       fixable=True)
    return Finding("lkg-boot", title, OK,
                   f"{cs(s.lkg)} is the last known good (Select\\LastKnownGood), Windows boots {cs(s.current)}: "
                   f"`rescue fix {SCENARIO_NAME}` switches to it")


def _plan_lkg(ctx: RepairContext, finding: Finding):
    s = select_state(ctx)
    if s.current not in s.sets:
        return None
    if s.lkg is None:
        return Step("select.last-known-good", "Boot the last known good control set",
                    skipped=f"{NONE_KEPT}; repair the current set instead (rescue diagnose lists what is wrong) or "
                            "restore the disk from a backup")
    return Step("select.last-known-good", f"Boot {cs(s.lkg)}, the last known good",
                _set_select(ctx, (("Current", s.lkg), ("Default", s.lkg), ("Failed", s.current)),
                            f"boot the last known good {cs(s.lkg)} instead of {cs(s.current)}"),
                notes=(f"{cs(s.current)} is kept as it is (Select\\Failed {s.current}); `rescue undo` returns to it",))


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return (
        "Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore` when you used "
        "`az vm repair create`).",
        "Start the VM. Drivers and settings changed since the last known good set was saved are not in effect; "
        "reapply what is still needed once it boots.",
    )


SCENARIO = register(Scenario(
    name=SCENARIO_NAME,
    aliases=("lkgc", "last-known-good-configuration"),
    summary="Boot the last known good control set (Select), where Windows keeps one",
    title="Boot the last known good control set",
    source="Microsoft: How to start Azure Windows VM with Last Known Good Configuration; repair-script-library "
           "win-LKGC.ps1",
    checks=(
        Check("select-current-missing", "Select\\Current names an existing control set", _check_current,
              _plan_current),
        Check("lkg-boot", "boot the last known good control set", _check_lkg, _plan_lkg),
    ),
    next_steps=next_steps,
))
