"""Backups on the target itself, their manifests, and restoring from them.

Layout: `target.backup_root()` (\\rescue-backup on the Windows volume; `<hive>.rescue-backup` beside
a bare hive file) / `<id>` / the kept files (`NN-<name>`) + `manifest.json`. The id is the UTC time
the backup was started (20261124T071500Z), so ids sort in time order; a second backup within the
same second gets "-2", "-3"...

The manifest is written only once every kept file has been copied and checked (sha256 of the copy
on the target == sha256 of the bytes the plan was made from), and before the first change. A folder
without a manifest is therefore an incomplete backup of a run that changed nothing. Its `status`
moves: in-progress (changes may have started) -> applied | rolled-back | rollback-failed, and later
undone (with `undone_by`). Manifests are replaced atomically (temporary name + rename).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING

from rescue import __version__
from rescue.errors import DiskError, NotFoundError, VerifyError, WriteFailedError
from rescue.fileref import FileRef
from rescue.target import STAGED_SUFFIX

if TYPE_CHECKING:
    from rescue.target import Target

MANIFEST = "manifest.json"
# What a manifest may hold, so that a rescue never undoes with one it only partly understands:
#   1  files kept and deleted, NTFS log resets;
#   2  also whole disk sectors kept (`sectors`: an MBR whose active flag a run changed).
# A manifest keeps the format it was written with; `rescue undo` refuses a newer one.
MANIFEST_FORMAT = 2
TEMP_SUFFIX = STAGED_SUFFIX        # the name Target.stage writes under before the rename
class ManifestStatus(str, Enum):
    """Where a run whose backup this is got to (its manifest's `status`)."""

    INCOMPLETE = "incomplete"            # a folder without a manifest: the run stopped before changing anything
    UNREADABLE = "unreadable"            # a manifest that does not parse
    IN_PROGRESS = "in-progress"          # backup made; changes may be partly applied (a killed run)
    APPLIED = "applied"
    ROLLED_BACK = "rolled-back"          # a failure put every file back
    ROLLBACK_FAILED = "rollback-failed"
    UNDONE = "undone"                    # `rescue undo` restored it

    def __str__(self) -> str:
        return self.value


def manifest_status(text: str) -> "ManifestStatus | str":
    """The status read from a manifest: the enum, or the text as written by a newer rescue."""
    try:
        return ManifestStatus(text)
    except ValueError:
        return text


ACTIVE = (ManifestStatus.APPLIED, ManifestStatus.IN_PROGRESS, ManifestStatus.ROLLBACK_FAILED)  # undo picks these


@dataclass(frozen=True)
class BackupEntry:
    """One file a run touched, as it was before the run."""

    file: FileRef
    role: str                      # hive | log | file
    existed: bool
    size: int | None
    sha256: str | None             # None: not hashed (a file deleted without being kept)
    stored: str | None             # name of the kept copy in the backup folder; None: not kept
    after_sha256: str | None = None   # what the run left there (None: deleted, or not known)

    def to_json(self) -> dict:
        return {"file": self.file.to_json(), "role": self.role, "existed": self.existed, "size": self.size,
                "sha256": self.sha256, "stored": self.stored, "after_sha256": self.after_sha256}

    @classmethod
    def from_json(cls, d: dict) -> "BackupEntry":
        return cls(file=FileRef.from_json(d["file"]), role=d["role"], existed=d["existed"], size=d.get("size"),
                   sha256=d.get("sha256"), stored=d.get("stored"), after_sha256=d.get("after_sha256"))


@dataclass(frozen=True)
class SectorEntry:
    """A disk sector a run wrote (its MBR, sector 0), as it was before: kept whole in the backup
    folder as the file `stored`, so undo writes the same bytes back."""

    disk: int                      # index of the disk in the target, as given on the command line
    disk_path: str                 # the image as named then (for messages)
    offset: int                    # bytes from the start of the disk
    size: int
    role: str                      # mbr
    sha256: str                    # of the sector before the run
    stored: str                    # name of the kept copy in the backup folder
    after_sha256: str | None = None   # what the run left there (None: not known, a killed run)

    @property
    def label(self) -> str:
        return f"{self.disk_path or f'disk {self.disk}'} sector {self.offset // 512} ({self.role.upper()})"

    def to_json(self) -> dict:
        return {"disk": self.disk, "disk_path": self.disk_path, "offset": self.offset, "size": self.size,
                "role": self.role, "sha256": self.sha256, "stored": self.stored, "after_sha256": self.after_sha256}

    @classmethod
    def from_json(cls, d: dict) -> "SectorEntry":
        return cls(disk=d["disk"], disk_path=d.get("disk_path", ""), offset=d.get("offset", 0), size=d["size"],
                   role=d.get("role", "mbr"), sha256=d["sha256"], stored=d["stored"], after_sha256=d.get("after_sha256"))


@dataclass(frozen=True)
class SectorKeep:
    """Sector 0 of a disk to keep in a new backup: `data` is the sector as read (the copy must hash
    to the same)."""

    disk: int
    disk_path: str
    data: bytes
    role: str = "mbr"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    id: str
    kind: str                      # apply | undo | expand (grew the disk: nothing to restore)
    created: str                   # ISO 8601 UTC
    status: "ManifestStatus | str"  # a ManifestStatus (text only when a newer rescue wrote one we do not know)
    target: str                    # what was given as TARGET
    plan: dict                     # plan.to_json() (apply) or the restore list (undo)
    files: tuple[BackupEntry, ...] = ()
    tool_version: str = __version__
    undoes: str | None = None
    undone_by: str | None = None
    updated: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    ntfs_resets: tuple[dict, ...] = ()   # NTFS log resets the run made (rescue.safety.ntfs_reset); never undone
    sectors: tuple[SectorEntry, ...] = ()  # disk sectors the run wrote (an MBR), kept whole
    format: int = MANIFEST_FORMAT        # MANIFEST_FORMAT of the rescue that wrote it

    @property
    def title(self) -> str:
        return str(self.plan.get("title", "")) if isinstance(self.plan, dict) else ""

    @property
    def kept(self) -> int:
        return sum(1 for e in self.files if e.stored) + len(self.sectors)

    def to_json(self) -> dict:
        return {"format": self.format, "tool": "rescue", "tool_version": self.tool_version, "id": self.id,
                "kind": self.kind, "created": self.created, "updated": self.updated, "status": self.status,
                "target": self.target, "undoes": self.undoes, "undone_by": self.undone_by,
                "notes": list(self.notes), "files": [e.to_json() for e in self.files], "plan": self.plan,
                "ntfs_resets": list(self.ntfs_resets), "sectors": [e.to_json() for e in self.sectors]}

    @classmethod
    def from_json(cls, d: dict) -> "Manifest":
        return cls(id=d["id"], kind=d.get("kind", "apply"), created=d.get("created", ""), status=manifest_status(d.get("status", "?")),
                   target=d.get("target", ""), plan=d.get("plan") or {},
                   files=tuple(BackupEntry.from_json(e) for e in d.get("files", ())),
                   tool_version=d.get("tool_version", "?"), undoes=d.get("undoes"), undone_by=d.get("undone_by"),
                   updated=d.get("updated"), notes=tuple(d.get("notes", ())),
                   ntfs_resets=tuple(d.get("ntfs_resets") or ()),
                   sectors=tuple(SectorEntry.from_json(e) for e in d.get("sectors") or ()),
                   format=_format_of(d))

    def summary_json(self) -> dict:
        """The stable keys `rescue backups --json` prints."""
        return {"id": self.id, "created": self.created, "kind": self.kind, "status": self.status,
                "title": self.title, "files": len(self.files), "kept": self.kept, "undoes": self.undoes,
                "undone_by": self.undone_by, "tool_version": self.tool_version}


@dataclass(frozen=True)
class Keep:
    """A file to record in a new backup: `keep` copies it; `sha256` is what the copy must hash to
    (the bytes the plan was made from), or None to take the file's current hash on the target."""

    file: FileRef
    role: str
    keep: bool
    size: int | None = None
    sha256: str | None = None


# --- paths -------------------------------------------------------------------------------------
def child(ref: FileRef, name: str) -> FileRef:
    sep = "/" if ref.on_host else "\\"
    return FileRef(ref.path.rstrip(sep) + sep + name, ref.disk, ref.partition)


def backup_dir(target: Target, backup_id: str) -> FileRef:
    return child(target.backup_root(), backup_id)


def location(target: Target, backup_id: str) -> str:
    """Where a backup is, in words a user can find it by."""
    d = backup_dir(target, backup_id)
    if d.on_host:
        return d.path
    layout = target.layout
    letter = layout.letter_of(*d.volume) if layout is not None else None
    return f"{letter}{d.path}" if letter else target.describe(d)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _basename(ref: FileRef) -> str:
    return (Path(ref.path).name if ref.on_host else PureWindowsPath(ref.path).name) or "file"


# --- manifests ---------------------------------------------------------------------------------
def write_manifest(target: Target, manifest: Manifest, *, durable: bool = True, first: bool = False) -> Manifest:
    """Replace the backup's manifest atomically (upload under a temporary name, rename). With
    durable=False the caller's next sync makes the rename durable (the "applied" manifest: the
    session's close). first=True: a new backup's first manifest, written straight to its name and
    not synced: there is no older manifest to keep whole, and the caller syncs before it changes
    anything (a crash before that leaves a backup folder that lists as incomplete, and no change)."""
    manifest = replace(manifest, updated=utc_now())
    host = target.workdir / f"manifest-{manifest.id}.json"
    host.write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    ref = child(backup_dir(target, manifest.id), MANIFEST)
    if first:
        target.write_bytes(ref, host.read_bytes())
    else:
        target.upload_atomic(host, ref, durable=durable)
    return manifest


# Early versions of `rescue expand` kept the partition table bytes in "expand-<UTC time>" folders
# without a manifest; the disk was grown all the same.
LEGACY_EXPAND_PREFIX = "expand-"


def read_manifest(target: Target, backup_id: str) -> Manifest:
    ref = child(backup_dir(target, backup_id), MANIFEST)
    if not target.exists(ref) and backup_id.startswith(LEGACY_EXPAND_PREFIX):
        stamp = backup_id[len(LEGACY_EXPAND_PREFIX):]
        return Manifest(id=backup_id, kind="expand", created=stamp, status=ManifestStatus.APPLIED, target="",
                        plan={"title": "rescue expand by an older rescue (partition table bytes kept, no manifest)"},
                        tool_version="?")
    if not target.exists(ref):
        return Manifest(id=backup_id, kind="?", created="", status=ManifestStatus.INCOMPLETE, target="", plan={})
    # Downloaded rather than read in one message: a cleanup plan's manifest can be megabytes.
    local = target.local_copy(ref, fresh=True)
    try:
        data = json.loads(Path(local).read_text())
    except (OSError, ValueError):
        return Manifest(id=backup_id, kind="?", created="", status=ManifestStatus.UNREADABLE, target="", plan={})
    return Manifest.from_json(data)


def _format_of(d: dict) -> int:
    value = d.get("format", 1)
    return value if isinstance(value, int) and value > 0 else MANIFEST_FORMAT + 1   # unknown: newer


def list_backups(target: Target) -> list[Manifest]:
    """Every backup of the target, oldest first (ids are UTC timestamps)."""
    root = target.backup_root()
    try:
        names = target.listdir(root)
    except NotFoundError:
        return []
    # In time order: a legacy "expand-<time>" folder sorts by its time, not its prefix.
    ordered = sorted(names, key=lambda n: n[len(LEGACY_EXPAND_PREFIX):] if n.startswith(LEGACY_EXPAND_PREFIX) else n)
    return [read_manifest(target, name) for name in ordered if not name.endswith(TEMP_SUFFIX)]


def new_backup_id(target: Target) -> str:
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return unique_id(base, set(target.listdir(target.backup_root())))


def unique_id(base: str, existing: set[str]) -> str:
    """`base` (a UTC time stamp), or "-2", "-3"... after it when a backup of that second exists."""
    candidate, n = base, 1
    while candidate in existing:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# --- making a backup ---------------------------------------------------------------------------
def make_backup(target: Target, keeps: list[Keep], *, kind: str, target_label: str, plan: dict,
                undoes: str | None = None, notes: tuple[str, ...] = (), synced: bool = True,
                extra: dict[str, bytes] | None = None, ntfs_resets: tuple[dict, ...] = (),
                sectors: tuple[SectorKeep, ...] = ()) -> Manifest:
    """Copy every kept file into a new backup folder on the target, check each copy, then write the
    manifest (status in-progress). Raises WriteFailedError (nothing of the plan written yet).
    synced=False: the backup is on the disk only after the caller's next sync (which it must make
    before changing any file: the apply engine stages its new files first, then syncs once).
    `extra`: {name: bytes} stored in the folder for the record (not files to restore: the restart
    area of a reset NTFS log), listed in the manifest's `ntfs_resets`. `sectors`: disk sectors (an
    MBR) kept whole as files `NN-mbr-disk<d>.bin`, checked like the files and listed in `sectors`."""
    root = target.backup_root()
    backup_id = new_backup_id(target)
    folder = child(root, backup_id)
    target.makedirs(folder)                  # and the root with it
    entries: list = []
    copied: list[tuple[int, Keep, str]] = []
    for i, k in enumerate(keeps):
        if not k.keep:
            entries.append(BackupEntry(k.file, k.role, existed=True, size=k.size, sha256=k.sha256, stored=None))
            continue
        if not target.exists(k.file):
            entries.append(BackupEntry(k.file, k.role, existed=False, size=None, sha256=None, stored=None))
            continue
        name = f"{i:02d}-{_basename(k.file)}"
        try:
            if k.size == 0 and target.size(k.file) == 0:
                # Empty files (mostly hive logs) are backed up by creating an empty file: a cp costs
                # ~50 ms under TCG, a size check and an empty write ~5 ms.
                target.write_bytes(child(folder, name), b"")
            else:
                target.copy(k.file, child(folder, name))
        except (OSError, DiskError) as exc:
            raise WriteFailedError(f"Could not back up {target.describe(k.file)} to {location(target, backup_id)} "
                                   f"({_short(exc)}); nothing was changed.") from None
        entries.append(None)                 # filled in below, in plan order
        copied.append((len(entries) - 1, k, name))
    kept_sectors: list[tuple[SectorKeep, str]] = []
    for j, sk in enumerate(sectors, len(keeps)):
        name = f"{j:02d}-{sk.role}-disk{sk.disk}.bin"
        try:
            target.write_bytes(child(folder, name), sk.data)
        except (OSError, DiskError) as exc:
            raise WriteFailedError(f"Could not back up sector 0 of {sk.disk_path} to {location(target, backup_id)} "
                                   f"({_short(exc)}); nothing was changed.") from None
        kept_sectors.append((sk, name))
    for name, data in (extra or {}).items():
        target.write_bytes(child(folder, name), data)
    # Every copy checked against the file the plan was made from, the folder hashed in one call.
    try:
        sums = target.sha256_folder(folder) if copied or kept_sectors else {}
    except (OSError, DiskError) as exc:
        raise WriteFailedError(f"Could not read back the backup in {location(target, backup_id)} "
                               f"({_short(exc)}); nothing was changed.") from None
    for slot, k, name in copied:
        got = sums.get(name) or target.sha256(child(folder, name))
        want = k.sha256 or target.sha256(k.file)
        if got != want:
            raise WriteFailedError(f"The backup copy of {target.describe(k.file)} does not match the file the plan "
                                   "was made from (it changed meanwhile?); nothing was changed.",
                                   hint="Run the command again.")
        size = k.size if k.size is not None else target.size(child(folder, name))
        entries[slot] = BackupEntry(k.file, k.role, existed=True, size=size, sha256=got, stored=name)
    sector_entries = []
    for sk, name in kept_sectors:
        want = sha256_bytes(sk.data)
        if (sums.get(name) or target.sha256(child(folder, name))) != want:
            raise WriteFailedError(f"The backup copy of sector 0 of {sk.disk_path} reads back different from the "
                                   "sector; nothing was changed.", hint="Run the command again.")
        sector_entries.append(SectorEntry(sk.disk, sk.disk_path, 0, len(sk.data), sk.role, want, name))
    # One sync makes the copies and the manifest durable together (each sync costs ~0.15 s under
    # TCG); before it, a crash leaves at worst a folder without a readable manifest, and no change.
    manifest = Manifest(id=backup_id, kind=kind, created=utc_now(), status=ManifestStatus.IN_PROGRESS, target=target_label,
                        plan=plan, files=tuple(entries), undoes=undoes, notes=notes, ntfs_resets=tuple(ntfs_resets),
                        sectors=tuple(sector_entries))
    manifest = write_manifest(target, manifest, first=True)
    if synced:
        target.sync()
    return manifest


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# --- restoring ---------------------------------------------------------------------------------
def restore_entry(target: Target, backup_id: str, entry: BackupEntry) -> str:
    """Put one file back as the backup recorded it; returns what was done ("restored", "removed",
    "identical", "not kept"). Kept files are copied next to the original under a temporary name and
    renamed over it (a crash leaves the old or the restored file), then verified by sha256."""
    ref = entry.file
    if entry.stored:
        if target.exists(ref) and target.sha256(ref) == entry.sha256:
            drop_temp(target, ref)
            return "identical"
        tmp = target.companion(ref, TEMP_SUFFIX)
        target.copy(child(backup_dir(target, backup_id), entry.stored), tmp)
        target.sync()
        target.rename(tmp, ref)
        target.sync()
        got = target.sha256(ref)
        if got != entry.sha256:
            raise VerifyError(f"{target.describe(ref)} was restored from backup {backup_id} but reads back "
                              f"different (sha256 {got[:12]}…, expected {(entry.sha256 or '')[:12]}…).")
        return "restored"
    if not entry.existed:
        drop_temp(target, ref)
        if target.exists(ref):
            target.delete(ref)
            return "removed"
        return "identical"
    return "not kept"


def restore_sector(target: Target, backup_id: str, entry: SectorEntry) -> str:
    """Write a kept sector back ("restored"), or nothing when the disk already holds it
    ("identical"); then read it back. The kept copy is checked against the manifest first, so a
    damaged backup never reaches the partition table."""
    now = target.read_boot_sector(entry.disk)
    if sha256_bytes(now) == entry.sha256:
        return "identical"
    data = target.read_bytes(child(backup_dir(target, backup_id), entry.stored))
    if len(data) != entry.size or sha256_bytes(data) != entry.sha256:
        raise VerifyError(f"The copy of {entry.label} in backup {backup_id} does not match its manifest; "
                          "the sector was not written.")
    target.write_boot_sector(entry.disk, data)
    got = target.read_boot_sector(entry.disk)
    if got != data:
        raise VerifyError(f"{entry.label} was restored from backup {backup_id} but reads back different.")
    return "restored"


def drop_temp(target: Target, ref: FileRef) -> None:
    """A run killed mid-upload leaves `<file>.rescue-new` beside the file; remove it."""
    tmp = target.companion(ref, TEMP_SUFFIX)
    try:
        if target.exists(tmp):
            target.delete(tmp)
    except (OSError, DiskError, NotFoundError):
        pass
