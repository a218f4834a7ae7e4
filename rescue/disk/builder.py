"""Writing a disk from scratch: partition tables, filesystems, whole trees, ntfs-3g attributes.

Only for scratch images the sample builder (rescue.samples) and the tests make; no command of the
product uses it (a unit test keeps it that way). It lives in rescue.disk because it drives
libguestfs, which only this package may do; what it builds, and why, is rescue.samples' business.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from rescue.disk.session import DiskSession


class DiskBuilder:
    """Building operations on the disks of a write session."""

    def __init__(self, session: DiskSession):
        if not session.write:
            raise RuntimeError("DiskBuilder needs a session opened for writing")   # programming error
        self.session = session

    @property
    def g(self):
        return self.session.appliance.g

    def init_table(self, disk: int, table: str) -> None:
        """A new, empty partition table ("mbr" or "gpt") on disk `disk`."""
        self.session.devices_changed()
        self.g.part_init(self.session.disks_device(disk), "msdos" if table == "mbr" else "gpt")

    def add_partition(self, disk: int, start_sector: int, end_sector: int) -> None:
        self.session.devices_changed()
        self.g.part_add(self.session.disks_device(disk), "p", start_sector, end_sector)

    def set_partition_attrs(self, disk: int, number: int, *, mbr_type: int | None = None,
                            bootable: bool | None = None, gpt_type: str | None = None,
                            gpt_guid: str | None = None, name: str | None = None) -> None:
        self.session.devices_changed()
        dev = self.session.disks_device(disk)
        if mbr_type is not None:
            self.g.part_set_mbr_id(dev, number, mbr_type)
        if bootable is not None:
            self.g.part_set_bootable(dev, number, bootable)
        if gpt_type is not None:
            self.g.part_set_gpt_type(dev, number, gpt_type)
        if gpt_guid is not None:
            self.g.part_set_gpt_guid(dev, number, gpt_guid)
        if name is not None:
            self.g.part_set_name(dev, number, name)

    def mkfs(self, disk: int, number: int, fstype: str, label: str | None = None) -> None:
        self.session.devices_changed()
        opts = {"label": label} if label else {}
        self.g.mkfs(fstype, f"{self.session.disks_device(disk)}{number}", **opts)

    def extract_tar(self, host_tar: str | Path, directory: str) -> None:
        """Unpack a host tarball below `directory` (a mounted volume's path) in one call: a whole
        volume tree at once instead of one call per file."""
        self.session.tree_changed(directory)
        self.g.tar_in(str(host_tar), directory)

    def set_ntfs_xattr(self, path: str, name: str, value: bytes) -> None:
        """Set a binary ntfs-3g `system.ntfs_*` attribute (e.g. "system.ntfs_attrib_be" for the
        Windows attributes, "system.ntfs_reparse_data" for a junction). The binding's setxattr
        cannot carry NUL bytes, so this goes through the appliance's setfattr (libguestfs debug sh;
        mount points live under /sysroot inside the appliance)."""
        self.session.tree_changed(path)
        target = "/sysroot" + path
        self.g.debug("sh", [f"setfattr -h -n {shlex.quote(name)} -v 0x{value.hex()} {shlex.quote(target)}"])

    def symlink(self, target: str, link: str) -> None:
        """A symbolic link `link` -> `target` (ntfs-3g stores it as a reparse point)."""
        self.session.tree_changed(link)
        self.g.ln_s(target, link)
