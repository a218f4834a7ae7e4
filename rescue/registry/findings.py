"""What the SYSTEM hive says about the causes of 0xC0000017, as typed findings.

- "page file not on the temporary drive": the page file fills a VHD volume (article step 4).
- "crash dumps disabled" / "NMI crash dump off": the VM cannot leave a dump (step 5c).
- "dump volume smaller than RAM": a complete dump will not fit (step 5b).
- "WHEA bad pages": Windows builds 19042 and later keep Predictive Failure Analysis bad pages in
  SYSTEM\\<ControlSet>\\Control\\WHEA, value BadPages, instead of the BCD's {badmemory}
  badmemorylist (Microsoft, "How to Manage the PFA Memory List"; PROCEDURE.md "Facts"); Windows
  excludes those pages at boot. The blob's layout is not documented: we report its presence and size,
  and clearing means deleting the value, as the same page says.
"""

from __future__ import annotations

import shlex

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rescue.hive import values as V
from rescue.registry.crashdump import CrashDumpReport, DumpSpaceCheck
from rescue.registry.pagefile import DEFAULT_TEMP_DRIVE, PagefileReport, effective_drives, norm_drive
from rescue.registry.paths import control_set_key, control_sets
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.safety.plan import DeleteKey, DeleteValue, FileRef, Step

if TYPE_CHECKING:
    from pathlib import Path
    from rescue.hive.hive import Hive
    from rescue.layout import WindowsLayout

WHEA = "Control\\WHEA"
# What a FOUND finding means, in the words of the issue (for inspect / show output).
PROBLEMS = {"pagefile-not-on-temp-drive": "page file not on the temporary drive",
            "crashdump-disabled": "crash dumps disabled", "nmi-crashdump-off": "NMI crash dump off",
            "dump-volume-too-small": "dump volume smaller than RAM",
            "whea-bad-pages": "predicted-bad memory pages in the registry (WHEA BadPages)"}
WHEA_BUILD = 19042


@dataclass(frozen=True)
class WheaBadPages:
    control_set: int
    present: bool
    type: int | None = None          # type of the BadPages value
    size: int = 0                    # its length in bytes
    as_key: bool = False             # a BadPages subkey instead of a value (seen nowhere; handled)
    data: bytes = b""

    def to_json(self) -> dict:
        return {"control_set": self.control_set, "present": self.present,
                "type": None if self.type is None else V.type_name(self.type), "size": self.size,
                "as_key": self.as_key, "data_hex": self.data.hex()}


def read_whea_badpages(system: Hive | str | Path) -> tuple[WheaBadPages, ...]:
    from rescue.registry.pagefile import _open

    hive = _open(system)
    out = []
    for n in control_sets(hive):
        key = f"{control_set_key(n)}\\{WHEA}"
        v = hive.get(key, "BadPages")
        if v is not None:
            out.append(WheaBadPages(n, True, v.type, len(v.data), False, v.data))
        elif hive.find(f"{key}\\BadPages") is not None:
            out.append(WheaBadPages(n, True, None, 0, True))
        else:
            out.append(WheaBadPages(n, False))
    return tuple(out)


def plan_clear_whea_badpages(system: Hive | str | Path, ref: FileRef) -> Step:
    """Delete WHEA BadPages in every control set (the registry side of clearing bad memory)."""
    from rescue.registry.pagefile import _open

    hive = _open(system)
    changes: list[DeleteKey | DeleteValue] = []
    for b in read_whea_badpages(hive):
        if not b.present:
            continue
        key = f"{control_set_key(b.control_set)}\\{WHEA}"
        if b.as_key:
            changes.append(DeleteKey(ref, f"{key}\\BadPages", reason="clear WHEA predicted-bad pages"))
        else:
            v = hive.get(key, "BadPages")
            changes.append(DeleteValue(ref, key, v.name, v.type, v.data, reason="clear WHEA predicted-bad pages"))
    title = "WHEA bad pages: delete Control\\WHEA BadPages in every control set"
    if not changes:
        return Step("registry.whea-badpages", title, skipped="no control set has WHEA BadPages")
    return Step("registry.whea-badpages", title, changes=tuple(changes))


def registry_findings(pagefile: PagefileReport | None, crash: CrashDumpReport | None, *,
                      temp_drive: str = DEFAULT_TEMP_DRIVE, layout: WindowsLayout | None = None,
                      dump_space: DumpSpaceCheck | None = None,
                      whea: tuple[WheaBadPages, ...] | None = None,
                      build: int | None = None) -> tuple[Finding, ...]:
    """Every registry check, found / ok / unknown, with evidence. Pure: takes what the readers
    returned (and the layout for "is that drive attached")."""
    out: list[Finding] = []
    temp = norm_drive(temp_drive)

    # Page file location (current control set).
    s = pagefile.current_settings if pagefile else None
    fid, ftitle = "pagefile-not-on-temp-drive", f"page file on the temporary drive ({temp})"
    if s is None or not s.exists:
        why = "; ".join(pagefile.notes) if pagefile and pagefile.notes else "no page file settings in the current control set"
        out.append(Finding(fid, ftitle, UNKNOWN, why))
    else:
        drives = effective_drives(s)
        bad = [d for d in drives if d != temp]
        raw = ", ".join(p.raw for p in s.paging_files) or "(empty: no page file)"
        if not drives and any(p.drive in ("?:", None) for p in s.paging_files):
            out.append(Finding(fid, ftitle, UNKNOWN,
                               f"PagingFiles = {raw}: Windows picks the drive and ExistingPageFiles does not say "
                               "which it used"))
        elif bad:
            where = []
            for d in bad:
                vol = layout.volume_by_letter(d) if layout is not None else None
                where.append(f"{d} ({'on ' + layout.disk_paths[vol.disk] if vol else 'not attached'})"
                             if layout is not None else d)
            out.append(Finding(fid, ftitle, FOUND,
                               f"{control_set_key(s.control_set)} PagingFiles = {raw}; page file on "
                               f"{', '.join(where)}, not the temporary drive {temp}",
                               fixable=True))
        else:
            out.append(Finding(fid, ftitle, OK, f"PagingFiles = {raw}"))

    # Crash dumps and NMI (every control set: the article sets 001 and 002).
    if crash is None or not crash.sets:
        out.append(Finding("crashdump-disabled", "crash dumps enabled", UNKNOWN,
                           "; ".join(crash.notes) if crash and crash.notes else "no control sets"))
        out.append(Finding("nmi-crashdump-off", "NMI crash dump on", UNKNOWN, "no control sets"))
    else:
        off = [c for c in crash.sets if not c.enabled]
        out.append(Finding("crashdump-disabled", "crash dumps enabled", FOUND if off else OK,
                           "; ".join(f"{control_set_key(c.control_set)} CrashDumpEnabled "
                                     f"{'absent' if c.crash_dump_enabled is None else c.crash_dump_enabled}"
                                     for c in off) if off else
                           ", ".join(f"{control_set_key(c.control_set)}: {c.level}" for c in crash.sets),
                           fixable=bool(off)))
        no_nmi = [c for c in crash.sets if not c.nmi]
        out.append(Finding("nmi-crashdump-off", "NMI crash dump on", FOUND if no_nmi else OK,
                           ("NMICrashDump is not 1 in " + ", ".join(control_set_key(c.control_set) for c in no_nmi))
                           if no_nmi else "NMICrashDump=1 in every control set", fixable=bool(no_nmi)))

    # Dump space.
    if dump_space is not None:
        status = UNKNOWN if dump_space.fits is None else (OK if dump_space.fits else FOUND)
        # The fix can only move the dump to a volume that has the room: a lettered data volume that
        # fits names the exact option; otherwise the evidence says what to attach (not fixable here).
        option = None
        best = dump_space.best_data_volume
        if status == FOUND and best and best[0] and dump_space.ram_bytes and best[3] >= dump_space.ram_bytes:
            option = "--dump-file " + shlex.quote(f"{best[0]}\\MEMORY.DMP")
        out.append(Finding("dump-volume-too-small", "dump volume has room for a complete dump (RAM)", status,
                           dump_space.message, fixable=option is not None, fix_option=option))

    # WHEA bad pages.
    if whea is not None:
        present = [b for b in whea if b.present]
        note = "" if build is None or build >= WHEA_BUILD else f" (build {build} keeps bad pages in the BCD instead)"
        out.append(Finding("whea-bad-pages", "no predicted-bad memory pages in the registry (WHEA BadPages)",
                           FOUND if present else OK,
                           ("; ".join(f"{control_set_key(b.control_set)}\\{WHEA} BadPages "
                                      + ("subkey" if b.as_key or b.type is None else f"{V.type_name(b.type)} {b.size} bytes")
                                      for b in present) + ": Windows will not use those pages")
                           if present else f"no BadPages in any control set{note}", fixable=bool(present)))
    return tuple(out)
