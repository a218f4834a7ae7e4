"""Parse MBR and GPT partition tables from the disk's first sectors, on the host.

Why: under TCG every appliance call costs a round trip, and reading a table through parted
(`part_list` + one `part_get_*` per field per partition) took tens of seconds per disk here. One
`pread_device` of the first 32 KiB gives everything a Windows layout needs.
Sources: UEFI Specification 2.10 §5.2 (legacy MBR: 4 entries at offset 446, boot indicator 0x80,
signature 0x55AA; disk signature at 440 per Windows) and §5.3 (GPT header at LBA 1 "EFI PART":
disk GUID at 56, entries LBA at 72, entry count at 80, entry size at 84; entry = type GUID,
unique GUID, first LBA, last LBA, attributes, 36 UTF-16 name chars; GUIDs stored mixed-endian).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from rescue.errors import VerifyError

SECTOR = 512
HEAD_BYTES = 34 * SECTOR   # protective MBR + GPT header + 128 entries of 128 bytes


@dataclass(frozen=True)
class RawPartition:
    number: int               # 1-based slot number, as Linux and parted number them
    start: int                # bytes
    size: int                 # bytes
    mbr_type: int | None = None
    bootable: bool = False
    gpt_type: str | None = None
    gpt_guid: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class RawTable:
    table: str | None         # "mbr", "gpt" or None
    mbr_signature: int | None = None
    gpt_guid: str | None = None
    partitions: tuple[RawPartition, ...] = ()
    needs_fallback: bool = False   # extended/logical MBR partitions or an odd GPT: ask parted instead


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)).upper()


def parse(head: bytes) -> RawTable:
    if len(head) < SECTOR or head[510:512] != b"\x55\xaa":
        return RawTable(None)
    entries = [struct.unpack_from("<B3sB3sII", head, 446 + 16 * i) for i in range(4)]
    if any(e[2] == 0xEE for e in entries):          # protective MBR: a GPT disk
        return _parse_gpt(head)
    signature = struct.unpack_from("<I", head, 440)[0]
    parts, fallback = [], False
    for i, (status, _chs1, ptype, _chs2, lba, count) in enumerate(entries, 1):
        if ptype == 0 or count == 0:
            continue
        if ptype in (0x05, 0x0F, 0x85):             # extended: logical partitions live in an EBR chain
            fallback = True
        parts.append(RawPartition(i, lba * SECTOR, count * SECTOR, mbr_type=ptype, bootable=status == 0x80))
    return RawTable("mbr", mbr_signature=signature, partitions=tuple(parts), needs_fallback=fallback)


def _parse_gpt(head: bytes) -> RawTable:
    hdr = head[SECTOR:2 * SECTOR]
    if hdr[:8] != b"EFI PART":
        # 4 KiB-sector disks put the header at byte 4096, beyond what we read: let parted decide.
        return RawTable("gpt", needs_fallback=True)
    disk_guid = _guid(hdr[56:72])
    entries_lba, count, size = struct.unpack_from("<QII", hdr, 72)
    start = entries_lba * SECTOR
    if size < 128 or start + count * size > len(head):
        return RawTable("gpt", gpt_guid=disk_guid, needs_fallback=True)
    parts = []
    for i in range(count):
        e = head[start + i * size:start + (i + 1) * size]
        if e[:16] == b"\x00" * 16:
            continue
        first, last = struct.unpack_from("<QQ", e, 32)
        name = e[56:128].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        parts.append(RawPartition(i + 1, first * SECTOR, (last - first + 1) * SECTOR,
                                  gpt_type=_guid(e[:16]), gpt_guid=_guid(e[16:32]), name=name or None))
    return RawTable("gpt", gpt_guid=disk_guid, partitions=tuple(parts))


# --- the boot indicator (Gen1 "active" partition) ---------------------------------------------------
BOOT_INDICATOR_OFFSETS = tuple(446 + 16 * i for i in range(4))
ACTIVE = 0x80


class NotAnMbrError(ValueError):
    """The sector is not one whose boot indicators may be set (no MBR, a GPT's protective MBR, not a
    primary slot); the message says which."""


def boot_indicators(sector: bytes) -> tuple[int, ...]:
    """The status byte of each of the four primary entries."""
    return tuple(sector[o] for o in BOOT_INDICATOR_OFFSETS)


def with_active(sector: bytes, number: int) -> bytes:
    """`sector` (a disk's sector 0) with primary partition `number` (1-4) marked active (0x80) and
    every other entry that was active cleared (0x00): the MBR allows one active partition, the one
    the BIOS boot code starts (UEFI Specification 2.10 §5.2.1, Table 5-2, BootIndicator). Only those
    status bytes change; the CHS fields, types, LBAs and the disk signature stay as they are
    (parted and sfdisk may rewrite them, which is why this is done on the bytes)."""
    if len(sector) != SECTOR or sector[510:512] != b"\x55\xaa":
        raise NotAnMbrError("sector 0 holds no MBR partition table (no 0x55AA signature)")
    if any(sector[o + 4] == 0xEE for o in BOOT_INDICATOR_OFFSETS):
        raise NotAnMbrError("the disk has a GPT: its protective MBR must not mark a partition active "
                            "(UEFI firmware boots the EFI system partition)")
    if not 1 <= number <= 4:
        raise NotAnMbrError(f"partition {number} is not a primary partition (the BIOS starts only one of "
                            "the four primary entries)")
    off = BOOT_INDICATOR_OFFSETS[number - 1]
    if sector[off + 4] == 0 or struct.unpack_from("<I", sector, off + 12)[0] == 0:
        raise NotAnMbrError(f"MBR entry {number} is empty")
    out = bytearray(sector)
    for o in BOOT_INDICATOR_OFFSETS:
        if o == off:
            out[o] = ACTIVE
        elif out[o] == ACTIVE:
            out[o] = 0
    return bytes(out)


def only_boot_indicators_differ(a: bytes, b: bytes) -> bool:
    """True when two sector-0 images differ at most in the four boot indicator bytes."""
    if len(a) != len(b):
        return False
    return all(x == y or i in BOOT_INDICATOR_OFFSETS for i, (x, y) in enumerate(zip(a, b)))


# --- growing a partition: what expand writes and verifies (never trusting the tool that wrote) -----
@dataclass(frozen=True)
class GptHeader:
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    entries_lba: int
    entries: int
    entry_size: int


def gpt_header(sector: bytes) -> GptHeader | None:
    if sector[:8] != b"EFI PART":
        return None
    my, alt, first, last = struct.unpack_from("<QQQQ", sector, 24)
    entries_lba, n, size = struct.unpack_from("<QII", sector, 72)
    return GptHeader(my, alt, first, last, entries_lba, n, size)


def gpt_entries(disk_head: bytes, hdr: GptHeader) -> list[bytes]:
    start = hdr.entries_lba * SECTOR
    return [disk_head[start + i * hdr.entry_size:start + (i + 1) * hdr.entry_size] for i in range(hdr.entries)]


def mbr_entries(sector0: bytes) -> list[bytes]:
    return [sector0[446 + 16 * i:446 + 16 * (i + 1)] for i in range(4)]


def _chs(lba: int) -> bytes:
    """CHS address bytes (head, sector|cylinder high bits, cylinder low) with the 255-head,
    63-sector geometry Windows uses; (1023, 254, 63) for anything past 8 GiB, as Windows writes."""
    if lba >= 1024 * 255 * 63:
        return b"\xfe\xff\xff"
    c, rest = divmod(lba, 255 * 63)
    h, s = divmod(rest, 63)
    return bytes([h, (s + 1) | ((c >> 2) & 0xC0), c & 0xFF])


def mbr_resized(sector0: bytes, number: int, end_sector: int) -> bytes:
    """Sector 0 with primary partition `number` (1-4) ending at `end_sector` (inclusive)."""
    e = 446 + 16 * (number - 1)
    start = struct.unpack_from("<I", sector0, e + 8)[0]
    out = bytearray(sector0)
    out[e + 5:e + 8] = _chs(end_sector)
    struct.pack_into("<I", out, e + 12, end_sector - start + 1)
    return bytes(out)


def table_identity(head: bytes, table: str, number: int) -> list:
    """Everything in the partition table that must not change when partition `number` grows: the
    boot code and disk signature (MBR) or disk GUID (GPT), every other entry byte for byte, and the
    grown entry minus its end."""
    if table == "mbr":
        out: list = [head[:446]]
        for i, e in enumerate(mbr_entries(head[:512]), start=1):
            # CHS fields (bytes 1-3, 5-7) are recomputed by partitioning tools and unused by Windows.
            out.append((e[0], e[4], e[8:12]) if i == number else (e[0], e[4], e[8:16]))
        return out
    hdr = gpt_header(head[SECTOR:2 * SECTOR])
    if hdr is None:
        raise VerifyError("The GPT header cannot be read back.")
    out = [head[SECTOR + 56:SECTOR + 72], hdr.entries, hdr.entry_size, hdr.first_usable]   # disk GUID ...
    for i, e in enumerate(gpt_entries(head, hdr), start=1):
        out.append(e[:40] + e[48:] if i == number else e)
    return out


def identity_diff(before: list, after: list, table: str) -> str:
    names = (["boot code and disk signature"] if table == "mbr" else
             ["disk GUID", "number of entries", "entry size", "first usable sector"])
    diffs = []
    for i, (b, a) in enumerate(zip(before, after)):
        if b != a:
            diffs.append(names[i] if i < len(names) else f"partition entry {i - len(names) + 1}")
    return ", ".join(diffs) or "length"
