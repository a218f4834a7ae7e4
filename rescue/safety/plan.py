"""Typed plans: what a repair intends to change, with the before and after it expects.

A repair module produces a `Plan` (check → plan); the safety engine (`rescue.safety.apply`) backs up
every file the plan touches, applies it as a transaction and verifies it by reading back. `--dry-run`
prints the plan and stops. Changes name files by `FileRef` (disk + partition + Windows path on that
volume, or a bare host file), never by appliance device names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from rescue.disk import ptable
from rescue.errors import UsageError
from rescue.fileref import FileRef  # noqa: F401  (changes name their files by it)
from rescue.hive.values import decode_value, type_name


def _show(type_: int | None, data: bytes | None):
    if data is None or type_ is None:
        return None
    v = decode_value(type_, data)
    return v.hex() if isinstance(v, (bytes, bytearray)) else v


@dataclass(frozen=True)
class SetValue:
    """Create or replace one registry value (hive file `file`, key path relative to the hive root)."""

    file: FileRef
    key: str
    name: str
    type: int
    data: bytes
    before_type: int | None = None       # None: the value does not exist yet
    before_data: bytes | None = None
    reason: str = ""
    kind: str = field(default="set-value", init=False)

    def describe(self) -> str:
        return f"set {self.key}\\{self.name or '(Default)'} = {_show(self.type, self.data)!r} ({type_name(self.type)})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file.to_json(), "key": self.key, "name": self.name,
                "type": type_name(self.type), "data_hex": self.data.hex(),
                "before": None if self.before_data is None or self.before_type is None else {
                    "type": type_name(self.before_type), "data_hex": self.before_data.hex(),
                    "value": _show(self.before_type, self.before_data)},
                "after": {"type": type_name(self.type), "value": _show(self.type, self.data)},
                "reason": self.reason}


@dataclass(frozen=True)
class DeleteValue:
    file: FileRef
    key: str
    name: str
    before_type: int
    before_data: bytes
    reason: str = ""
    kind: str = field(default="delete-value", init=False)

    def describe(self) -> str:
        return f"delete {self.key}\\{self.name or '(Default)'} (was {_show(self.before_type, self.before_data)!r})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file.to_json(), "key": self.key, "name": self.name,
                "before": {"type": type_name(self.before_type), "data_hex": self.before_data.hex(),
                           "value": _show(self.before_type, self.before_data)},
                "after": None, "reason": self.reason}


@dataclass(frozen=True)
class DeleteKey:
    file: FileRef
    key: str
    reason: str = ""
    kind: str = field(default="delete-key", init=False)

    def describe(self) -> str:
        return f"delete key {self.key} and everything below it"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file.to_json(), "key": self.key, "reason": self.reason}


@dataclass(frozen=True)
class DeleteFile:
    """Delete a file. `backup` says whether the engine keeps a copy (a page file is never kept:
    it is large and Windows recreates it; its registry settings are what we back up)."""

    file: FileRef
    size: int
    backup: bool = False
    reason: str = ""
    kind: str = field(default="delete-file", init=False)

    def describe(self) -> str:
        return f"delete file {self.file.path} ({self.size:,} bytes{'' if self.backup else ', not backed up'})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file.to_json(), "size": self.size, "backup": self.backup,
                "reason": self.reason}


@dataclass(frozen=True)
class WriteFile:
    file: FileRef
    data: bytes
    reason: str = ""
    kind: str = field(default="write-file", init=False)

    def describe(self) -> str:
        return f"write file {self.file.path} ({len(self.data):,} bytes)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file.to_json(), "size": len(self.data), "reason": self.reason}


@dataclass(frozen=True)
class SetActivePartition:
    """Mark primary partition `partition` of MBR disk `disk` active (boot indicator 0x80) and clear
    the indicator of any other entry, in the disk's sector 0; nothing else in the sector changes.
    Not a file: the engine keeps the whole 512-byte sector in the backup (role "mbr"), writes it
    with one raw write, reads it back, and `rescue undo` writes the kept sector back byte for byte.
    `before` is sector 0 as read when planning: the engine refuses to write if the disk holds other
    bytes by then. Made with `SetActivePartition.of` (which refuses a GPT's protective MBR)."""

    disk: int
    partition: int
    before: bytes
    after: bytes
    disk_label: str = ""                 # the image as the user named it, for messages
    reason: str = ""
    kind: str = field(default="set-active-partition", init=False)

    @classmethod
    def of(cls, disk: int, partition: int, sector: bytes, *, disk_label: str = "", reason: str = "") -> "SetActivePartition":
        try:
            after = ptable.with_active(sector, partition)
        except ptable.NotAnMbrError as exc:
            raise UsageError(f"Cannot mark partition {partition} of {disk_label or f'disk {disk}'} active: {exc}.",
                             hint="Nothing was written.") from None
        return cls(disk, partition, bytes(sector), after, disk_label, reason)

    @property
    def where(self) -> str:
        return f"{self.disk_label or f'disk {self.disk}'} sector 0 (MBR)"

    def changed_offsets(self) -> tuple[int, ...]:
        return tuple(i for i, (a, b) in enumerate(zip(self.before, self.after)) if a != b)

    def describe(self) -> str:
        cleared = [n for n, (a, b) in enumerate(zip(ptable.boot_indicators(self.before),
                                                    ptable.boot_indicators(self.after)), 1)
                   if a == ptable.ACTIVE and b != ptable.ACTIVE]
        also = f", clear it on partition {', '.join(map(str, cleared))}" if cleared else ""
        return f"set the MBR boot indicator of partition {self.partition} to 0x80 (active){also}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": None, "disk": self.disk, "disk_path": self.disk_label,
                "partition": self.partition, "offset": 0, "size": len(self.before),
                "boot_indicators_before": [f"0x{b:02x}" for b in ptable.boot_indicators(self.before)],
                "boot_indicators_after": [f"0x{b:02x}" for b in ptable.boot_indicators(self.after)],
                "changed_offsets": list(self.changed_offsets()), "reason": self.reason}


FileChange = Union[SetValue, DeleteValue, DeleteKey, DeleteFile, WriteFile]
Change = Union[FileChange, SetActivePartition]
HiveChange = Union[SetValue, DeleteValue, DeleteKey]       # the changes made inside a hive
HIVE_CHANGES = (SetValue, DeleteValue, DeleteKey)
SECTOR_CHANGES = (SetActivePartition,)


@dataclass(frozen=True)
class Step:
    """One repair action's part of a plan: its name (e.g. "bcd.badmemory"), a human title, and changes.
    A step with no changes says why it was skipped (`skipped`)."""

    action: str
    title: str
    changes: tuple[Change, ...] = ()
    skipped: str | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"action": self.action, "title": self.title, "skipped": self.skipped,
                "notes": list(self.notes), "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class Prelude:
    """Work that is not a file edit (growing the disk's partition and NTFS, rescue.space.expand),
    which the plan shows and the one confirmation covers. The engine runs it after the confirmation
    and before the backup, so the backup and the edits can use the room it makes; the command that
    owns it opened the disk through a staging overlay (rescue.space.staging), which is why a later
    failure cannot leave it half done on the real image."""

    action: str
    title: str
    lines: tuple[str, ...]
    run: Callable[[], object] = field(compare=False, repr=False)   # returns a result with .to_json()
    data: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"action": self.action, "title": self.title, "steps": list(self.lines), **self.data}


@dataclass(frozen=True)
class Plan:
    title: str
    steps: tuple[Step, ...] = ()
    prelude: Prelude | None = None

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for s in self.steps for c in s.changes)

    @property
    def empty(self) -> bool:
        return not self.changes and self.prelude is None

    @property
    def file_changes(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if not isinstance(c, SECTOR_CHANGES))

    @property
    def sector_changes(self) -> tuple[SetActivePartition, ...]:
        return tuple(c for c in self.changes if isinstance(c, SECTOR_CHANGES))

    def files_touched(self) -> tuple[FileRef, ...]:
        seen: dict[FileRef, None] = {}
        for c in self.file_changes:
            seen.setdefault(c.file, None)
        return tuple(seen)

    def to_json(self) -> dict:
        return {"title": self.title, "steps": [s.to_json() for s in self.steps],
                "files": [f.to_json() for f in self.files_touched()],
                "sectors": [{"disk": c.disk, "disk_path": c.disk_label, "offset": 0, "size": len(c.before)}
                            for c in self.sector_changes],
                "prelude": self.prelude.to_json() if self.prelude else None}
