"""One VM's disks inside an appliance that holds several VMs' disks (fleet mode).

`rescue diagnose --each` and `rescue fix --each` attach every disk to ONE appliance (one launch,
ground rule 4) and treat each VM's disks (its OS disk, then its data disks) on their own. A
`SessionView` is the session as one VM sees it: its images are that VM's only, numbered from 0
as if they had been given alone, so layout discovery, drive letters, backups and plans work
unchanged, and nothing of one VM can name a partition of another. Calls that name a disk by
index are mapped to the session's own numbering; calls that name a partition use its appliance
device, which is the same in both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, List, Sequence, Union

from rescue.disk.records import DiskInfo, Partition
from rescue.errors import InputError

if TYPE_CHECKING:
    from rescue.disk.session import DiskSession

# Session methods whose first argument is a disk index (mapped to the session's numbering).
_BY_DISK_INDEX = ("disks_device", "read_disk_bytes", "disk_size", "write_device", "write_boot_sector",
                  "part_expand_gpt", "part_resize", "reread_partition_table")


class SessionView:
    """The disks `indices` of `session`, renumbered 0..n-1."""

    def __init__(self, session: DiskSession, indices: Sequence[int]) -> None:
        self._session = session
        self._indices = list(indices)
        self.images = [session.images[i] for i in self._indices]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._session, name)
        if name in _BY_DISK_INDEX:
            def by_index(disk: int, *args: Any, **kwargs: Any) -> Any:
                return attr(self._indices[disk], *args, **kwargs)
            return by_index
        return attr

    def disks(self) -> List[DiskInfo]:
        every = self._session.disks()
        out = []
        for local, index in enumerate(self._indices):
            d = every[index]
            out.append(replace(d, index=local, partitions=tuple(replace(p, disk=local) for p in d.partitions)))
        return out

    def partitions(self) -> List[Partition]:
        return [p for d in self.disks() for p in d.partitions]

    def partition(self, disk: int, number: int) -> Partition:
        for p in self.partitions():
            if p.disk == disk and p.number == number:
                return p
        raise InputError(f"Disk {self.images[disk].path} has no partition {number}.")

    def describe(self, part: Partition) -> str:
        return f"{self.images[part.disk].path} partition {part.number}"


# What the core works on: the command's whole DiskSession, or one VM's view of it (fleet mode).
# A SessionView forwards every other call to its session, so code typed against `Session` may use
# the DiskSession interface on either.
Session = Union["DiskSession", SessionView]
