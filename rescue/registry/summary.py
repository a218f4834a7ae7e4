"""Everything the registry layer knows about a disk set (or a bare SYSTEM file), in one record.

Used by `rescue inspect` (registry section), `rescue pagefile/crashdump show` and, through
`summarize`, by `rescue diagnose` / `rescue fix no-memory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rescue.layout import SYSTEM_HIVE
from rescue.registry.crashdump import (DEFAULT_DUMP_FILE, CrashDumpReport, DumpSpaceCheck, check_dump_space,
                                       read_crashdump)
from rescue.registry.findings import WheaBadPages, read_whea_badpages, registry_findings
from rescue.registry.pagefile import (DEFAULT_TEMP_DRIVE, FoundPagefile, PagefileLocation, PagefileReport,
                                      locate, norm_drive, read_pagefile_settings, scan_pagefiles)
from rescue.repairs.findings import Finding
from rescue.fileref import FileRef
from rescue.safety.hivecheck import open_hive  # noqa: F401  (re-exported: its home is the safety layer)

if TYPE_CHECKING:
    from rescue.hive.hive import Hive
    from rescue.layout import WindowsLayout
    from rescue.target import Target


def system_ref(target: Target) -> FileRef:
    """The SYSTEM hive a command works on: the bare file itself, or the Windows root's."""
    from rescue.target import HostFileTarget

    if isinstance(target, HostFileTarget) and target.session is None:
        return target.main
    root = target.windows_root()
    return FileRef(SYSTEM_HIVE, root.disk, root.partition)


@dataclass(frozen=True)
class RegistrySummary:
    system: FileRef
    temp_drive: str
    pagefile: PagefileReport
    locations: tuple[PagefileLocation, ...]
    found_pagefiles: tuple[FoundPagefile, ...]
    crashdump: CrashDumpReport
    dump_space: DumpSpaceCheck
    whea: tuple[WheaBadPages, ...]
    findings: tuple[Finding, ...]
    system_copy: Path | None = None       # the host copy read (logs replayed): planners reuse it

    def to_json(self) -> dict:
        return {"system_hive": self.system.to_json(), "temp_drive": self.temp_drive,
                "current_control_set": self.pagefile.current,
                "pagefile": self.pagefile.to_json(),
                "pagefile_locations": [{"drive": x.drive, "named_by": list(x.named_by), "temp_drive": x.temp_drive,
                                        "disk": x.disk_path, "partition": x.partition, "role": x.role,
                                        "pagefile_size": x.pagefile_size} for x in self.locations],
                "pagefiles_found": [{"letter": f.letter, "disk": f.disk_path, "partition": f.file.partition,
                                     "role": f.role, "path": f.file.path, "size": f.size} for f in self.found_pagefiles],
                "crashdump": self.crashdump.to_json(), "dump_space": self.dump_space.to_json(),
                "whea_bad_pages": [w.to_json() for w in self.whea],
                "findings": [f.to_json() for f in self.findings]}


def summarize_hive(system: Hive | str | Path, *, ref: FileRef, layout: WindowsLayout | None = None,
                   found: tuple[FoundPagefile, ...] = (), temp_drive: str = DEFAULT_TEMP_DRIVE,
                   ram_bytes: int | None = None,
                   dump_file: str | None = None) -> RegistrySummary:
    """Pure: a SYSTEM hive (host path or open Hive) + layout + page files found -> summary."""
    from rescue.registry.pagefile import _open

    hive = _open(system)
    temp = norm_drive(temp_drive)
    pf = read_pagefile_settings(hive)
    cd = read_crashdump(hive)
    whea = read_whea_badpages(hive)
    cur = cd.current_settings
    df = dump_file or (cur.dump_file if cur is not None and cur.dump_file else DEFAULT_DUMP_FILE)
    space = check_dump_space(df, layout, ram_bytes=ram_bytes, found_pagefiles=found)
    build = layout.root.build if layout is not None and layout.root is not None else None
    findings = registry_findings(pf, cd, temp_drive=temp, layout=layout, dump_space=space, whea=whea, build=build)
    return RegistrySummary(ref, temp, pf, locate(pf.current_settings, layout, found, temp), tuple(found), cd,
                           space, whea, findings, system_copy=hive.path)


def summarize(target: Target, *, temp_drive: str = DEFAULT_TEMP_DRIVE, ram_bytes: int | None = None,
              dump_file: str | None = None, discard_hive_logs: bool = False) -> RegistrySummary:
    """Read SYSTEM through `target` (no extra appliance launch) and summarize it."""
    ref = system_ref(target)
    return summarize_hive(open_hive(target, ref, discard_hive_logs), ref=ref,
                          layout=target.layout, found=scan_pagefiles(target),
                          temp_drive=temp_drive, ram_bytes=ram_bytes, dump_file=dump_file)
