"""`rescue cleanup`: remove what Windows' Disk Cleanup / Storage Sense remove, offline.

check -> plan -> apply: `scan_volume` lists the files of each category from metadata only (one
find per category folder, one lstat batch per directory), `build_plan` turns them into
`DeleteFile(backup=False)` changes (deleted files are not kept: that is the point; the safety engine
keeps the plan and a manifest of what was deleted on the disk), and the CLI hands the plan to the
safety engine.

Categories and their folders follow the handlers of Disk Cleanup (cleanmgr, "Temporary files",
"Windows Update Cleanup", "Delivery Optimization Files", "Windows error reports", "System error
memory dump files", "Temporary Setup/CBS logs", "Thumbnails", "Recycle Bin", "Previous Windows
installation(s)") and Storage Sense. Nothing outside these folders is ever listed:
- folders are resolved case-insensitively, and every component of a category folder must be a real
  directory (lstat), so a category folder that is itself a junction is not entered;
- below it, junctions, symbolic links and other reparse points (ntfs-3g shows all of them as
  symlinks) are never followed nor deleted, and are reported as skipped.
Read-only files are kept in the automatic categories (Windows' own DeleteFile refuses them, so Disk
Cleanup leaves them too) and reported; the opt-in categories the user names explicitly (Recycle Bin,
Windows.old) are removed entirely, as Disk Cleanup does for them.
"""

from __future__ import annotations

import fnmatch
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from rescue.safety.plan import DeleteFile, FileRef, Plan, Step
from rescue.target import win_to_posix
from rescue.units import count, format_bytes

if TYPE_CHECKING:
    from rescue.disk.records import Partition, TreeEntry
    from rescue.disk.view import Session

# A bulk reader of FILE_ATTRIBUTE_* bits: {appliance path: bits, None where unread}.
AttributeReader = Callable[["Sequence[TreeEntry]"], "dict[str, int | None]"]

FILE_ATTRIBUTE_READONLY = 0x1
SCAN_LIMIT = 200_000          # entries per category folder; beyond it the scan says "truncated"


@dataclass(frozen=True)
class Root:
    path: str                         # backslash path from the volume root; "*" = every user profile
    patterns: tuple[str, ...] = ()    # file-name globs (case-insensitive); empty = every file
    recursive: bool = True
    keep: tuple[str, ...] = ()        # file names never removed (e.g. the Recycle Bin's desktop.ini)


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    roots: tuple[Root, ...]
    opt_in: bool = False
    files: tuple[str, ...] = ()       # single files (e.g. \Windows\MEMORY.DMP)


USER = "\\Users\\*"
CATEGORIES: tuple[Category, ...] = (
    Category("windows-temp", "Windows temporary files", (Root("\\Windows\\Temp"),)),
    Category("user-temp", "Users' temporary files", (Root(USER + "\\AppData\\Local\\Temp"),)),
    Category("update-cache", "Windows Update download cache",
             (Root("\\Windows\\SoftwareDistribution\\Download"),)),
    Category("delivery-optimization", "Delivery Optimization cache", (
        Root("\\Windows\\ServiceProfiles\\NetworkService\\AppData\\Local\\Microsoft\\Windows\\DeliveryOptimization\\Cache"),
        Root("\\ProgramData\\Microsoft\\Windows\\DeliveryOptimization\\Cache"),
        Root("\\Windows\\SoftwareDistribution\\DeliveryOptimization"),   # Windows 10 1511 and older
    )),
    Category("error-reports", "Windows Error Reporting queues and archives", (
        Root("\\ProgramData\\Microsoft\\Windows\\WER\\ReportQueue"),
        Root("\\ProgramData\\Microsoft\\Windows\\WER\\ReportArchive"),
        Root(USER + "\\AppData\\Local\\Microsoft\\Windows\\WER"),
    )),
    Category("memory-dumps", "System error memory dumps (minidumps, MEMORY.DMP)",
             (Root("\\Windows\\Minidump"),), files=("\\Windows\\MEMORY.DMP",)),
    Category("setup-logs", "CBS and DISM logs", (
        Root("\\Windows\\Logs\\CBS", patterns=("*.log", "*.cab"), recursive=False),
        Root("\\Windows\\Logs\\DISM"),
    )),
    Category("thumbnails", "Thumbnail caches", (
        Root(USER + "\\AppData\\Local\\Microsoft\\Windows\\Explorer", patterns=("thumbcache_*.db",),
             recursive=False),
    )),
    Category("recycle-bin", "Recycle Bin contents", (Root("\\$Recycle.Bin", keep=("desktop.ini",)),),
             opt_in=True),
    Category("windows-old", "Previous Windows installation (Windows.old)", (Root("\\Windows.old"),),
             opt_in=True),
)
CATEGORY_KEYS = tuple(c.key for c in CATEGORIES)
OPT_IN_KEYS = tuple(c.key for c in CATEGORIES if c.opt_in)


@dataclass(frozen=True)
class FoundFile:
    path: str            # Windows path on the volume, real spelling (e.g. "\\Windows\\Temp\\a.tmp")
    size: int            # bytes (st_size)
    reclaim: int         # bytes of clusters freed by deleting it (0: data stored inside the MFT record,
                         # or another hard link keeps it)
    posix: str = field(default="", compare=False, repr=False)   # appliance path, for the fast delete


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class CategoryScan:
    key: str
    title: str
    opt_in: bool
    included: bool                    # part of this run (opt-in ones only when asked)
    folders: tuple[str, ...]          # category folders that exist on this volume
    files: tuple[FoundFile, ...]
    skipped: tuple[Skipped, ...] = ()
    truncated: bool = False

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def reclaim_bytes(self) -> int:
        return sum(f.reclaim for f in self.files)

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "opt_in": self.opt_in, "included": self.included,
                "folders": list(self.folders), "files": self.file_count, "bytes": self.bytes,
                "reclaim_bytes": self.reclaim_bytes, "truncated": self.truncated,
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped]}


@dataclass(frozen=True)
class VolumeScan:
    disk: int
    partition: int
    letter: str | None
    cluster_size: int
    size_bytes: int
    free_bytes: int
    categories: tuple[CategoryScan, ...]

    @property
    def included(self) -> tuple[CategoryScan, ...]:
        return tuple(c for c in self.categories if c.included)

    @property
    def reclaim_bytes(self) -> int:
        return sum(c.reclaim_bytes for c in self.included)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.included)

    @property
    def file_count(self) -> int:
        return sum(c.file_count for c in self.included)

    def category(self, key: str) -> CategoryScan | None:
        return next((c for c in self.categories if c.key == key), None)

    def without(self, removed: set[str], *, size_bytes: int, free_bytes: int) -> "VolumeScan":
        """This scan after the files in `removed` (Windows paths, any case) were deleted and verified
        gone by the safety engine, with the volume's usage as it is now. `rescue fix` re-diagnoses
        with it instead of walking every category folder again in the same launch (nothing else
        writes to those folders meanwhile)."""
        low = {p.lower() for p in removed}
        cats = tuple(replace(c, files=tuple(f for f in c.files if f.path.lower() not in low))
                     for c in self.categories)
        return replace(self, categories=cats, size_bytes=size_bytes, free_bytes=free_bytes)

    def to_json(self) -> dict:
        return {"disk": self.disk, "partition": self.partition, "letter": self.letter,
                "cluster_size": self.cluster_size, "size_bytes": self.size_bytes,
                "free_bytes": self.free_bytes, "files": self.file_count, "bytes": self.bytes,
                "reclaim_bytes": self.reclaim_bytes, "categories": [c.to_json() for c in self.categories]}


def parse_include(values: Iterable[str] | None) -> frozenset[str]:
    """--include values (repeatable or comma-separated); "all" names both opt-in categories."""
    from rescue.errors import UsageError

    keys: set[str] = set()
    for v in values or ():
        for k in str(v).split(","):
            k = k.strip().lower()
            if not k:
                continue
            if k == "all":
                keys.update(OPT_IN_KEYS)
            elif k in CATEGORY_KEYS:
                keys.add(k)
            else:
                raise UsageError(f"Unknown cleanup category {k!r}; choose from {', '.join(CATEGORY_KEYS)} or all.")
    return frozenset(keys)


def _to_windows(mp: str, posix: str) -> str:
    return "\\" + posix[len(mp):].strip("/").replace("/", "\\")


def _real_dir(session: Session, mp: str, winpath: str) -> str | None:
    """Appliance path of the directory `winpath` when it exists and no component of it (below the
    mount point) is a link: a category folder redirected elsewhere by a junction is not entered."""
    real = session.resolve(mp + win_to_posix(winpath))
    if real is None:
        return None
    parts = real[len(mp):].strip("/").split("/")
    cur = mp
    # Category folders share their parents (\Windows, \Users\x\AppData\Local): each component is
    # checked once per session (a call costs 2-25 ms under TCG).
    cache = _dir_checks.setdefault(session, {})
    for p in parts:
        cur = f"{cur}/{p}"
        if cur not in cache:
            cache[cur] = session.is_dir(cur)    # lstat-based: False for a symlink/junction
        if not cache[cur]:
            return None
    return real


# Keyed by the session object itself (weakly): an id() could be reused by a later session.
_dir_checks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _user_profiles(session: Session, mp: str, skipped: list[Skipped]) -> list[str]:
    users = _real_dir(session, mp, "\\Users")
    if users is None:
        return []
    names = []
    for name in sorted(session.listdir(users)):
        e = session.lstat(f"{users}/{name}")
        if e.kind == "dir":
            names.append(name)
        # "All Users", "Default User", "Application Data" are junctions: not profiles, not followed.
    return names


def _expand_roots(session: Session, mp: str, root: Root, skipped: list[Skipped]) -> list[str]:
    if "\\*\\" not in root.path:
        return [root.path]
    head, tail = root.path.split("\\*\\", 1)
    return [f"{head}\\{u}\\{tail}" for u in _user_profiles(session, mp, skipped)]


def _matches(name: str, root: Root) -> bool:
    low = name.lower()
    if low in (k.lower() for k in root.keep):
        return False
    return not root.patterns or any(fnmatch.fnmatch(low, p.lower()) for p in root.patterns)


def scan_category(session: Session, mp: str, cat: Category, *, included: bool, cluster_size: int,
                  check_readonly: bool = True, limit: int = SCAN_LIMIT,
                  attributes_of: AttributeReader | None = None) -> CategoryScan:
    """`attributes_of(entries) -> {path: FILE_ATTRIBUTE_* bits}`: a bulk reader (MFT records read
    in a few device reads); without it, one xattr call per file."""
    skipped: list[Skipped] = []
    folders: list[str] = []
    entries = []          # TreeEntry of candidate files
    truncated = False
    for root in cat.roots:
        for winroot in _expand_roots(session, mp, root, skipped):
            real = _real_dir(session, mp, winroot)
            if real is None:
                lexists = session.resolve(mp + win_to_posix(winroot))
                if lexists is not None:
                    skipped.append(Skipped(winroot, "category folder is a junction or link: not entered"))
                continue
            folders.append(_to_windows(mp, real))
            tree, cut = session.lstat_tree(real, limit=limit, recursive=root.recursive)
            truncated = truncated or cut
            for e in tree:
                rel = e.path[len(real):].strip("/")
                if not root.recursive and "/" in rel:
                    continue
                if e.kind == "link":
                    skipped.append(Skipped(_to_windows(mp, e.path),
                                           "junction or symbolic link: not followed, not deleted"))
                elif e.kind == "other":
                    skipped.append(Skipped(_to_windows(mp, e.path), "not a regular file"))
                elif e.kind == "file" and _matches(rel.rsplit("/", 1)[-1], root):
                    entries.append(e)
    for winfile in cat.files:
        real = session.resolve(mp + win_to_posix(winfile))
        if real is None:
            continue
        parent = real.rsplit("/", 1)[0]
        if parent != mp and _real_dir(session, mp, _to_windows(mp, parent)) is None:
            continue
        e = session.lstat(real)
        if e.kind == "file":
            entries.append(e)
        elif e.kind == "link":
            skipped.append(Skipped(_to_windows(mp, real), "junction or symbolic link: not followed, not deleted"))

    # Deduplicate (a file can be reached from two roots only through a link, which we never follow,
    # but keep it exact anyway), then read attributes where they decide.
    seen: dict[str, object] = {}
    for e in entries:
        seen.setdefault(e.path, e)
    entries = list(seen.values())
    readonly: set[str] = set()
    if check_readonly and not cat.opt_in and entries:
        attrs = attributes_of(entries) if attributes_of else session.ntfs_attributes(e.path for e in entries)
        readonly = {p for p, a in attrs.items() if a is not None and a & FILE_ATTRIBUTE_READONLY}
    kept = [e for e in entries if e.path not in readonly]
    for p in sorted(readonly):
        skipped.append(Skipped(_to_windows(mp, p), "read-only attribute set: kept (Windows' DeleteFile refuses it too)"))

    # Clusters freed: non-resident data only (allocated is then a whole number of clusters), and a
    # hard-linked file only when every one of its links goes.
    links_in_plan: dict[int, int] = {}
    for e in kept:
        links_in_plan[e.inode] = links_in_plan.get(e.inode, 0) + 1
    counted: set[int] = set()
    files = []
    for e in sorted(kept, key=lambda x: x.path.lower()):
        reclaim = e.allocated if cluster_size and e.allocated % cluster_size == 0 else 0
        if e.nlink > 1 and (links_in_plan[e.inode] < e.nlink or e.inode in counted):
            reclaim = 0
        counted.add(e.inode)
        files.append(FoundFile(path=_to_windows(mp, e.path), size=e.size, reclaim=reclaim, posix=e.path))
    return CategoryScan(key=cat.key, title=cat.title, opt_in=cat.opt_in, included=included,
                        folders=tuple(folders), files=tuple(files), skipped=tuple(skipped),
                        truncated=truncated)


def _mft_attribute_reader(session: Session, part: Partition) -> AttributeReader | None:
    """Windows attributes of many files from their MFT records ($STANDARD_INFORMATION), read in a
    few device reads (ntfs-3g's inode number is the MFT record number). Under TCG one xattr call
    per file costs 3-8 ms; 1,500 files in one folder take 2 reads this way. None when the volume's
    metadata does not parse (the caller then asks ntfs-3g file by file)."""
    from rescue.space.ntfs import NtfsFormatError, Volume

    if part.fstype != "ntfs":
        return None
    try:
        vol = Volume(lambda off, n: session.read_partition_bytes(part, n, off))
    except NtfsFormatError:
        return None

    def attributes_of(entries: Sequence[TreeEntry]) -> dict[str, int | None]:
        try:
            by_inode = vol.file_attributes(e.inode for e in entries)
        except NtfsFormatError:
            return session.ntfs_attributes(e.path for e in entries)
        missing = [e.path for e in entries if e.inode not in by_inode]
        out = {e.path: by_inode.get(e.inode) for e in entries}
        out.update(session.ntfs_attributes(missing) if missing else {})
        return out

    return attributes_of


def scan_volume(session: Session, part: Partition, *, include: frozenset[str] = frozenset(),
                letter: str | None = None, check_readonly: bool = True, limit: int = SCAN_LIMIT) -> VolumeScan:
    """Scan every category on one (mounted or mountable) volume; metadata only."""
    mp = session.mounted(part) or session.mount(part, write=False)
    _dir_checks.pop(session, None)          # fresh checks for every scan
    cluster = session.cluster_size(mp)
    usage = session.usage(mp)
    attributes_of = _mft_attribute_reader(session, part) if check_readonly else None
    cats = []
    for cat in CATEGORIES:
        included = (not cat.opt_in) or cat.key in include
        cats.append(scan_category(session, mp, cat, included=included, cluster_size=cluster,
                                  check_readonly=check_readonly, limit=limit, attributes_of=attributes_of))
    return VolumeScan(disk=part.disk, partition=part.number, letter=letter, cluster_size=cluster,
                      size_bytes=usage.size_bytes, free_bytes=usage.free_bytes,
                      categories=tuple(cats))


def build_plan(scan: VolumeScan) -> Plan:
    steps = []
    for c in scan.categories:
        notes = []
        if c.skipped:
            notes.append(f"{len(c.skipped)} item(s) kept: " + "; ".join(
                f"{s.path} ({s.reason})" for s in c.skipped[:5]) + (" …" if len(c.skipped) > 5 else ""))
        if c.truncated:
            notes.append(f"more than {SCAN_LIMIT:,} entries: only the first ones are listed; run cleanup again")
        if not c.included:
            steps.append(Step(action=f"space.cleanup.{c.key}", title=c.title,
                              skipped=f"opt-in: add --include {c.key} ({count(c.file_count, 'file')}, {format_bytes(c.bytes)})",
                              notes=tuple(notes)))
            continue
        if not c.files:
            steps.append(Step(action=f"space.cleanup.{c.key}", title=c.title,
                              skipped="nothing to remove" if c.folders else "folder not present",
                              notes=tuple(notes)))
            continue
        changes = tuple(DeleteFile(file=FileRef(f.path, scan.disk, scan.partition), size=f.size, backup=False,
                                   reason=f"cleanup {c.key}") for f in c.files)
        steps.append(Step(action=f"space.cleanup.{c.key}",
                          title=f"{c.title}: {count(c.file_count, 'file')}, {format_bytes(c.bytes)} (frees ~{format_bytes(c.reclaim_bytes)})",
                          changes=changes, notes=tuple(notes)))
    return Plan(title=f"Cleanup of disk {scan.disk} partition {scan.partition}"
                      + (f" ({scan.letter})" if scan.letter else ""), steps=tuple(steps))
