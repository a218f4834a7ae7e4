"""Crash dump and NMI settings (SYSTEM ...\\Control\\CrashControl), the article's steps 5b and 5c.

Step 5c runs, for ControlSet001 and ControlSet002:
  REG ADD ...\\Control\\CrashControl /v CrashDumpEnabled /t REG_DWORD /d 1 /f
  REG ADD ...\\Control\\CrashControl /v DumpFile /t REG_EXPAND_SZ /d "%SystemRoot%\\MEMORY.DMP" /f
  REG ADD ...\\Control\\CrashControl /v NMICrashDump /t REG_DWORD /d 1 /f
We set the same values, with the same types, in every control set present. A set that does not
exist is not created (REG ADD would create a stray `ControlSet002\\Control\\CrashControl` in a hive
with only ControlSet001; Windows never boots from such a fragment, so it would only add confusion).
CrashDumpEnabled levels (Microsoft, "Overview of memory dump file options for Windows"): 0 none,
1 complete, 2 kernel, 3 small (256 KB), 7 automatic. NMICrashDump=1 makes an NMI (Azure serial
console "Send NMI") bug-check the VM and write the dump.
Step 5b: a complete dump is as large as RAM, so the dump file's volume needs at least that much
free space; otherwise put DumpFile on a data disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rescue.units import format_bytes, parse_size  # noqa: F401  (parse_size: --ram)
from rescue.errors import RescueError, UsageError
from rescue.hive import values as V
from rescue.registry.paths import control_set_key, control_sets, current_control_set
from rescue.safety.plan import FileRef, SetValue, Step

if TYPE_CHECKING:
    from pathlib import Path
    from rescue.hive.hive import Hive
    from rescue.layout import WindowsLayout

CRASH = "Control\\CrashControl"
DEFAULT_DUMP_FILE = "%SystemRoot%\\MEMORY.DMP"
LEVELS = {0: "none", 1: "complete memory dump", 2: "kernel memory dump", 3: "small memory dump (256 KB)",
          7: "automatic memory dump"}


@dataclass(frozen=True)
class CrashDumpSettings:
    control_set: int
    key: str
    exists: bool
    crash_dump_enabled: int | None = None
    crash_dump_enabled_type: int | None = None
    dump_file: str | None = None
    dump_file_type: int | None = None
    nmi_crash_dump: int | None = None
    nmi_crash_dump_type: int | None = None
    auto_reboot: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.crash_dump_enabled)

    @property
    def level(self) -> str:
        if self.crash_dump_enabled is None:
            return "not set (no dump)"
        return LEVELS.get(self.crash_dump_enabled, f"level {self.crash_dump_enabled}")

    @property
    def nmi(self) -> bool:
        return self.nmi_crash_dump == 1

    def matches_article(self, dump_file: str = DEFAULT_DUMP_FILE) -> bool:
        return (self.crash_dump_enabled == 1 and self.crash_dump_enabled_type == V.REG_DWORD
                and self.dump_file == dump_file and self.dump_file_type == V.REG_EXPAND_SZ
                and self.nmi_crash_dump == 1 and self.nmi_crash_dump_type == V.REG_DWORD)

    def to_json(self) -> dict:
        def tn(t):
            return None if t is None else V.type_name(t)

        return {"control_set": self.control_set, "key": self.key, "exists": self.exists,
                "crash_dump_enabled": self.crash_dump_enabled, "crash_dump_enabled_type": tn(self.crash_dump_enabled_type),
                "level": self.level, "dump_file": self.dump_file, "dump_file_type": tn(self.dump_file_type),
                "nmi_crash_dump": self.nmi_crash_dump, "nmi_crash_dump_type": tn(self.nmi_crash_dump_type),
                "auto_reboot": self.auto_reboot}


@dataclass(frozen=True)
class CrashDumpReport:
    current: int | None
    sets: tuple[CrashDumpSettings, ...]
    notes: tuple[str, ...] = ()

    @property
    def current_settings(self) -> CrashDumpSettings | None:
        return next((s for s in self.sets if s.control_set == self.current), None)

    def to_json(self) -> dict:
        return {"current_control_set": self.current, "control_sets": [s.to_json() for s in self.sets],
                "notes": list(self.notes)}


def _open(system: Hive | str | Path):
    """An open `Hive` as is; a host path opened read-only."""
    from rescue.hive import Hive

    return system if isinstance(system, Hive) else Hive(system)


def _read(hive: Hive, n: int) -> CrashDumpSettings:
    key = f"{control_set_key(n)}\\{CRASH}"
    if hive.find(key) is None:
        return CrashDumpSettings(n, key, False)

    def num(name):
        v = hive.get(key, name)
        return (v.value if v is not None and isinstance(v.value, int) else None), (v.type if v else None)

    cde, cde_t = num("CrashDumpEnabled")
    nmi, nmi_t = num("NMICrashDump")
    df = hive.get(key, "DumpFile")
    return CrashDumpSettings(
        n, key, True, cde, cde_t,
        dump_file=V.decode_sz(df.data) if df is not None and df.type in (V.REG_SZ, V.REG_EXPAND_SZ) else None,
        dump_file_type=df.type if df else None, nmi_crash_dump=nmi, nmi_crash_dump_type=nmi_t,
        auto_reboot=num("AutoReboot")[0])


def read_crashdump(system: Hive | str | Path) -> CrashDumpReport:
    """CrashControl settings of every control set of a SYSTEM hive (host path or open Hive)."""
    hive = _open(system)
    try:
        current, notes = current_control_set(hive), ()  # type: tuple[int | None, tuple[str, ...]]
    except RescueError as exc:
        current, notes = None, (str(exc),)
    return CrashDumpReport(current, tuple(_read(hive, n) for n in control_sets(hive)), notes)


def validate_dump_file(text: str) -> str:
    """--dump-file: an absolute Windows path ("F:\\MEMORY.DMP") or one under %SystemRoot%."""
    t = text.strip().replace("/", "\\")
    if re.fullmatch(r"(?i)%SystemRoot%(\\[^\\:*?\"<>|]+)+", t) or re.fullmatch(r"[A-Za-z]:(\\[^\\:*?\"<>|]+)+", t):
        return t[0].upper() + t[1:] if t[1:2] == ":" else t
    raise UsageError(f"{text!r} is not a dump file path: give e.g. F:\\MEMORY.DMP or %SystemRoot%\\MEMORY.DMP.")


def plan_crashdump_enable(system: Hive | str | Path, ref: FileRef, *, dump_file: str = DEFAULT_DUMP_FILE) -> Step:
    """CrashDumpEnabled=1 (REG_DWORD), DumpFile (REG_EXPAND_SZ), NMICrashDump=1 (REG_DWORD) in every
    control set present (the article names 001 and 002). Values already exact are left alone."""
    hive = _open(system)
    dump_file = validate_dump_file(dump_file)
    wanted = (("CrashDumpEnabled", V.REG_DWORD, V.encode_dword(1)),
              ("DumpFile", V.REG_EXPAND_SZ, V.encode_sz(dump_file)),
              ("NMICrashDump", V.REG_DWORD, V.encode_dword(1)))
    sets = control_sets(hive)
    notes = [f"{control_set_key(n)} does not exist; not created (the article's REG ADD names it)"
             for n in (1, 2) if n not in sets]
    changes = []
    for n in sets:
        key = f"{control_set_key(n)}\\{CRASH}"
        if hive.find(key) is None:
            notes.append(f"creates {key}")
        for name, t, data in wanted:
            before = hive.get(key, name)
            if before is not None and before.type == t and before.data == data:
                continue
            changes.append(SetValue(file=ref, key=key, name=before.name if before else name, type=t, data=data,
                                    before_type=before.type if before else None,
                                    before_data=before.data if before else None,
                                    reason="crash dump + NMI (article step 5c)"))
    title = f"Crash dumps: complete dump to {dump_file}, NMI crash dump on, in every control set"
    if not changes:
        return Step("registry.crashdump-enable", title, notes=tuple(notes),
                    skipped="CrashDumpEnabled, DumpFile and NMICrashDump are already set in every control set")
    return Step("registry.crashdump-enable", title, changes=tuple(changes), notes=tuple(notes))


# --- step 5b: is there room for the dump? ------------------------------------------------------------


@dataclass(frozen=True)
class DumpSpaceCheck:
    dump_file: str
    drive: str | None                 # "C:" (None: %SystemRoot% with no known letter)
    disk: int | None
    partition: int | None
    free_bytes: int | None
    ram_bytes: int | None
    ram_source: str                   # what the RAM figure is, in words
    fits: bool | None                 # None: RAM or free space unknown
    best_data_volume: tuple[str, int, int, int] | None = None   # (letter or "", disk, partition, free)
    message: str = ""

    def to_json(self) -> dict:
        best = self.best_data_volume
        return {"dump_file": self.dump_file, "drive": self.drive, "disk": self.disk, "partition": self.partition,
                "free_bytes": self.free_bytes, "ram_bytes": self.ram_bytes, "ram_source": self.ram_source,
                "fits": self.fits, "message": self.message,
                "best_data_volume": None if best is None else {"letter": best[0] or None, "disk": best[1],
                                                               "partition": best[2], "free_bytes": best[3]}}


def ram_hint(found_pagefiles: Sequence = ()) -> tuple[int | None, str]:
    """Without --ram: a system-managed page file is sized from RAM, so the largest pagefile.sys found
    is the best offline hint (said so); nothing found -> unknown."""
    sizes = [(f.size, f.letter) for f in found_pagefiles if f.size]
    if not sizes:
        return None, "unknown (no --ram given and no page file to estimate from)"
    size, letter = max(sizes, key=lambda x: x[0])
    return size, (f"assumed {format_bytes(size)} from the size of pagefile.sys on {letter or 'a data volume'} "
                  "(a system-managed page file is sized from RAM); give --ram for an exact check")


def check_dump_space(dump_file: str, layout: WindowsLayout | None, *, ram_bytes: int | None = None,
                     ram_source: str | None = None, found_pagefiles: Sequence = ()) -> DumpSpaceCheck:
    """Free space of the dump file's volume vs the VM's RAM (article step 5b); names the data volume
    with the most free space when it does not fit."""
    if ram_bytes is None:
        ram_bytes, src = ram_hint(found_pagefiles)
    else:
        src = ram_source or "given with --ram"
    vol = None
    drive = None
    if re.match(r"(?i)%SystemRoot%", dump_file):
        root = layout.root if layout is not None else None
        vol = layout.volume(root.disk, root.partition) if layout is not None and root is not None else None
        drive = vol.letter if vol is not None else None
    else:
        drive = dump_file[:2].upper()
        vol = layout.volume_by_letter(drive) if layout is not None else None
    free = vol.free_bytes if vol is not None else None
    fits = None if free is None or ram_bytes is None else free >= ram_bytes
    best = None
    if layout is not None:
        data = [v for v in layout.volumes if v.role == "data" and v.free_bytes is not None
                and (vol is None or (v.disk, v.partition) != (vol.disk, vol.partition))]
        if data:
            b = max(data, key=lambda v: v.free_bytes or 0)
            best = (b.letter or "", b.disk, b.partition, b.free_bytes or 0)
    where = drive or "the Windows volume"
    if vol is None:
        msg = (f"{where} is not on an attached disk: cannot check its free space "
               "(attach the data disk after the OS disk)") if layout is not None else "no disk layout: free space unknown"
    elif fits is None:
        msg = f"{where} has {format_bytes(free)} free; RAM unknown: give --ram 16G (the VM's size) to check the dump fits"
    elif fits:
        msg = f"{where} has {format_bytes(free)} free, enough for a complete dump of {format_bytes(ram_bytes)} RAM"
    else:
        assert free is not None and ram_bytes is not None      # fits is False: both are known
        msg = f"{where} has {format_bytes(free)} free, less than the VM's RAM ({format_bytes(ram_bytes)}): a complete dump will not fit"
        if best is not None and layout is not None:
            letter = best[0]
            target = f"{letter}\\MEMORY.DMP" if letter else "a letter-less data volume"
            msg += (f"; the data volume with the most free space is {letter or '(no letter)'} on "
                    f"{layout.disk_paths[best[1]]} partition {best[2]} ({format_bytes(best[3])} free)"
                    + (f": use --dump-file {target}" if letter and best[3] >= ram_bytes else ""))
        else:
            msg += "; attach a data disk with enough space and use --dump-file X:\\MEMORY.DMP"
    return DumpSpaceCheck(dump_file, drive, vol.disk if vol else None, vol.partition if vol else None, free,
                          ram_bytes, src, fits, best, msg)
