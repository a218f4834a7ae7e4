"""What a DiskSession reports: plain records, no appliance calls (rescue.disk.partitions and
rescue.disk.filesystem make them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rescue.disk.formats import DiskImage


@dataclass(frozen=True)
class Partition:
    disk: int                 # index into DiskSession.images
    number: int               # 1-based, as users and Windows' "Partition N" count
    device: str               # appliance device, internal only
    start: int                # byte offset on the disk
    size: int
    mbr_type: int | None = None
    bootable: bool = False
    gpt_type: str | None = None
    gpt_guid: str | None = None
    name: str | None = None
    fstype: str | None = None
    label: str | None = None

    @property
    def key(self) -> str:
        """Names the partition's mount point: from its appliance device, which is unique in the
        appliance even when several VMs' disks share it (fleet mode numbers each VM's disks from 0)."""
        return self.device.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DiskInfo:
    index: int
    image: DiskImage
    device: str
    size: int
    table: str | None         # "mbr", "gpt" or None
    mbr_signature: int | None
    gpt_guid: str | None
    partitions: tuple[Partition, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class VolumeUsage:
    size_bytes: int
    free_bytes: int

    @property
    def used_bytes(self) -> int:
        return self.size_bytes - self.free_bytes


@dataclass(frozen=True)
class TreeEntry:
    """One directory entry as lstat(2) sees it inside the appliance."""

    path: str            # appliance path
    kind: str            # "file" | "dir" | "link" (junctions and reparse points too) | "other"
    size: int            # st_size
    allocated: int       # st_blocks * 512: clusters for non-resident data, a small number if resident
    inode: int           # ntfs-3g: the MFT record number
    nlink: int
    mtime: float | None = None   # st_mtime, seconds since the epoch (UTC; ntfs-3g: NTFS last write time)
