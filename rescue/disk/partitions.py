"""The attached disks and their partition tables, as typed records (rescue.disk.records).

The table is parsed on the host from one read of each disk's first sectors (rescue.disk.ptable); the
appliance is asked only for what a table cannot say: the filesystem type and label (one blkid per
partition), and parted for the layouts the parser leaves to it (logical partitions, 4 KiB sectors).
"""

from __future__ import annotations

import re

from rescue.disk import ptable
from rescue.disk.appliance import Appliance
from rescue.disk.records import DiskInfo, Partition
from rescue.errors import DiskError, InputError

MSR_TYPE_GUID = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"     # Microsoft reserved partition


def device_name(disk: int) -> str:
    """The appliance device of the disk-th image added. libguestfs names drives /dev/sda,
    /dev/sdb, ... in the order they were added, whatever the appliance's own driver calls them
    (guestfs(3), "BLOCK DEVICE NAMING"; /dev/sdaa follows /dev/sdz), so no list_devices call
    (~0.2 s under TCG: it waits for udev)."""
    letters, i = "", disk
    while i >= 0:
        letters = chr(ord("a") + i % 26) + letters
        i = i // 26 - 1
    return "/dev/sd" + letters


def disk_index(device: str) -> int:
    """The inverse of device_name, for a disk or partition device: "/dev/sdab3" -> 27."""
    letters = device.removeprefix("/dev/sd").rstrip("0123456789")
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - ord("a") + 1)
    return index - 1


class PartitionTables:
    """The partition tables of every attached disk, read once per launch and read again after
    anything that changes a table or a filesystem's identity (`forget`)."""

    def __init__(self, appliance: Appliance):
        self.appliance = appliance
        self._disks: list[DiskInfo] | None = None

    def forget(self) -> None:
        self._disks = None

    def device(self, disk: int) -> str:
        if not 0 <= disk < len(self.appliance.images):
            raise IndexError(disk)
        return device_name(disk)

    def disk_of(self, device: str) -> int:
        """The index of the image holding `device` (a disk or partition device)."""
        return disk_index(device)

    def disks(self) -> list[DiskInfo]:
        if self._disks is not None:
            return self._disks
        g = self.appliance.g
        out = []
        for index, img in enumerate(self.appliance.images):
            dev = self.device(index)
            # The host already knows the size the appliance sees (formats.detect: qemu-img's view of
            # the image, or the block device's size): blockdev_getsize64 runs a program in the
            # appliance (~0.2 s under TCG). A staging overlay is bigger than its image: asked.
            size = img.virtual_size if img.virtual_size and not img.staging else g.blockdev_getsize64(dev)
            head = g.pread_device(dev, min(size, ptable.HEAD_BYTES), 0) if size else b""
            raw = ptable.parse(head)
            if raw.needs_fallback:
                raw = self._table_via_parted(dev, raw)
            parts: list[Partition] = []
            for rp in raw.partitions:
                pdev = f"{dev}{rp.number}"
                # The Microsoft reserved partition never holds a filesystem (UEFI spec / Microsoft
                # "Windows and GPT FAQ"): no blkid for it (~0.16 s under TCG).
                fstype, label = (None, None) if (rp.gpt_type or "").upper() == MSR_TYPE_GUID else self._blkid(pdev)
                parts.append(Partition(disk=index, number=rp.number, device=pdev, start=rp.start, size=rp.size,
                                       mbr_type=rp.mbr_type, bootable=rp.bootable, gpt_type=rp.gpt_type,
                                       gpt_guid=rp.gpt_guid, name=rp.name, fstype=fstype, label=label))
            if raw.table is None:
                fstype, label = self._blkid(dev)
                if fstype:
                    # A bare filesystem with no partition table: Windows never boots from that, but
                    # show it as volume 0 so the user sees what the disk holds.
                    parts.append(Partition(disk=index, number=0, device=dev, start=0, size=size,
                                           fstype=fstype, label=label))
            out.append(DiskInfo(index=index, image=img, device=dev, size=size, table=raw.table,
                                mbr_signature=raw.mbr_signature, gpt_guid=raw.gpt_guid, partitions=tuple(parts)))
        self._disks = out
        return out

    def _blkid(self, device: str) -> tuple[str | None, str | None]:
        try:
            tags = self.appliance.g.blkid(device)
        except DiskError:
            return None, None
        fstype = tags.get("TYPE") or None
        if fstype == "BitLocker":
            fstype = "bitlocker"
        # blkid's export format backslash-escapes spaces and shell characters ("System\ Reserved").
        label = re.sub(r"\\(.)", r"\1", tags.get("LABEL") or "") or None
        return fstype, label

    def _table_via_parted(self, dev: str, raw: ptable.RawTable) -> ptable.RawTable:
        """Slow path (several appliance calls per partition): MBR with logical partitions, GPT on
        4 KiB sectors. Same record as the host parser."""
        g = self.appliance.g
        try:
            kind = {"msdos": "mbr", "gpt": "gpt"}.get(g.part_get_parttype(dev))
        except DiskError:
            return ptable.RawTable(None)
        parts = []
        for p in g.part_list(dev):
            num = p["part_num"]
            if kind == "mbr":
                parts.append(ptable.RawPartition(num, p["part_start"], p["part_size"],
                                                 mbr_type=g.part_get_mbr_id(dev, num),
                                                 bootable=bool(g.part_get_bootable(dev, num))))
            else:
                parts.append(ptable.RawPartition(num, p["part_start"], p["part_size"],
                                                 gpt_type=g.part_get_gpt_type(dev, num).upper(),
                                                 gpt_guid=g.part_get_gpt_guid(dev, num).upper(),
                                                 name=g.part_get_name(dev, num) or None))
        disk_guid = raw.gpt_guid
        if kind == "gpt" and disk_guid is None:
            try:
                disk_guid = g.part_get_disk_guid(dev).upper()
            except DiskError:
                disk_guid = None
        return ptable.RawTable(kind, mbr_signature=raw.mbr_signature if kind == "mbr" else None,
                               gpt_guid=disk_guid, partitions=tuple(parts))

    def partitions(self) -> list[Partition]:
        return [p for d in self.disks() for p in d.partitions]

    def partition(self, disk: int, number: int) -> Partition:
        for p in self.partitions():
            if p.disk == disk and p.number == number:
                return p
        raise InputError(f"Disk {self.appliance.images[disk].path} has no partition {number}.")
