"""Windows layout discovery: facts collected once into an immutable record, then acted on.

(virt-v2v's approach: inspect once, then convert.) Everything here reads; nothing writes. A fact
that cannot be read (no SOFTWARE hive, a volume that will not mount) becomes "unknown" (None) with a
note, never a failure of the whole command.

Sources: Gen1/Gen2 boot paths per Azure's article (PROCEDURE.md) with the Gen2 correction (the BCD
used by UEFI firmware is \\EFI\\Microsoft\\Boot\\BCD on the ESP); MountedDevices data formats per
libyal winreg-kb "Mounted devices" (MBR: 4-byte disk signature + 8-byte partition byte offset;
GPT: "DMIO:ID:" + 16-byte partition GUID).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rescue.errors import NotWindowsError, RescueError, UsageError

if TYPE_CHECKING:
    from rescue.ntfs.state import NtfsEvidence
    from rescue.disk.records import DiskInfo
    from rescue.disk.view import Session

BCD_GEN2 = "\\EFI\\Microsoft\\Boot\\BCD"
BCD_GEN1 = "\\Boot\\BCD"
SYSTEM_HIVE = "\\Windows\\System32\\config\\SYSTEM"
SOFTWARE_HIVE = "\\Windows\\System32\\config\\SOFTWARE"


class VolumeRole(str, Enum):
    """What a volume is for, as Windows and its firmware use it."""

    ESP = "esp"
    MSR = "msr"
    SYSTEM_RESERVED = "system-reserved"
    WINDOWS = "windows"
    RECOVERY = "recovery"
    DATA = "data"
    BITLOCKER = "bitlocker"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


class VolumeState(str, Enum):
    """Whether a volume can be read and written, from its own metadata (rescue.ntfs for NTFS)."""

    OK = "ok"
    BITLOCKER = "bitlocker"
    HIBERNATED = "hibernated"
    FAST_STARTUP = "fast-startup"
    UNCLEAN = "unclean"
    DIRTY = "dirty"
    UNMOUNTABLE = "unmountable"
    UNFORMATTED = "unformatted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Volume:
    disk: int
    partition: int
    fstype: str | None
    label: str | None
    size_bytes: int               # partition size (or filesystem size when mounted)
    free_bytes: int | None        # None: not mounted / unknown
    letter: str | None            # "C:" as Windows names it (MountedDevices), or None
    role: VolumeRole
    state: VolumeState
    note: str | None = None
    ntfs: NtfsEvidence | None = None     # of an NTFS volume (None: not NTFS)

    @property
    def used_bytes(self) -> int | None:
        return None if self.free_bytes is None else self.size_bytes - self.free_bytes


@dataclass(frozen=True)
class WindowsInstall:
    disk: int
    partition: int
    product: str | None           # "Windows Server 2019 Datacenter" (SOFTWARE CurrentVersion ProductName)
    version: str | None           # "10.0"
    build: int | None             # CurrentBuildNumber
    control_set: int | None       # Select\Current
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BcdLocation:
    disk: int
    partition: int
    path: str                     # as on its volume, e.g. "\\EFI\\Microsoft\\Boot\\BCD"


@dataclass(frozen=True)
class SystemPartition:
    """The partition the firmware boots from, found even when it holds no BCD store (a store that
    is missing must be rebuilt somewhere): Gen2 the EFI system partition; Gen1 the active
    partition, else "System Reserved", else the Windows partition itself (Windows Setup's rules,
    Microsoft "BIOS/MBR-based hard drive partitions")."""

    disk: int
    partition: int
    how: str                      # esp | active | system-reserved | windows
    active: bool = False          # MBR: marked active (bootable) in the partition table


@dataclass(frozen=True)
class LetterMapping:
    letter: str                   # "C:"
    disk: int | None              # None when the volume is not on an attached disk
    partition: int | None
    raw: str                      # the MountedDevices data, hex, for the record


@dataclass(frozen=True)
class WindowsLayout:
    disk_paths: tuple[str, ...]
    disk_formats: tuple[str, ...]
    partition_tables: tuple[str | None, ...]
    generation: str | None         # "gen1" | "gen2" | None
    volumes: tuple[Volume, ...]
    windows: tuple[WindowsInstall, ...]
    root: WindowsInstall | None    # the install commands act on
    bcd: BcdLocation | None
    letters: tuple[LetterMapping, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    system: SystemPartition | None = None   # where a store is (or would be rebuilt)

    def volume(self, disk: int, partition: int) -> Volume | None:
        return next((v for v in self.volumes if v.disk == disk and v.partition == partition), None)

    def volume_by_letter(self, letter: str) -> Volume | None:
        letter = letter.upper().rstrip("\\").rstrip(":") + ":"
        return next((v for v in self.volumes if v.letter == letter), None)

    def letter_of(self, disk: int, partition: int) -> str | None:
        v = self.volume(disk, partition)
        return v.letter if v else None

    def require_root(self) -> WindowsInstall:
        if self.root is None:
            locked = [v for v in self.volumes if v.state == "bitlocker"]
            if locked:
                from rescue.errors import UnsafeStateError

                v = locked[0]
                raise UnsafeStateError(
                    f"{self.disk_paths[v.disk]} partition {v.partition} is BitLocker-encrypted, so the Windows "
                    "on it cannot be read or repaired offline.",
                    hint="Unlock it first (e.g. `dislocker` with the recovery key, or Azure Disk Encryption's "
                         "unlock steps) and give the unlocked volume; nothing was written.")
            raise NotWindowsError("No Windows installation was found on the given disk(s).",
                                  hint="Give the VM's OS disk; add data disks after it.")
        return self.root


def _guid_from_le(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)).upper()


def parse_mounted_devices(values: list[tuple[str, bytes]], disks: Sequence[DiskInfo]) -> list[LetterMapping]:
    """Map `\\DosDevices\\X:` values to attached partitions.

    MBR data is 12 bytes: disk signature (u32 LE) + partition start offset in bytes (u64 LE).
    GPT data is "DMIO:ID:" + the partition's GUID (16 bytes, mixed-endian as GUIDs are stored).
    Other forms (removable media, "\\??\\..." strings) are kept with disk None.
    """
    out = []
    for name, data in values:
        if not name.upper().startswith("\\DOSDEVICES\\") or len(name) < 14 or name[13] != ":":
            continue
        letter = name[12].upper() + ":"
        disk = part = None
        if len(data) == 12:
            sig, offset = struct.unpack("<IQ", data)
            for d in disks:
                if d.table == "mbr" and d.mbr_signature == sig:
                    for p in d.partitions:
                        if p.start == offset:
                            disk, part = d.index, p.number
        elif len(data) == 24 and data[:8] == b"DMIO:ID:":
            guid = _guid_from_le(data[8:24])
            for d in disks:
                for p in d.partitions:
                    if p.gpt_guid and p.gpt_guid.upper() == guid:
                        disk, part = d.index, p.number
        out.append(LetterMapping(letter=letter, disk=disk, partition=part, raw=data.hex()))
    return sorted(out, key=lambda m: m.letter)


def discover(session: Session, *, root: str | None = None, workdir: Path | None = None,
             fetched: dict | None = None) -> WindowsLayout:
    """Collect the layout of the attached disks through `session` (read-only mounts)."""
    from rescue.layout_scan import scan

    return scan(session, root=root, workdir=workdir, fetched=fetched)
