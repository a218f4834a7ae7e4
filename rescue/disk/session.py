"""`DiskSession`: one libguestfs appliance over a command's disks (ground rule 4), read-only unless
a fix command asks for writes, and the objects that work through it.

rescue.disk is the only package that talks to libguestfs (ground rule 5); inside it, each module
has one concern: `appliance` (launch, call watchdog, error translation, shutdown), `partitions`
(tables and filesystem types), `filesystem` (one volume: mount, caches, files), `walk` (metadata
walks), `blockdev` (raw reads and writes, growing partitions and NTFS) and `builder` (scratch disks
for samples and tests only). Everything above works with the typed records of rescue.disk.records,
user-facing disk paths and 1-based partition numbers, never with the appliance's /dev/sdX names,
and catches DiskError / DiskNotFoundError, never a libguestfs RuntimeError.

The session owns those objects and forwards the calls commands make, so a caller holds one
session. File methods take appliance paths below a volume's mount point (/d<disk>p<partition>,
from `mount`), resolved case-insensitively as Windows would, and go to that volume's Filesystem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from rescue.disk.appliance import Appliance
from rescue.disk.blockdev import BlockDevices
from rescue.disk.filesystem import HIBERNATION_ADVICE, Filesystem
from rescue.disk.formats import DiskImage
from rescue.disk.partitions import PartitionTables
from rescue.disk.processes import reap_orphans
from rescue.disk.records import DiskInfo, Partition, TreeEntry, VolumeUsage

# Re-exported: callers import the records and the reaper from here.
__all__ = ["DiskSession", "DiskInfo", "Partition", "TreeEntry", "VolumeUsage", "reap_orphans",
           "HIBERNATION_ADVICE"]


class DiskSession:
    """One libguestfs appliance over the given disks. Use as a context manager."""

    def __init__(self, images: Iterable[DiskImage], *, write: bool = False, accel: str | None = None,
                 notify: Callable[[str], None] | None = None):
        self.appliance = Appliance(images, write=write, accel=accel, notify=notify)
        self.tables = PartitionTables(self.appliance)
        self.blockdev = BlockDevices(self.appliance, self.tables, self.devices_changed)
        self._volumes: dict[str, Filesystem] = {}       # by Partition.key

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def images(self) -> list[DiskImage]:
        return self.appliance.images

    @property
    def write(self) -> bool:
        return self.appliance.write

    @property
    def accel_used(self) -> str | None:
        return self.appliance.accel_used

    @property
    def launch_seconds(self) -> float:
        return self.appliance.launch_seconds

    @property
    def g(self):
        """The appliance handle, for tests that need a call the product does not make."""
        return self.appliance.g

    def launch(self) -> "DiskSession":
        self.appliance.launch()
        return self

    def close(self) -> None:
        self.appliance.close()

    def __enter__(self) -> "DiskSession":
        if not self.appliance.launched:
            self.launch()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sync(self) -> None:
        self.appliance.sync()

    # --- cache invalidation -----------------------------------------------------------------------
    def devices_changed(self) -> None:
        """A table or a device below the volumes was written: read the tables again, probe and list
        every volume again."""
        self.tables.forget()
        for fs in self._volumes.values():
            fs.device_changed()

    def tree_changed(self, path: str) -> None:
        """Something outside Filesystem's own methods changed the tree holding `path`."""
        self._volume_at(path).tree_changed()

    # --- disks and partitions ---------------------------------------------------------------------
    def disks(self) -> list[DiskInfo]:
        return self.tables.disks()

    def partitions(self) -> list[Partition]:
        return self.tables.partitions()

    def partition(self, disk: int, number: int) -> Partition:
        return self.tables.partition(disk, number)

    def disks_device(self, disk: int) -> str:
        return self.tables.device(disk)

    def disk_size(self, disk: int) -> int:
        return self.tables.disks()[disk].size

    def describe(self, part: Partition) -> str:
        # By its device, not part.disk: a fleet view's records number the disks per VM.
        return f"{self.images[self.tables.disk_of(part.device)].path} partition {part.number}"

    # --- volumes ----------------------------------------------------------------------------------
    def volume(self, part: Partition) -> Filesystem:
        """The volume on `part` (one object per partition for the launch; a record read after a
        resize replaces the old one, the mount and caches stay)."""
        fs = self._volumes.get(part.key)
        if fs is None:
            fs = self._volumes[part.key] = Filesystem(self.appliance, part, label=self.describe(part))
        elif fs.part != part:
            fs.part = part
        return fs

    def _volume_at(self, path: str) -> Filesystem:
        key = path.split("/", 2)[1] if path.startswith("/") else ""
        fs = self._volumes.get(key)
        if fs is None or fs.mountpoint is None:
            raise RuntimeError(f"{path} is not below a mounted volume")     # programming error
        return fs

    def ntfs_state(self, part: Partition, *, rw: bool = True) -> str:
        return self.volume(part).ntfs_state(rw=rw)

    def mount(self, part: Partition, *, write: bool = False) -> str:
        return self.volume(part).mount(write=write)

    def mounted(self, part: Partition) -> str | None:
        fs = self._volumes.get(part.key)
        return fs.mountpoint if fs else None

    def umount(self, part: Partition) -> None:
        self.volume(part).umount()

    def usage(self, mountpoint: str) -> VolumeUsage:
        return self._volume_at(mountpoint).usage(mountpoint)

    def cluster_size(self, mountpoint: str) -> int:
        return self._volume_at(mountpoint).cluster_size(mountpoint)

    # --- files: forwarded to the volume the path is on --------------------------------------------
    def resolve(self, path: str) -> str | None: return self._volume_at(path).resolve(path)
    def is_file(self, path: str) -> bool: return self._volume_at(path).is_file(path)
    def is_dir(self, path: str) -> bool: return self._volume_at(path).is_dir(path)
    def listdir(self, path: str) -> list[str]: return self._volume_at(path).listdir(path)
    def file_size(self, path: str) -> int: return self._volume_at(path).file_size(path)
    def read_file(self, path: str) -> bytes: return self._volume_at(path).read_file(path)
    def read_head(self, path: str, size: int) -> bytes: return self._volume_at(path).read_head(path, size)
    def download(self, path: str, host_path: str | Path) -> None: self._volume_at(path).download(path, host_path)
    def upload(self, host_path: str | Path, path: str) -> None: self._volume_at(path).upload(host_path, path)
    def write_file(self, path: str, data: bytes) -> None: self._volume_at(path).write_file(path, data)
    def rename(self, src: str, dst: str) -> None: self._volume_at(src).rename(src, dst)
    def copy(self, src: str, dst: str) -> None: self._volume_at(dst).copy(src, dst)
    def remove(self, path: str) -> None: self._volume_at(path).remove(path)
    def makedirs(self, path: str) -> None: self._volume_at(path).makedirs(path)
    def sha256(self, path: str) -> str: return self._volume_at(path).sha256(path)
    def sha256_folder(self, path: str) -> dict[str, str]: return self._volume_at(path).sha256_folder(path)
    def lstat(self, path: str) -> TreeEntry: return self._volume_at(path).lstat(path)

    def lstat_tree(self, root: str, *, limit: int | None = None,
                   recursive: bool = True) -> tuple[list[TreeEntry], bool]:
        return self._volume_at(root).lstat_tree(root, limit=limit, recursive=recursive)

    def ntfs_attributes(self, paths: Iterable[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for fs, group in self._by_volume(paths):
            out.update(fs.ntfs_attributes(group))
        return out

    def remove_files(self, paths: Iterable[str]) -> list[tuple[str, str]]:
        failed: list[tuple[str, str]] = []
        for fs, group in self._by_volume(paths):
            failed.extend(fs.remove_files(group))
        return failed

    def _by_volume(self, paths: Iterable[str]) -> list[tuple[Filesystem, list[str]]]:
        groups: dict[str, tuple[Filesystem, list[str]]] = {}
        for p in paths:
            fs = self._volume_at(p)
            groups.setdefault(fs.part.key, (fs, []))[1].append(p)
        return list(groups.values())

    # --- block devices ----------------------------------------------------------------------------
    # Callers reach these through the session, not `blockdev`: rescue.disk.view maps the disk index
    # of each (a VM's own numbering in fleet mode) to the session's by these names.
    def read_disk_bytes(self, disk: int, size: int, offset: int) -> bytes:
        return self.blockdev.read_disk_bytes(disk, size, offset)

    def write_device(self, disk: int, data: bytes, offset: int) -> None:
        self.blockdev.write_device(disk, data, offset)

    def write_boot_sector(self, disk: int, sector: bytes) -> None:
        self.blockdev.write_boot_sector(disk, sector)

    def part_expand_gpt(self, disk: int) -> None:
        self.blockdev.part_expand_gpt(disk)

    def part_resize(self, disk: int, number: int, end_sector: int) -> None:
        self.blockdev.part_resize(disk, number, end_sector)

    def reread_partition_table(self, disk: int) -> None:
        self.blockdev.reread_partition_table(disk)

    def read_partition_bytes(self, part: Partition, size: int, offset: int = 0) -> bytes:
        return self.blockdev.read_partition_bytes(part, size, offset)

    def ntfsresize(self, part: Partition, size: int | None = None) -> None:
        """Unmount the volume if needed, then grow (or shrink) its NTFS (BlockDevices.ntfsresize)."""
        if self.mounted(part):
            self.umount(part)
        self.blockdev.ntfsresize(part, size)
