"""Page file settings (SYSTEM ...\\Control\\Session Manager\\Memory Management), where the page files
are, and the article's step 4: delete a page file that sits on a VHD volume and restore the default.

Value formats (as Windows writes them; checked on the real SYSTEM hives in ../shared/realdata):
- PagingFiles, REG_MULTI_SZ, one item per page file: "C:\\pagefile.sys 0 0" = system managed on C:
  (what System Properties writes), "C:\\pagefile.sys 768 1536" = fixed initial/maximum size in MB
  (XP SP3 hive), "?:\\pagefile.sys" = "automatically manage paging file size for all drives" (Win7
  and Win10 hives), "D:\\pagefile.sys" without sizes = system managed (Azure's image default).
- ExistingPageFiles, REG_MULTI_SZ, NT paths of the page files Windows created at its last boot
  ("\\??\\C:\\pagefile.sys"): where the page file really was, whatever PagingFiles says.
- TempPageFile (REG_DWORD, set when Windows had to create a temporary page file).
Azure's temporary ("resource") disk is D: by default; it is not part of the VM's disks, so a page
file there never fills the OS disk. The article: if the page file is not on D:, delete it and put
the setting back to the temporary drive (PROCEDURE.md step 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rescue.errors import RescueError, UsageError
from rescue.hive import values as V
from rescue.registry.paths import control_set_key, control_sets, current_control_set
from rescue.safety.plan import DeleteFile, FileRef, SetValue, Step
from rescue.units import format_bytes

if TYPE_CHECKING:
    from pathlib import Path
    from rescue.hive.hive import Hive
    from rescue.layout import WindowsLayout
    from rescue.target import Target

MM = "Control\\Session Manager\\Memory Management"
DEFAULT_TEMP_DRIVE = "D:"
DEFAULT_LOCATION = "D:\\pagefile.sys 0 0"
SYSTEM_MANAGED, AUTOMATIC, FIXED = "system-managed", "automatic", "fixed"
PAGEFILE = "\\pagefile.sys"


def norm_drive(text: str) -> str:
    """"d", "D:", "d:\\" -> "D:"; "?:" stays."""
    t = text.strip().rstrip("\\").rstrip(":")
    if not re.fullmatch(r"[A-Za-z?]", t):
        raise UsageError(f"{text!r} is not a drive letter (e.g. D:).")
    return t.upper() + ":"


@dataclass(frozen=True)
class PagingFile:
    """One PagingFiles item."""

    raw: str
    path: str                     # "C:\\pagefile.sys"
    drive: str | None             # "C:", "?:"; None when the item names no drive
    initial_mb: int | None
    maximum_mb: int | None

    @property
    def mode(self) -> str:
        if self.drive == "?:":
            return AUTOMATIC
        if not self.initial_mb and not self.maximum_mb:
            return SYSTEM_MANAGED
        return FIXED

    def describe(self) -> str:
        if self.mode == AUTOMATIC:
            return "automatic: Windows manages the page file size for all drives"
        where = f"on {self.drive}" if self.drive else "on an unnamed drive"
        if self.mode == SYSTEM_MANAGED:
            return f"system managed {where}"
        return f"fixed size {where} ({self.initial_mb} MB initial, {self.maximum_mb} MB maximum)"


def parse_paging_file(item: str) -> PagingFile:
    m = re.fullmatch(r"\s*(?P<path>.*?)(?:\s+(?P<min>\d+)\s+(?P<max>\d+))?\s*", item)
    path = m.group("path") if m else item
    dm = re.match(r"([A-Za-z?]):", path)
    return PagingFile(raw=item, path=path, drive=(dm.group(1).upper() + ":") if dm else None,
                      initial_mb=int(m.group("min")) if m and m.group("min") else None,
                      maximum_mb=int(m.group("max")) if m and m.group("max") else None)


def existing_drive(nt_path: str) -> str | None:
    """"\\??\\C:\\pagefile.sys" -> "C:"."""
    m = re.match(r"(?:\\\?\?\\|\\DosDevices\\)?([A-Za-z]):", nt_path.strip())
    return m.group(1).upper() + ":" if m else None


@dataclass(frozen=True)
class PagefileSettings:
    """Memory Management's page file values in one control set (None: value absent)."""

    control_set: int
    key: str                                  # path inside the hive
    exists: bool                              # the Memory Management key exists
    paging_files: tuple[PagingFile, ...] = ()
    paging_files_type: int | None = None
    paging_files_data: bytes | None = None
    existing_page_files: tuple[str, ...] = ()
    existing_page_files_type: int | None = None
    temp_page_file: int | None = None
    clear_at_shutdown: int | None = None

    @property
    def drives(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.drive for p in self.paging_files if p.drive))

    @property
    def existing_drives(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for d in map(existing_drive, self.existing_page_files) if d))

    def is_default(self, location: str = DEFAULT_LOCATION) -> bool:
        return (self.paging_files_type == V.REG_MULTI_SZ
                and self.paging_files_data == V.encode_multi_sz([location]))

    def to_json(self) -> dict:
        return {"control_set": self.control_set, "key": self.key, "exists": self.exists,
                "paging_files": [{"raw": p.raw, "path": p.path, "drive": p.drive, "mode": p.mode,
                                  "initial_mb": p.initial_mb, "maximum_mb": p.maximum_mb} for p in self.paging_files],
                "paging_files_type": None if self.paging_files_type is None else V.type_name(self.paging_files_type),
                "existing_page_files": list(self.existing_page_files),
                "existing_page_files_type": (None if self.existing_page_files_type is None
                                             else V.type_name(self.existing_page_files_type)),
                "temp_page_file": self.temp_page_file, "clear_at_shutdown": self.clear_at_shutdown}


@dataclass(frozen=True)
class PagefileReport:
    current: int | None                       # Select\Current (None: cannot tell, see notes)
    sets: tuple[PagefileSettings, ...]
    notes: tuple[str, ...] = ()

    @property
    def current_settings(self) -> PagefileSettings | None:
        return next((s for s in self.sets if s.control_set == self.current), None)

    def to_json(self) -> dict:
        return {"current_control_set": self.current, "control_sets": [s.to_json() for s in self.sets],
                "notes": list(self.notes)}


def _strings(v) -> tuple[str, ...]:
    if v is None:
        return ()
    if v.type == V.REG_MULTI_SZ:
        return tuple(V.decode_multi_sz(v.data))
    if v.type in (V.REG_SZ, V.REG_EXPAND_SZ):
        s = V.decode_sz(v.data)
        return (s,) if s else ()
    return ()


def _int(v) -> int | None:
    return v.value if v is not None and isinstance(v.value, int) else None


def _open(system: Hive | str | Path):
    """An open `Hive` as is; a host path opened read-only."""
    from rescue.hive import Hive

    return system if isinstance(system, Hive) else Hive(system)


def read_settings(hive: Hive, n: int) -> PagefileSettings:
    key = f"{control_set_key(n)}\\{MM}"
    if hive.find(key) is None:
        return PagefileSettings(control_set=n, key=key, exists=False)
    pf, ex = hive.get(key, "PagingFiles"), hive.get(key, "ExistingPageFiles")
    return PagefileSettings(
        control_set=n, key=key, exists=True,
        paging_files=tuple(parse_paging_file(s) for s in _strings(pf)),
        paging_files_type=pf.type if pf else None, paging_files_data=pf.data if pf else None,
        existing_page_files=_strings(ex), existing_page_files_type=ex.type if ex else None,
        temp_page_file=_int(hive.get(key, "TempPageFile")),
        clear_at_shutdown=_int(hive.get(key, "ClearPageFileAtShutdown")))


def read_pagefile_settings(system: Hive | str | Path) -> PagefileReport:
    """Page file settings of every control set in a SYSTEM hive (a host path or an open Hive)."""
    hive = _open(system)
    notes: list[str] = []
    try:
        current = current_control_set(hive)
    except RescueError as exc:
        current, notes = None, [str(exc)]
    return PagefileReport(current=current, sets=tuple(read_settings(hive, n) for n in control_sets(hive)),
                          notes=tuple(notes))


# --- where the page files are ---------------------------------------------------------------------
@dataclass(frozen=True)
class FoundPagefile:
    """A \\pagefile.sys present on an attached volume (size from the directory entry only)."""

    file: FileRef
    size: int
    letter: str | None
    disk_path: str
    role: str


def scan_pagefiles(target: Target) -> tuple[FoundPagefile, ...]:
    """\\pagefile.sys in the root of every mounted volume of a disk target (one stat per volume;
    the read-only mounts of layout discovery are reused, nothing is mounted for writing)."""
    session, layout = target.session, target.layout
    if session is None or layout is None:
        return ()
    out = []
    for v in layout.volumes:
        if v.state == "bitlocker" or (v.fstype or "") not in ("ntfs", "vfat", "fat", "exfat"):
            continue
        try:
            part = session.partition(v.disk, v.partition)
            mp = session.mounted(part) or session.mount(part, write=False)
            real = session.resolve(mp + "/pagefile.sys")
            if real is None:
                continue
            size = session.file_size(real)
        except RescueError:
            continue                                   # a volume that does not mount holds nothing we can see
        out.append(FoundPagefile(FileRef(PAGEFILE, v.disk, v.partition), size, v.letter,
                                 layout.disk_paths[v.disk], v.role))
    return tuple(out)


@dataclass(frozen=True)
class PagefileLocation:
    """A drive letter the settings name, and what it is on this disk set."""

    drive: str
    named_by: tuple[str, ...]                 # "PagingFiles", "ExistingPageFiles"
    temp_drive: bool
    disk: int | None = None
    partition: int | None = None
    disk_path: str | None = None
    role: str | None = None
    pagefile_size: int | None = None          # \pagefile.sys found there

    @property
    def attached(self) -> bool:
        return self.disk is not None

    def describe(self) -> str:
        if self.attached:
            where = f"{self.disk_path} partition {self.partition} ({self.role})"
        elif self.temp_drive:
            where = "the temporary drive (Azure's resource disk: not part of the VM's disks)"
        else:
            where = "not on any attached disk"
        size = "" if self.pagefile_size is None else f"; pagefile.sys {self.pagefile_size:,} bytes"
        return f"{self.drive} {where}{size}"


def locate(settings: PagefileSettings | None, layout: WindowsLayout | None, found: Sequence[FoundPagefile],
           temp_drive: str = DEFAULT_TEMP_DRIVE) -> tuple[PagefileLocation, ...]:
    """Drive letters named by PagingFiles / ExistingPageFiles -> volumes of the attached disks
    (MountedDevices, via layout.volume_by_letter)."""
    if settings is None:
        return ()
    temp = norm_drive(temp_drive)
    named: dict[str, list[str]] = {}
    for d in settings.drives:
        if d != "?:":
            named.setdefault(d, []).append("PagingFiles")
    for d in settings.existing_drives:
        named.setdefault(d, []).append("ExistingPageFiles")
    out = []
    for drive, by in named.items():
        vol = layout.volume_by_letter(drive) if layout is not None else None
        size = next((f.size for f in found if vol and (f.file.disk, f.file.partition) == (vol.disk, vol.partition)), None)
        out.append(PagefileLocation(
            drive=drive, named_by=tuple(by), temp_drive=drive == temp,
            disk=vol.disk if vol else None, partition=vol.partition if vol else None,
            disk_path=layout.disk_paths[vol.disk] if vol and layout is not None else None,
            role=vol.role if vol else None,
            pagefile_size=size))
    return tuple(out)


def effective_drives(settings: PagefileSettings) -> tuple[str, ...]:
    """Where the page file is or will be: explicit PagingFiles letters; for "?:" (automatic) the
    drives ExistingPageFiles shows Windows used."""
    drives = [d for d in settings.drives if d != "?:"]
    if "?:" in settings.drives or not drives:
        drives += [d for d in settings.existing_drives if d not in drives]
    return tuple(drives)


# --- reset -------------------------------------------------------------------------------------------
def normalize_location(text: str) -> str:
    """--location: "D:" / "D:\\pagefile.sys" -> "D:\\pagefile.sys 0 0" (system managed);
    "E:\\pagefile.sys 1024 4096" (fixed MB) kept; "?:" -> "?:\\pagefile.sys" (automatic)."""
    t = " ".join(text.split())
    if re.fullmatch(r"[A-Za-z?]", t):
        t += ":"
    m = re.fullmatch(r"([A-Za-z?]):(\\(?i:pagefile\.sys))?\\?(?: (\d+) (\d+))?", t)
    if not m:
        raise UsageError(f"{text!r} is not a page file location: give a drive (D:), D:\\pagefile.sys, or "
                         "D:\\pagefile.sys MIN MAX (sizes in MB). Windows keeps page files in a drive's root.")
    drive = m.group(1).upper()
    if drive == "?":
        return "?:\\pagefile.sys"
    lo, hi = m.group(3), m.group(4)
    if lo is not None and int(lo) > int(hi):
        raise UsageError(f"Initial size {lo} MB is larger than the maximum {hi} MB.")
    return f"{drive}:\\pagefile.sys {lo or 0} {hi or 0}"


def bytes_freed(step: Step) -> int:
    return sum(c.size for c in step.changes if isinstance(c, DeleteFile))


def plan_pagefile_reset(system: Hive | str | Path, ref: FileRef, found: Sequence[FoundPagefile] = (), *,
                        location: str = DEFAULT_LOCATION, temp_drive: str = DEFAULT_TEMP_DRIVE) -> Step:
    """PagingFiles = [location] (REG_MULTI_SZ) in every control set, and delete every \\pagefile.sys
    found on attached (VHD) volumes, except on the temporary drive and on the new location's drive.
    Page files are not backed up (Windows recreates them); the hive is."""
    hive = _open(system)
    location = normalize_location(location)
    new_drive = parse_paging_file(location).drive
    temp = norm_drive(temp_drive)
    data = V.encode_multi_sz([location])
    changes: list = []
    notes: list[str] = []
    for n in control_sets(hive):
        s = read_settings(hive, n)
        if not s.exists:
            notes.append(f"{control_set_key(n)} has no {MM} key; left alone")
            continue
        if s.is_default(location):
            continue
        changes.append(SetValue(file=ref, key=s.key, name="PagingFiles", type=V.REG_MULTI_SZ, data=data,
                                before_type=s.paging_files_type, before_data=s.paging_files_data,
                                reason=f"page file back to {location}"))
    for f in found:
        if f.letter is not None and f.letter in (temp, new_drive):
            notes.append(f"{f.letter}\\pagefile.sys kept: it is on the "
                         f"{'temporary drive' if f.letter == temp else 'new page file drive'}")
            continue
        where = f.letter or f"{f.disk_path} partition {f.file.partition}"
        changes.append(DeleteFile(file=f.file, size=f.size, backup=False,
                                  reason=f"page file on a VHD volume ({where}), not on the temporary drive"))
    title = f"Page file: {location} in every control set; page files on VHD volumes deleted"
    if not changes:
        return Step("registry.pagefile-reset", title, notes=tuple(notes),
                    skipped=f"PagingFiles is already {location} everywhere and no page file sits on a VHD volume")
    step = Step("registry.pagefile-reset", title, changes=tuple(changes), notes=tuple(notes))
    freed = bytes_freed(step)
    if freed:
        notes.append(f"frees {freed:,} bytes ({format_bytes(freed)})")
    notes.append("ExistingPageFiles is left as is: Windows rewrites it when it creates the page file at boot")
    return Step(step.action, step.title, step.changes, notes=tuple(notes))
