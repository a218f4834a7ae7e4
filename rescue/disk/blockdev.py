"""Whole-disk and partition device operations: raw reads and writes, growing a partition table
entry, re-reading a table, growing an NTFS with ntfsresize.

Anything here that writes changes what the partition tables and the volumes above them report, so
each writer calls `changed()` (the session drops its table and every volume's probes and listings).
"""

from __future__ import annotations

from typing import Callable

from rescue.disk.appliance import Appliance
from rescue.errors import DiskError
from rescue.disk.partitions import PartitionTables
from rescue.disk.records import Partition

READ_PIECE = 1 << 20        # pread_device may return fewer bytes than asked: read in pieces


class BlockDevices:
    def __init__(self, appliance: Appliance, tables: PartitionTables, changed: Callable[[], None]):
        self.appliance = appliance
        self.tables = tables
        self._changed = changed

    @property
    def g(self):
        return self.appliance.g

    # --- reading --------------------------------------------------------------------------------
    def read_disk_bytes(self, disk: int, size: int, offset: int) -> bytes:
        """`size` bytes of the whole disk at byte `offset` (partition tables, boot sectors)."""
        dev = self.tables.device(disk)
        buf = bytearray()
        while len(buf) < size:
            chunk = self.g.pread_device(dev, min(READ_PIECE, size - len(buf)), offset + len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def read_partition_bytes(self, part: Partition, size: int, offset: int = 0) -> bytes:
        """Up to `size` bytes of the partition's device at `offset` (one call: boot sectors, MFT
        records; callers read small pieces)."""
        return self.g.pread_device(part.device, size, offset)

    # --- writing --------------------------------------------------------------------------------
    def write_device(self, disk: int, data: bytes, offset: int) -> None:
        self._changed()
        self.g.pwrite_device(self.tables.device(disk), data, offset)

    def write_boot_sector(self, disk: int, sector: bytes) -> None:
        """Write the 512 bytes of the disk's sector 0 (its MBR) as given, with one pwrite of the
        whole-disk device, and sync. No partition tool is involved: parted and sfdisk may rewrite
        CHS fields or the disk signature, and a caller that changes one byte must change one byte.
        Partitions and volumes stay where they are (only the table records are read again), so the
        mounted volumes keep their listings."""
        if len(sector) != 512:
            raise ValueError("a boot sector is 512 bytes")       # caller bug
        self.tables.forget()
        dev = self.tables.device(disk)
        written = self.g.pwrite_device(dev, sector, 0)
        if written != len(sector):
            raise DiskError(f"Writing sector 0 of disk {disk} wrote {written} of {len(sector)} bytes.",
                            operation="pwrite_device")
        self.g.sync()

    def part_expand_gpt(self, disk: int) -> None:
        """Move the GPT backup header and table to the end of a grown disk (sgdisk -e)."""
        self._changed()
        self.g.part_expand_gpt(self.tables.device(disk))

    def part_resize(self, disk: int, number: int, end_sector: int) -> None:
        """Move the end of partition `number` to `end_sector` (inclusive); its start, type, GUID and
        contents stay as they are (parted resizepart; no filesystem is touched)."""
        self._changed()
        self.g.part_resize(self.tables.device(disk), number, end_sector)

    def reread_partition_table(self, disk: int) -> None:
        """Make the appliance kernel re-read a partition table written with write_device (BLKRRPART),
        so partition devices get their new sizes. Every partition of the disk must be unmounted."""
        self._changed()
        self.g.blockdev_rereadpt(self.tables.device(disk))

    def ntfsresize(self, part: Partition, size: int | None = None) -> None:
        """Grow (or shrink to `size` bytes) the NTFS on an UNMOUNTED partition with ntfsresize, which
        checks the filesystem's consistency first and refuses a volume marked dirty."""
        self._changed()
        opts = {"size": size} if size else {}
        self.g.ntfsresize_opts(part.device, **opts)
