"""Tell a disk image's format from its bytes on the host, before any appliance is launched.

We never let qemu guess "raw" for a file that is something else: a VHD whose footer is cut off, or
a text file, must be rejected with a clear sentence (ground rule 3), not read as a blank disk.
Sources: Microsoft "Virtual Hard Disk Image Format Specification" (footer "conectix", dynamic header
"cxsparse"), MS-VHDX §2.1 (file identifier "vhdxfile"), qcow2 spec (magic "QFI\\xfb"), VMware
Virtual Disk Format 5.0 (sparse magic "KDMV", descriptor text).
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rescue.disk.processes import reap_orphans, writers_of
from rescue.errors import InputError, UnsafeStateError

FORMATS = ("raw", "vpc", "vhdx", "qcow2", "vmdk")
# Friendly names users type for --format, mapped to qemu's names.
FORMAT_ALIASES = {"vhd": "vpc", "vpc": "vpc", "vhdx": "vhdx", "qcow2": "qcow2", "raw": "raw",
                  "img": "raw", "vmdk": "vmdk"}


@dataclass(frozen=True)
class DiskImage:
    path: str            # as the user gave it: shown in every message and JSON output
    format: str          # qemu format name: raw, vpc, vhdx, qcow2, vmdk
    virtual_size: int    # bytes the guest sees
    is_block_device: bool
    subformat: str = ""  # "fixed"/"dynamic" for VHD
    # A throw-away qcow2 overlay over this image (rescue.space.staging) that the appliance opens
    # instead: all writes land there until they are committed. Messages still name `path`.
    staging: str = ""

    @property
    def open_args(self) -> tuple[str, str]:
        """(file, qemu format) the appliance opens."""
        return (self.staging, "qcow2") if self.staging else (self.path, self.format)

    @property
    def format_label(self) -> str:
        if self.format == "vpc":
            return f"VHD ({self.subformat})" if self.subformat else "VHD"
        return {"raw": "raw", "vhdx": "VHDX", "qcow2": "qcow2", "vmdk": "VMDK"}.get(self.format, self.format)


def _read(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def _vpc_checks(path: str, fh: BinaryIO, size: int) -> tuple[int, str]:
    """Validate a VHD and return (virtual size, subformat). Footer: 512 bytes, big-endian fields."""
    head = _read(fh, 0, 512)
    tail = _read(fh, size - 512, 512) if size >= 512 else b""
    footer = tail if tail[:8] == b"conectix" else head
    disk_type = struct.unpack_from(">I", footer, 60)[0]
    current_size = struct.unpack_from(">Q", footer, 48)[0]
    if disk_type == 2:  # fixed: data then footer
        if tail[:8] != b"conectix" or size - 512 < current_size:
            raise InputError(f"{path} is a fixed VHD that is truncated (expected {current_size + 512} bytes, "
                             f"found {size}).", hint="Download or copy the image again.")
        return current_size, "fixed"
    if disk_type in (3, 4):  # dynamic / differencing: footer copy, dynamic header, BAT, blocks, footer
        if head[:8] != b"conectix":
            raise InputError(f"{path} is a damaged dynamic VHD (no footer copy at the start).")
        if tail[:8] != b"conectix":
            raise InputError(f"{path} is a truncated dynamic VHD (its closing footer is missing).",
                             hint="The download or copy did not finish: copy the image again.")
        (dyn_off,) = struct.unpack_from(">Q", head, 16)
        dyn = _read(fh, dyn_off, 1024)
        if dyn[:8] != b"cxsparse":
            raise InputError(f"{path} is a damaged dynamic VHD (no dynamic disk header).")
        table_off, = struct.unpack_from(">Q", dyn, 16)
        max_entries, block_size = struct.unpack_from(">II", dyn, 28)
        bat = _read(fh, table_off, 4 * max_entries)
        if len(bat) < 4 * max_entries:
            raise InputError(f"{path} is a truncated dynamic VHD (block table cut off).")
        sectors_per_block = block_size // 512
        bitmap = ((sectors_per_block + 7) // 8 + 511) // 512 * 512
        last = max((e for (e,) in struct.iter_unpack(">I", bat) if e != 0xFFFFFFFF), default=None)
        if last is not None and last * 512 + bitmap + block_size > size - 512:
            raise InputError(f"{path} is a truncated dynamic VHD (data blocks past the end of the file).",
                             hint="The download or copy did not finish: copy the image again.")
        if disk_type == 4:
            raise InputError(f"{path} is a differencing VHD; give its parent chain merged into one image.")
        return current_size, "dynamic"
    raise InputError(f"{path} has a VHD footer with an unknown disk type {disk_type}.")


def _qemu_img_info(path: str, fmt: str) -> dict:
    try:
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", "-f", fmt, path],
                             capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise InputError("qemu-img is not installed.", hint="Run `make setup` or apt-get install qemu-utils.") from None
    if out.returncode != 0:
        msg = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "unknown error"
        raise InputError(f"{path} cannot be read as {fmt}: {msg}")
    return json.loads(out.stdout)


def detect(path: str, forced_format: str | None = None) -> DiskImage:
    """Open `path` on the host, decide its format, and reject what is not a usable disk image."""
    p = Path(path)
    if not os.path.lexists(path):
        raise InputError(f"{path} does not exist.", hint="Check the path (a disk image file or a block device such as /dev/sdc).")
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a directory, not a disk image or block device.")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable by this user.", hint="Run as root or fix its permissions.")
    is_block = stat.S_ISBLK(st.st_mode)

    with open(path, "rb") as fh:
        if is_block:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
        else:
            size = st.st_size
        if size == 0:
            raise InputError(f"{path} is empty (0 bytes).")
        head = _read(fh, 0, 1024)
        fmt = FORMAT_ALIASES.get(forced_format.lower(), None) if forced_format else None
        if forced_format and fmt is None:
            raise InputError(f"Unknown --format {forced_format!r}; use one of raw, vhd, vhdx, qcow2, vmdk.")
        tail = _read(fh, size - 512, 512) if size >= 512 else b""

        detected = "raw"
        if head[:4] == b"QFI\xfb":
            detected = "qcow2"
        elif head[:8] == b"vhdxfile":
            detected = "vhdx"
        elif head[:4] == b"KDMV" or head.startswith(b"# Disk DescriptorFile"):
            detected = "vmdk"
        elif head[:8] == b"conectix" or tail[:8] == b"conectix":
            detected = "vpc"
        if fmt and fmt != detected and not (fmt == "raw" and is_block):
            raise InputError(f"{path} looks like {detected}, not {fmt} as --format says.",
                             hint="Drop --format to let rescue detect it.")
        fmt = fmt or detected

        subformat = ""
        if fmt == "vpc":
            virtual, subformat = _vpc_checks(path, fh, size)
        elif fmt == "raw":
            if not is_block and size % 512:
                raise InputError(f"{path} is not a disk image (its size, {size} bytes, is not a whole "
                                 "number of 512-byte sectors, and it has no VHD/VHDX/qcow2/VMDK header).")
            sector0 = head[:512]
            if sector0.strip(b"\x00") and sector0[510:512] != b"\x55\xaa":
                raise InputError(f"{path} is not a disk image: no partition table or known image header.",
                                 hint="Give the OS disk image (VHD, VHDX, qcow2, VMDK, raw) or its block device.")
            virtual = size
        else:
            virtual = 0

    if fmt in ("vpc", "vhdx", "qcow2", "vmdk"):
        # The size the guest sees is qemu's reading of the image, so ask qemu. For VHD it is not
        # always the footer's current_size: qemu sizes VHDs from images by Virtual PC or older qemu
        # by their CHS geometry (block/vpc.c), so a footer-only answer could be off by megabytes.
        info = _qemu_img_info(path, fmt)
        virtual = int(info.get("virtual-size", 0))
        if fmt == "qcow2" and info.get("backing-filename"):
            raise InputError(f"{path} is a qcow2 overlay with a backing file; give a standalone image.")
    return DiskImage(path=path, format=fmt, virtual_size=virtual, is_block_device=is_block, subformat=subformat)


def check_not_in_use(image: DiskImage) -> None:
    """Refuse to write to an image another process holds open for writing (qemu's image locking),
    or to a block device this host has mounted or otherwise claimed (check_block_device_free).

    `qemu-img info` without -U takes a shared read lock, which fails while a running qemu has the
    image open read-write. An appliance left by a killed rescue run may still hold that lock, so
    our own orphans are reaped first: the check refuses only for someone else's process, whichever
    command asks (fix, expand, fix --expand, reg/bcd writes).
    """
    reap_orphans()
    if image.is_block_device:
        check_block_device_free(image.path)
    else:
        out = subprocess.run(["qemu-img", "info", "--output=json", "-f", image.format, image.path],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0 and "lock" in out.stderr:
            raise UnsafeStateError(f"{image.path} is in use by another process (a running VM or another rescue "
                                   "command).", hint="Stop the VM or the other command first; nothing was written.")
    writers = writers_of(image.path)
    if writers:
        who = ", ".join(f"{comm} (pid {pid})" for pid, comm in writers)
        raise UnsafeStateError(f"{image.path} is open for writing by {who}: a running VM or another tool.",
                               hint="Stop it first (for a VM: shut it down or detach the disk); nothing was written.")


def host_mounts(device: str) -> list[tuple[str, str]]:
    """(mounted device, mount point) for every filesystem this host has mounted from `device` or
    one of its partitions (/proc/self/mountinfo, field 3 is the mounted device's major:minor;
    /sys/dev/block/MAJ:MIN resolves a partition to a folder inside its disk's folder)."""
    try:
        disk_sys = os.path.realpath(f"/sys/dev/block/{_majmin(device)}")
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 5 or ":" not in fields[2]:
            continue
        sys_path = os.path.realpath(f"/sys/dev/block/{fields[2]}")
        if sys_path == disk_sys or sys_path.startswith(disk_sys + "/"):
            # The mount point is octal-escaped in mountinfo (a space is \040).
            point = fields[4].encode().decode("unicode_escape")
            found.append(("/dev/" + os.path.basename(sys_path), point))
    return found


def _majmin(device: str) -> str:
    rdev = os.stat(device).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def check_block_device_free(device: str) -> None:
    """Refuse to write to a block device this host is using: a mounted partition (the operator
    looked at it with ntfs-3g), an LVM/md/dm holder, swap. Two writers on one NTFS volume corrupt
    it. The kernel's own answer is an exclusive open (open(2) O_EXCL on a block device fails with
    EBUSY while it or one of its partitions is mounted or claimed); mountinfo names the place."""
    import errno

    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return                      # not ours to judge here (permissions: the launch says it)
        mounts = host_mounts(device)
        where = ", ".join(f"{dev} on {point}" for dev, point in mounts)
        raise UnsafeStateError(
            f"{device} is in use on this host ({where or 'held by the kernel: a mount, LVM, RAID or swap'}), "
            "so writing to it would corrupt it.",
            hint=("Unmount it first (" + "; ".join(f"umount {point}" for _dev, point in mounts) + "); "
                  if mounts else "Release it first (umount, vgchange -an, mdadm --stop, swapoff); ")
                 + "nothing was written.") from None
    os.close(fd)


def check_writable(image: DiskImage) -> None:
    """Refuse an image the user cannot write, or marked read-only: root passes os.access() for
    any file, so a write-protected image (mode without any w bit) is refused by its mode too."""
    mode = os.stat(image.path).st_mode
    if not os.access(image.path, os.W_OK) or not mode & 0o222:
        raise UnsafeStateError(f"{image.path} is read-only, so it cannot be repaired in place.",
                               hint="Copy it to a writable location (or fix its permissions) and run again; nothing was written.")
