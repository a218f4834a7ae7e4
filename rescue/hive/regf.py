"""The regf base block, and a writer for a minimal empty hive.

Layout of the base block and hive bins: libyal "Windows NT Registry File (REGF) format"
(libregf/documentation), Windows Internals 7th ed. ch. 10, and hivex's lib/hivex-internal.h.
hivex can edit a hive but cannot create one, so `write_minimal_hive` builds the smallest valid hive
(base block + one 4 KiB hbin holding the root nk cell, one sk cell and one free cell); hivex then
adds everything else.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path

from rescue.errors import CorruptHiveError

REGF_MAGIC = b"regf"
BASE_BLOCK_SIZE = 4096
HBIN_SIZE = 4096
ROOT_CELL_OFFSET = 0x20  # relative to the first hbin; the first cell after the 32-byte hbin header


def filetime_now() -> int:
    """Current time as a Windows FILETIME (100 ns ticks since 1601-01-01)."""
    return int(time.time() * 10_000_000) + 116_444_736_000_000_000


def base_block_checksum(block: bytes) -> int:
    """XOR of the first 127 dwords; 0 and 0xFFFFFFFF are remapped (libregf, Windows' HvpHeaderCheckSum)."""
    csum = 0
    for (dword,) in struct.iter_unpack("<I", block[:508]):
        csum ^= dword
    if csum == 0xFFFFFFFF:
        return 0xFFFFFFFE
    if csum == 0:
        return 1
    return csum


@dataclass(frozen=True)
class RegfHeader:
    primary_sequence: int
    secondary_sequence: int
    last_written: int
    major: int
    minor: int
    file_type: int
    root_cell_offset: int
    hive_bins_size: int
    file_name: str
    checksum_ok: bool

    @property
    def dirty(self) -> bool:
        """Windows bumps the primary sequence before writing and the secondary after; if they differ
        the last write did not finish and the newest data may only be in the .LOG1/.LOG2 files."""
        return self.primary_sequence != self.secondary_sequence


def parse_header(data: bytes, *, what: str = "file") -> RegfHeader:
    if len(data) < 512 or data[:4] != REGF_MAGIC:
        raise CorruptHiveError(f"The {what} is not a registry hive (no 'regf' signature).")
    (seq1, seq2, ts, major, minor, ftype, _fmt, root, bins_size, _cluster) = struct.unpack_from(
        "<IIQIIIIIII", data, 4
    )
    name = data[0x30:0x70].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
    (stored,) = struct.unpack_from("<I", data, 0x1FC)
    return RegfHeader(
        primary_sequence=seq1,
        secondary_sequence=seq2,
        last_written=ts,
        major=major,
        minor=minor,
        file_type=ftype,
        root_cell_offset=root,
        hive_bins_size=bins_size,
        file_name=name,
        checksum_ok=stored == base_block_checksum(data[:512]),
    )


def read_header(path: str | Path) -> RegfHeader:
    with open(path, "rb") as fh:
        return parse_header(fh.read(BASE_BLOCK_SIZE), what=f"file {path}")


def is_hive_file(path: str | Path) -> bool:
    """True when the file starts with the regf signature (how TARGET arguments are told apart)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == REGF_MAGIC
    except OSError:
        return False


def _security_descriptor() -> bytes:
    """Self-relative SD: owner Administrators, group SYSTEM, DACL granting Everyone KEY_ALL_ACCESS.

    Windows requires every key to reference a valid sk cell; hivex copies the parent's sk reference
    into new keys, so the root's descriptor is what every key built on this hive inherits.
    """
    admins = struct.pack("<BB6sII", 1, 2, b"\x00\x00\x00\x00\x00\x05", 32, 544)
    system = struct.pack("<BB6sI", 1, 1, b"\x00\x00\x00\x00\x00\x05", 18)
    everyone = struct.pack("<BB6sI", 1, 1, b"\x00\x00\x00\x00\x00\x01", 0)
    ace_body = struct.pack("<I", 0x000F003F) + everyone
    ace = struct.pack("<BBH", 0, 0x02, 4 + len(ace_body)) + ace_body  # ACCESS_ALLOWED, CONTAINER_INHERIT
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    header_len = 20
    owner_off = header_len
    group_off = owner_off + len(admins)
    dacl_off = group_off + len(system)
    header = struct.pack("<BBHIIII", 1, 0, 0x8004, owner_off, group_off, 0, dacl_off)
    return header + admins + system + acl


def _cell(payload: bytes) -> bytes:
    size = (4 + len(payload) + 7) & ~7
    return struct.pack("<i", -size) + payload + b"\x00" * (size - 4 - len(payload))


def write_minimal_hive(path: str | Path, *, root_name: str = "ROOT", file_name: str = "",
                       minor_version: int = 3) -> None:
    """Write an empty hive with only a root key named `root_name`.

    Real hives' root key names: SYSTEM hives use e.g. "ROOT" or "CsiTool-CreateHive-{...}"; BCD stores
    made by bcdedit use "NewStoreRoot" (BCD-REFERENCE.md §1). hivex does not care which.
    """
    now = filetime_now()
    name = root_name.encode("ascii")
    nk_size = (4 + 0x4C + len(name) + 7) & ~7
    sk_offset = ROOT_CELL_OFFSET + nk_size
    nk = struct.pack(
        "<2sHQIIIIIIIIIIIIIIIHH",
        b"nk", 0x2C, now, 0, 0,          # flags: HIVE_ENTRY | NO_DELETE | COMP_NAME (ASCII name)
        0, 0, 0xFFFFFFFF, 0xFFFFFFFF,     # subkeys, volatile subkeys, their lists
        0, 0xFFFFFFFF,                    # values, value list
        sk_offset, 0xFFFFFFFF,            # security cell, class name
        0, 0, 0, 0, 0,                    # max name/class/value name/value data lengths, workvar
        len(name), 0,
    ) + name
    sd = _security_descriptor()
    sk = struct.pack("<2sHIIII", b"sk", 0, sk_offset, sk_offset, 1, len(sd)) + sd
    cells = _cell(nk) + _cell(sk)
    free = HBIN_SIZE - 32 - len(cells)
    cells += struct.pack("<i", free) + b"\x00" * (free - 4)
    hbin = struct.pack("<4sIIQQI", b"hbin", 0, HBIN_SIZE, 0, now, 0) + cells
    assert len(hbin) == HBIN_SIZE

    base = bytearray(BASE_BLOCK_SIZE)
    struct.pack_into("<4sIIQIIIIIII", base, 0, REGF_MAGIC, 1, 1, now, 1, minor_version, 0, 1,
                     ROOT_CELL_OFFSET, HBIN_SIZE, 1)
    fname = file_name.encode("utf-16-le")[:62]
    base[0x30:0x30 + len(fname)] = fname
    struct.pack_into("<I", base, 0x1FC, base_block_checksum(bytes(base)))
    Path(path).write_bytes(bytes(base) + hbin)
