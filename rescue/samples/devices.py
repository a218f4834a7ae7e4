"""Disk identities as Windows' registry and BCD name them, for the sample builders: the
MountedDevices value bytes (MBR: u32 disk signature + u64 byte offset; GPT: "DMIO:ID:" + the
partition GUID, bytes_le: libyal winreg-kb "Mounted devices") and BCD device elements (the
partition device of BCD-REFERENCE section 6), and the stable volume names the samples use.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


# --- disk identities: what MountedDevices and BCD devices point at -----------------------------
def _known(value: T | None) -> T:
    """A disk identity field the generation needs (gen1: signature and offsets; gen2: GUIDs)."""
    if value is None:
        raise ValueError("this disk identity lacks a field its generation needs")
    return value


@dataclass(frozen=True)
class DiskIds:
    """The identity of a Windows OS disk as its hives name it.

    Gen1 (MBR): the disk signature and the byte offsets of the active system partition (bootmgr's
    device) and of C:. Gen2 (GPT): the disk GUID and the partition GUIDs of the ESP and C:.
    GUIDs are given as "xxxxxxxx-...", any case.
    """

    generation: str                       # "gen1" | "gen2"
    mbr_signature: int | None = None
    system_offset: int | None = None      # gen1: start of the System Reserved partition, bytes
    os_offset: int | None = None          # gen1: start of C:, bytes
    disk_guid: str | None = None          # gen2
    esp_guid: str | None = None           # gen2
    os_guid: str | None = None            # gen2

    def os_device(self) -> bytes:
        if self.generation == "gen1":
            return mbr_partition_device(_known(self.mbr_signature), _known(self.os_offset))
        return gpt_partition_device(_known(self.os_guid), _known(self.disk_guid))

    def system_device(self) -> bytes:
        if self.generation == "gen1":
            return mbr_partition_device(_known(self.mbr_signature), _known(self.system_offset))
        return gpt_partition_device(_known(self.esp_guid), _known(self.disk_guid))

    def os_mounted_device(self) -> bytes:
        if self.generation == "gen1":
            return mbr_mounted_device(_known(self.mbr_signature), _known(self.os_offset))
        return gpt_mounted_device(_known(self.os_guid))

    def system_mounted_device(self) -> bytes:
        if self.generation == "gen1":
            return mbr_mounted_device(_known(self.mbr_signature), _known(self.system_offset))
        return gpt_mounted_device(_known(self.esp_guid))


def mbr_mounted_device(signature: int, offset: int) -> bytes:
    """MountedDevices data of an MBR partition: u32 disk signature + u64 partition byte offset."""
    return struct.pack("<IQ", signature, offset)


def gpt_mounted_device(partition_guid: str) -> bytes:
    """MountedDevices data of a GPT partition: "DMIO:ID:" + the partition GUID (bytes_le)."""
    return b"DMIO:ID:" + uuid.UUID(partition_guid).bytes_le


def _device_header(device_type: int, size: int = 72) -> bytes:
    # 16-byte additional-options GUID (zero), then DeviceType, Flags, Size, reserved (§6).
    return bytes(16) + struct.pack("<IIII", device_type, 0, size, 0)


def gpt_partition_device(partition_guid: str, disk_guid: str) -> bytes:
    """88-byte BCD partition device, GPT: partition GUID, block type 0, style 0, disk GUID."""
    data = (_device_header(6) + uuid.UUID(partition_guid).bytes_le + struct.pack("<II", 0, 0)
            + uuid.UUID(disk_guid).bytes_le + bytes(16))
    assert len(data) == 88
    return data


def mbr_partition_device(signature: int, offset: int) -> bytes:
    """88-byte BCD partition device, MBR: byte offset, block type 0, style 1, disk signature."""
    data = (_device_header(6) + struct.pack("<QQ", offset, 0) + struct.pack("<II", 0, 1)
            + struct.pack("<I", signature) + bytes(12) + bytes(16))
    assert len(data) == 88
    return data


def boot_device() -> bytes:
    """`device boot` (type 5), 88 bytes, rest zero (windeploy_win10_bios_mbr_BCD)."""
    return _device_header(5) + bytes(56)


# --- small helpers -------------------------------------------------------------------------------
def mounted_device_name(letter_or_name: str) -> str:
    """"C:" -> "\\DosDevices\\C:"; a full value name ("\\??\\Volume{...}") is kept."""
    if letter_or_name.startswith("\\"):
        return letter_or_name
    return "\\DosDevices\\" + letter_or_name.upper().rstrip("\\").rstrip(":") + ":"


def volume_name(seed: str) -> str:
    """A stable `\\??\\Volume{guid}` name for a volume (Windows makes random ones)."""
    digest = hashlib.sha256(("rescue-volume/" + seed).encode()).digest()
    return "\\??\\Volume{" + str(uuid.UUID(bytes=digest[:16], version=4)) + "}"
