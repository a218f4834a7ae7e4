"""Device elements: the binary BCD device structure, decoded; and naming the partition it points to.

Layout (BCD-REFERENCE.md §6, from ReactOS `bl.h` BL_DEVICE_DESCRIPTOR and confirmed on every real
store): a device value is a 16-byte GUID (an additional-options object, zero normally) followed by a
descriptor: DeviceType u32, Flags u32, Size u32 (of the descriptor), reserved u32, then a body that
depends on the type. Partition (6): a 16-byte union (GPT partition GUID, or MBR start offset in bytes)
then a local-disk block: block type u32 (0 hard disk), partition style u32 (0 GPT, 1 MBR, 2 raw),
disk GUID or MBR signature. Disk/block-I/O (0): the local-disk block directly; for a ramdisk (block
type 3) the 24-byte block is followed by a file path: version u32 (1), length u32, path type u32,
a nested descriptor (the device holding the file) and the UTF-16 path. Locate (8): locate type u32
(0 = by element) and the element code whose value names the file to look for.

Anything not understood is kept as raw bytes and shown in hex (never dropped).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rescue.bcd.constants import ALIAS_OF_GUID

if TYPE_CHECKING:
    from rescue.disk.records import DiskInfo, Partition

DEVICE_TYPES = {0: "disk", 2: "legacy-partition", 3: "serial", 4: "udp", 5: "boot", 6: "partition",
                7: "vmbus", 8: "locate", 9: "uri", 10: "composite", 11: "cimfs"}
BLOCK_TYPES = {0: "harddisk", 1: "floppy", 2: "cdrom", 3: "ramdisk", 5: "file", 6: "vhd"}
STYLES = {0: "gpt", 1: "mbr", 2: "raw"}
_ZERO_GUID = b"\x00" * 16


def _guid(raw: bytes) -> str:
    """GUIDs are stored mixed-endian (Windows GUID struct); shown lower case without braces."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


@dataclass(frozen=True)
class Device:
    kind: str                          # partition, boot, locate, ramdisk, vhd, file, disk, unknown
    device_type: int
    flags: int = 0
    options: str | None = None         # "{guid}" of a device-options object (ramdisks), else None
    style: str | None = None           # partition style: gpt, mbr, raw
    partition_guid: str | None = None  # GPT
    disk_guid: str | None = None       # GPT
    mbr_signature: int | None = None   # MBR
    partition_offset: int | None = None  # MBR: partition start in bytes
    block_type: int | None = None      # disk devices: BLOCK_TYPES
    path: str | None = None            # ramdisk/vhd/file: the file on `parent`
    parent: "Device | None" = None
    locate_type: int | None = None
    locate_element: int | None = None
    raw: bytes = b""                   # the bytes this device was decoded from
    note: str | None = None            # why something was left undecoded

    def to_json(self, context: "DeviceContext | None" = None) -> dict:
        d: dict = {"kind": self.kind, "options": self.options}
        if self.kind == "partition":
            d["style"] = self.style
            if self.style == "gpt":
                d["disk_guid"], d["partition_guid"] = self.disk_guid, self.partition_guid
            elif self.style == "mbr":
                d["mbr_signature"] = f"0x{self.mbr_signature:08x}"
                d["partition_offset"] = self.partition_offset
            loc = context.locate(self) if context else None
            d["location"] = None if loc is None else loc.to_json()
        elif self.kind == "locate":
            d["locate_type"] = self.locate_type
            d["element"] = None if self.locate_element is None else f"0x{self.locate_element:08x}"
            d["path"] = self.path
        elif self.kind in ("ramdisk", "vhd", "file"):
            d["path"] = self.path
            d["parent"] = None if self.parent is None else self.parent.to_json(context)
        elif self.kind == "disk":
            d["block_type"] = (BLOCK_TYPES.get(self.block_type, self.block_type)
                               if self.block_type is not None else None)
            d["style"] = self.style
            d["disk_guid"] = self.disk_guid
            d["mbr_signature"] = None if self.mbr_signature is None else f"0x{self.mbr_signature:08x}"
        if self.kind == "unknown" or self.note:
            d["device_type"] = self.device_type
            d["raw"] = self.raw.hex()
            d["note"] = self.note
        return d


@dataclass(frozen=True)
class Location:
    """Where a partition device is on the attached disks (indexes as in the layout)."""

    disk: int
    partition: int
    letter: str | None
    disk_label: str

    def to_json(self) -> dict:
        return {"disk": self.disk_label, "partition": self.partition, "letter": self.letter}

    def text(self) -> str:
        return self.letter or f"disk {self.disk} partition {self.partition}"


class DeviceContext:
    """The attached disks (rescue.disk.session.DiskInfo-like: index, table, mbr_signature, gpt_guid,
    partitions with number, start, gpt_guid) and the drive letters Windows gave their volumes
    (rescue.layout.LetterMapping-like: letter, disk, partition)."""

    def __init__(self, disks: Sequence, letters: Sequence = (), disk_paths: Sequence[str] = ()):
        self.disks = list(disks)
        self.letters = {(m.disk, m.partition): m.letter for m in letters if m.disk is not None}
        self.disk_paths = list(disk_paths)

    def locate(self, dev: Device) -> Location | None:
        if dev.kind != "partition":
            return None
        for disk in self.disks:
            for part in disk.partitions:
                if self._matches(dev, disk, part):
                    label = self.disk_paths[disk.index] if disk.index < len(self.disk_paths) else str(disk.index)
                    return Location(disk.index, part.number, self.letters.get((disk.index, part.number)), label)
        return None

    @staticmethod
    def _matches(dev: Device, disk: DiskInfo, part: Partition) -> bool:
        if dev.style == "mbr":
            return disk.table == "mbr" and disk.mbr_signature == dev.mbr_signature \
                and part.start == dev.partition_offset
        if dev.style == "gpt":
            if not part.gpt_guid or _norm(part.gpt_guid) != dev.partition_guid:
                return False
            # Partition GUIDs are unique; a different disk GUID means a clone, not this partition.
            return not disk.gpt_guid or _norm(disk.gpt_guid) == dev.disk_guid
        return False


def _norm(guid: str) -> str:
    return guid.strip("{}").lower()


# --- decoding ------------------------------------------------------------------------------
def decode_device(data: bytes) -> Device:
    """Decode a device element value (options GUID + descriptor). Never raises."""
    data = bytes(data)
    if len(data) < 32:
        return Device("unknown", -1, raw=data, note=f"{len(data)} bytes is too short for a device")
    options = None if data[:16] == _ZERO_GUID else "{" + _guid(data[:16]) + "}"
    dev, end = _descriptor(data, 16)
    if end != len(data) and dev.kind != "unknown":
        # ROS-C rejects a value whose length is not descriptor Size + 16: the boot manager would too.
        dev = Device("unknown", dev.device_type, dev.flags, raw=data,
                     note=f"descriptor size {end - 16} does not match the value length {len(data)}")
    return _replace(dev, options=options, raw=data)


def _replace(dev: Device, **kw) -> Device:
    from dataclasses import replace

    return replace(dev, **kw)


def _descriptor(data: bytes, off: int) -> tuple[Device, int]:
    """Decode the descriptor at `off`; returns the device and the offset just past it."""
    if off + 16 > len(data):
        return Device("unknown", -1, raw=data[off:], note="truncated device descriptor"), len(data)
    dtype, flags, size, _ = struct.unpack_from("<IIII", data, off)
    end = off + size
    body = data[off:end]
    if size < 16 or end > len(data):
        return Device("unknown", dtype, flags, raw=data[off:], note=f"descriptor size {size} is invalid"), len(data)
    kind = DEVICE_TYPES.get(dtype)
    if kind == "boot":
        return Device("boot", dtype, flags, raw=body), end
    if kind == "partition":
        return _partition(data, off, end, dtype, flags), end
    if kind == "locate":
        return _locate(data, off, end, dtype, flags), end
    if kind == "disk":
        return _disk(data, off, end, dtype, flags), end
    note = f"device type {dtype} ({kind or 'unknown'}) is not decoded"
    return Device("unknown", dtype, flags, raw=body, note=note), end


def _partition(data: bytes, off: int, end: int, dtype: int, flags: int) -> Device:
    body = data[off:end]
    if end - off < 56:
        return Device("unknown", dtype, flags, raw=body, note="partition descriptor too short")
    union = data[off + 16:off + 32]
    block_type, style = struct.unpack_from("<II", data, off + 32)
    disk_id = data[off + 40:off + 56]
    if block_type != 0:
        # A partition inside a VHD or file: the disk is itself a file (vhd=[C:]\x.vhdx).
        nested = _nested_file(data, off + 32, end)
        if nested is not None:
            return Device(BLOCK_TYPES.get(block_type, "file"), dtype, flags, block_type=block_type,
                          path=nested[0], parent=nested[1], raw=body)
        return Device(BLOCK_TYPES.get(block_type, "unknown"), dtype, flags, block_type=block_type, raw=body,
                      note=f"partition on a block device of type {block_type} is not decoded")
    if style == 0:
        return Device("partition", dtype, flags, style="gpt", partition_guid=_guid(union),
                      disk_guid=_guid(disk_id), raw=body)
    if style == 1:
        (offset,) = struct.unpack_from("<Q", union)
        (sig,) = struct.unpack_from("<I", disk_id)
        return Device("partition", dtype, flags, style="mbr", mbr_signature=sig, partition_offset=offset, raw=body)
    return Device("partition", dtype, flags, style=STYLES.get(style, str(style)), raw=body,
                  note=f"partition style {style} is not decoded")


def _disk(data: bytes, off: int, end: int, dtype: int, flags: int) -> Device:
    body = data[off:end]
    if end - off < 20:
        return Device("unknown", dtype, flags, raw=body, note="disk descriptor too short")
    (block_type,) = struct.unpack_from("<I", data, off + 16)
    if block_type == 3:
        # Ramdisk: 20 bytes of image base/size/offset, then the file the image is loaded from.
        nested = _file_path(data, off + 40, end)
        if nested is None:
            return Device("ramdisk", dtype, flags, block_type=3, raw=body, note="ramdisk source not decoded")
        return Device("ramdisk", dtype, flags, block_type=3, path=nested[0], parent=nested[1], raw=body)
    if block_type in (5, 6):
        nested = _nested_file(data, off + 16, end)
        kind = BLOCK_TYPES[block_type]
        if nested is None:
            return Device(kind, dtype, flags, block_type=block_type, raw=body, note=f"{kind} source not decoded")
        return Device(kind, dtype, flags, block_type=block_type, path=nested[0], parent=nested[1], raw=body)
    if block_type == 0 and end - off >= 40:
        (style,) = struct.unpack_from("<I", data, off + 20)
        disk_id = data[off + 24:off + 40]
        if style == 0:
            return Device("disk", dtype, flags, block_type=0, style="gpt", disk_guid=_guid(disk_id), raw=body)
        if style == 1:
            return Device("disk", dtype, flags, block_type=0, style="mbr",
                          mbr_signature=struct.unpack_from("<I", disk_id)[0], raw=body)
    return Device("disk", dtype, flags, block_type=block_type, raw=body,
                  note=f"disk device of block type {block_type} is not decoded")


def _locate(data: bytes, off: int, end: int, dtype: int, flags: int) -> Device:
    body = data[off:end]
    if end - off < 24:
        return Device("locate", dtype, flags, raw=body, note="locate descriptor too short")
    ltype, element = struct.unpack_from("<II", data, off + 16)
    path = None
    if end - off > 28:
        text = data[off + 28:end]
        path = text[: len(text) // 2 * 2].decode("utf-16-le", errors="replace").rstrip("\x00") or None
    if ltype == 0:
        return Device("locate", dtype, flags, locate_type=0, locate_element=element, path=path, raw=body)
    return Device("locate", dtype, flags, locate_type=ltype, path=path, raw=body)


def _file_path(data: bytes, off: int, end: int) -> tuple[str, Device] | None:
    """A file path block: version 1, length (to the end of the enclosing descriptor), path type,
    the descriptor of the device holding the file, then its UTF-16 path."""
    if off + 12 > end:
        return None
    version, length, _ptype = struct.unpack_from("<III", data, off)
    if version != 1 or off + length != end or length < 12 + 16:
        return None
    parent, pend = _descriptor(data, off + 12)
    if pend > end or parent.kind == "unknown":
        return None
    text = data[pend:end]
    if len(text) % 2:
        return None
    return text.decode("utf-16-le", errors="replace").rstrip("\x00"), parent


def _nested_file(data: bytes, local_off: int, end: int) -> tuple[str, Device] | None:
    """VHD/file block devices: where the file-path block starts is not documented; accept it right
    after the block type or after the 24-byte local-device block, only when it parses exactly."""
    for cand in (local_off + 4, local_off + 24):
        found = _file_path(data, cand, end)
        if found is not None:
            return found
    return None


# --- display (bcdedit's spellings) -----------------------------------------------------------
def _identity(dev: Device) -> str:
    if dev.style == "gpt":
        return f"GPT disk {dev.disk_guid}, partition {dev.partition_guid}"
    if dev.style == "mbr":
        return f"MBR signature {dev.mbr_signature:08x}, offset {dev.partition_offset}"
    return f"style {dev.style}"


def _inner(dev: Device, context: DeviceContext | None, guids: bool = False) -> str:
    """The device inside brackets, as in ramdisk=[C:]\\path."""
    if dev.kind == "boot":
        return "boot"
    if dev.kind == "partition":
        loc = context.locate(dev) if context else None
        return loc.text() if loc else _identity(dev)
    return device_text(dev, context, guids=guids)


def device_text(dev: Device, context: DeviceContext | None = None, *, guids: bool = False) -> str:
    """bcdedit's rendering: partition=C:, boot, locate=custom:12000002,
    ramdisk=[C:]\\Recovery\\WindowsRE\\Winre.wim,{guid}. Without a matching attached disk the raw
    identity is shown (MBR signature + offset, or GPT disk + partition GUIDs)."""
    if dev.kind == "boot":
        text = "boot"
    elif dev.kind == "partition":
        loc = context.locate(dev) if context else None
        if loc:
            text = f"partition={loc.text()}"
        else:
            text = f"partition=({_identity(dev)})"
            if context is not None and dev.style in ("gpt", "mbr"):
                text += " [not on the attached disks]"
    elif dev.kind == "locate":
        if dev.locate_element is not None:
            text = f"locate=custom:{dev.locate_element:08x}"
        else:
            text = f"locate={dev.path or ''}"
    elif dev.kind in ("ramdisk", "vhd", "file") and dev.path is not None:
        parent = _inner(dev.parent, context, guids) if dev.parent else "?"
        text = f"{dev.kind}=[{parent}]{dev.path}"
    elif dev.kind == "disk" and dev.note is None:
        text = f"disk=({'GPT disk ' + str(dev.disk_guid) if dev.style == 'gpt' else f'MBR signature {dev.mbr_signature or 0:08x}'})"
    else:
        text = f"unknown (device type {dev.device_type}) {dev.raw.hex()}"
        return text
    if dev.options:
        # bcdedit /v shows the options object by GUID like every other identifier.
        text += "," + (dev.options if guids else ALIAS_OF_GUID.get(dev.options, dev.options))
    return text


# --- encoding ------------------------------------------------------------------------------
PARTITION_DEVICE_SIZE = 72      # descriptor size of a partition device (88-byte value), §6


def _descriptor_head(device_type: int, size: int) -> bytes:
    # 16-byte additional-options GUID (zero), then DeviceType, Flags, Size, reserved.
    return bytes(16) + struct.pack("<IIII", device_type, 0, size, 0)


def gpt_partition_device(partition_guid: str, disk_guid: str) -> bytes:
    """The 88-byte value bcdedit writes for `partition=X:` on a GPT disk: partition GUID, block
    type 0 (hard disk), style 0 (GPT), disk GUID, zero padding (BCD-REFERENCE.md §6)."""
    data = (_descriptor_head(6, PARTITION_DEVICE_SIZE) + uuid.UUID(_norm(partition_guid)).bytes_le
            + struct.pack("<II", 0, 0) + uuid.UUID(_norm(disk_guid)).bytes_le + bytes(16))
    assert len(data) == 16 + PARTITION_DEVICE_SIZE
    return data


def mbr_partition_device(signature: int, offset: int) -> bytes:
    """The 88-byte value for `partition=X:` on an MBR disk: the partition's start in bytes, block
    type 0, style 1 (MBR), the 32-bit disk signature, zero padding (the identity MountedDevices
    keeps for the volume)."""
    data = (_descriptor_head(6, PARTITION_DEVICE_SIZE) + struct.pack("<Q", offset) + bytes(8)
            + struct.pack("<II", 0, 1) + struct.pack("<I", signature) + bytes(12) + bytes(16))
    assert len(data) == 16 + PARTITION_DEVICE_SIZE
    return data


def partition_device(disk: DiskInfo, part: Partition) -> bytes:
    """The device value naming partition `part` of the attached disk `disk` (records as in
    DeviceContext): built from the disk's own identity, as bcdedit does for `partition=X:`.
    Raises ValueError when the disk has no identity a BCD device can carry."""
    if disk.table == "gpt":
        if not disk.gpt_guid or not part.gpt_guid:
            raise ValueError(f"GPT disk {disk.index} partition {part.number} has no GUID")
        return gpt_partition_device(part.gpt_guid, disk.gpt_guid)
    if disk.table == "mbr":
        if not disk.mbr_signature:
            # Windows gives a disk a signature when it first sees it; a BCD device without one
            # cannot name the disk (two unsigned disks would be the same device).
            raise ValueError(f"MBR disk {disk.index} has no disk signature")
        return mbr_partition_device(disk.mbr_signature, part.start)
    raise ValueError(f"disk {disk.index} has no partition table")
