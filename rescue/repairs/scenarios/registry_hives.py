"""Corrupt registry hives: 0xC000014C, 0xC0000225 (cause 3), 0x74 BAD_SYSTEM_CONFIG_INFO.

Sources: Microsoft, "Troubleshoot Windows stop error 0x74 BAD_SYSTEM_CONFIG_INFO" and
"Troubleshoot boot error 0xC000014C / the system registry file is missing or contains errors"
(Azure VMs: back up \\Windows\\System32\\config, check the hive loads, restore from
config\\RegBack when that copy is good), and Azure/repair-script-library
src/windows/win-fix-registry-corruption.ps1 (every hive checked: SYSTEM, SOFTWARE, SAM, SECURITY,
DEFAULT, COMPONENTS; missing, 0 bytes, no 'regf', not loadable; a dirty hive whose logs replay is
healthy; RegBack used only when its copy loads, and never for a healthy hive, since it is older;
Windows 10 1803 and later leave RegBack empty unless EnablePeriodicBackup=1).

  hive-corrupt   each hive: present, non-empty, signature, base block checksum, hive bins chain,
                 hivex opens it, after replaying pending .LOG1/.LOG2 (rescue.safety.hivecheck).
                 Fix: the broken hive's file replaced by config\\RegBack\\NAME when that copy is
                 non-empty and passes the same checks; the broken file (and its logs, emptied so
                 Windows cannot replay the broken hive's log entries over the restored one) are
                 kept in the backup. With no usable RegBack copy it says so, and what to do instead.
rescue does not repair hive cells in place (Windows' chkreg is not available on Linux).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from rescue.errors import RescueError
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.fileref import FileRef
from rescue.safety.plan import Step, WriteFile

HIVES = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT", "COMPONENTS")
CONFIG = "\\Windows\\System32\\config"
REGBACK_EMPTY = ("Windows 10 1803 / Server 2019 and later leave RegBack empty unless "
                 "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Configuration Manager "
                 "EnablePeriodicBackup=1 is set")
INSTEAD = ("restore the OS disk from a backup or snapshot (Azure Backup, a disk snapshot), or copy this hive "
           "from a System Restore point or volume shadow copy with a Windows repair VM")


@dataclass(frozen=True)
class RegBackCopy:
    ref: FileRef
    usable: bool
    why: str                        # what was seen ("28,672 bytes, consistent", "empty (0 bytes)")


@dataclass(frozen=True)
class HiveVerdict:
    name: str
    ref: FileRef
    problem: Optional[str]          # None: healthy
    note: Optional[str] = None      # healthy but worth saying (logs replayed)
    regback: Optional[RegBackCopy] = None


def _ref(ctx: RepairContext, name: str) -> Optional[FileRef]:
    given = ctx.known(f"hiveref:{name}")
    if given is not None:
        return given
    if not ctx.on_disk:
        return None
    root = ctx.target.windows_root()
    return FileRef(f"{CONFIG}\\{name}", root.disk, root.partition)


def _inspect(ctx: RepairContext, name: str, ref: FileRef) -> HiveVerdict:
    from rescue.hive.consistency import check_hive_file
    from rescue.safety.hivecheck import assess

    target = ctx.target
    if not target.exists(ref):
        return HiveVerdict(name, ref, "the file is missing")
    if target.size(ref) == 0:
        return HiveVerdict(name, ref, "the file is empty (0 bytes)")
    try:
        state = assess(target, ref, discard_hive_logs=False)
    except RescueError as exc:
        return HiveVerdict(name, ref, exc.message.rstrip("."))
    note = None
    if state.verdict == "replayed":
        note = f"{name} was dirty; its logs replay cleanly"
        result = check_hive_file(Path(state.base))
    elif state.verdict == "clean":
        result = check_hive_file(Path(state.original))
    elif not state.header.checksum_ok:
        return HiveVerdict(name, ref, "the base block checksum is wrong and no transaction log repairs it")
    else:
        note = f"{name} is dirty and its logs cannot be replayed ({state.problem})"
        result = check_hive_file(Path(state.original))
    return HiveVerdict(name, ref, None if result.ok else result.problem, note if result.ok else None)


def _regback(ctx: RepairContext, name: str) -> RegBackCopy:
    from rescue.hive.consistency import check_hive_file

    ref = _ref(ctx, f"RegBack\\{name}")
    if ref is None or not ctx.target.exists(ref):
        return RegBackCopy(ref or FileRef(f"{CONFIG}\\RegBack\\{name}"), False, "no RegBack copy")
    size = ctx.target.size(ref)
    if size == 0:
        return RegBackCopy(ref, False, f"RegBack\\{name} is empty (0 bytes): {REGBACK_EMPTY}")
    result = check_hive_file(Path(ctx.target.local_copy(ref)))
    if not result.ok:
        return RegBackCopy(ref, False, f"RegBack\\{name} is damaged too ({result.problem})")
    return RegBackCopy(ref, True, f"RegBack\\{name} ({size:,} bytes) opens and is consistent")


def verdicts(ctx: RepairContext) -> Tuple[HiveVerdict, ...]:
    def load() -> Tuple[HiveVerdict, ...]:
        refs: List[Tuple[str, FileRef]] = [(n, r) for n in HIVES if (r := _ref(ctx, n)) is not None]
        main = ctx.hive_file
        if not refs and main is not None:    # a bare hive file: check that one
            refs = [(Path(main.path).name, main)]
        out = []
        for name, ref in refs:
            v = _inspect(ctx, name, ref)
            if v.problem is not None and name in HIVES:
                v = HiveVerdict(v.name, v.ref, v.problem, v.note, _regback(ctx, name))
            out.append(v)
        return tuple(out)

    return ctx.memo("registry-hives", load)


def _check(ctx: RepairContext) -> Finding:
    vs = verdicts(ctx)
    broken = [v for v in vs if v.problem]
    title = "every registry hive opens and is consistent"
    if broken:
        parts = [f"{v.name}: {v.problem} ({v.regback.why if v.regback else 'no RegBack copy'})" for v in broken]
        return Finding("hive-corrupt", title, FOUND, "; ".join(parts),
                       fixable=any(v.regback and v.regback.usable for v in broken))
    notes = [v.note for v in vs if v.note]
    return Finding("hive-corrupt", title, OK, f"{', '.join(v.name for v in vs)} open and are consistent"
                   + (f" ({'; '.join(notes)})" if notes else ""))


def _reconciled(data: bytes) -> Tuple[bytes, Optional[str]]:
    """A RegBack copy taken mid-flush carries sequence numbers that differ; with no logs beside it
    Windows would treat it as dirty. Its bins passed the checks, so it is restored as last written:
    both sequence numbers equal, checksum recomputed."""
    from rescue.hive.regf import base_block_checksum

    seq1, seq2 = struct.unpack_from("<II", data, 4)
    if seq1 == seq2:
        return data, None
    fixed = bytearray(data)
    struct.pack_into("<II", fixed, 4, max(seq1, seq2), max(seq1, seq2))
    struct.pack_into("<I", fixed, 0x1FC, base_block_checksum(bytes(fixed[:512])))
    return bytes(fixed), f"the RegBack copy was not reconciled (sequence {seq1}/{seq2}): restored with both set to {max(seq1, seq2)}"


def _plan(ctx: RepairContext, finding: Finding):
    steps: List[Step] = []
    for v in verdicts(ctx):
        if not v.problem:
            continue
        action = f"registry.restore-{v.name.lower()}"
        if not (v.regback and v.regback.usable):
            why = v.regback.why if v.regback else "no RegBack copy"
            steps.append(Step(action, f"Restore {v.name}", skipped=f"{v.name} cannot be restored offline: {why}; {INSTEAD}"))
            continue
        data, note = _reconciled(Path(ctx.target.local_copy(v.regback.ref)).read_bytes())
        changes = [WriteFile(v.ref, data, f"{v.name} is corrupt ({v.problem}); RegBack copy restored")]
        for suffix in (".LOG1", ".LOG2", ".LOG"):
            log = ctx.target.companion(v.ref, suffix)
            if ctx.target.exists(log) and ctx.target.size(log) > 0:
                changes.append(WriteFile(log, b"", f"the broken {v.name}'s log entries must not be replayed over "
                                                   "the restored hive"))
        notes = ["the RegBack copy is older than the broken hive: changes made since it was taken are lost"]
        if note:
            notes.append(note)
        if v.name in ("SAM", "SECURITY"):
            notes.append("local account passwords (and a domain member's machine password) return to their "
                         "state at the time of the RegBack copy")
        steps.append(Step(action, f"Restore {v.name} from config\\RegBack", tuple(changes), notes=tuple(notes)))
    if not steps:
        return Step("registry.restore", "Restore corrupt hives", skipped="every hive opens and is consistent")
    return tuple(steps)


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return (
        "Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore` when you used "
        "`az vm repair create`).",
        "Start the VM. Settings, updates and software installed after the RegBack copy was taken are gone: "
        "check them once it boots.",
        "Turn the periodic RegBack copy back on inside Windows (Configuration Manager EnablePeriodicBackup=1) "
        "so a next incident has a recent copy.",
    )


SCENARIO = register(Scenario(
    name="registry",
    aliases=("0xC000014C", "0x74", "BAD_SYSTEM_CONFIG_INFO", "registry-corrupt"),
    summary="A corrupt registry hive (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, COMPONENTS): restore it from RegBack",
    title="Restore corrupt registry hives (0xC000014C)",
    source="Microsoft: Troubleshoot 0x74 BAD_SYSTEM_CONFIG_INFO / 0xC000014C (Azure VMs); repair-script-library "
           "win-fix-registry-corruption.ps1",
    checks=(Check("hive-corrupt", "every registry hive opens and is consistent", _check, _plan),),
    next_steps=next_steps,
))
