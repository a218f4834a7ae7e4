"""Real hives and real-format transaction logs for the safety engine's tests (rescue.safety).

Hives are built with rescue.hive.write_minimal_hive + hivex (ground rule 6). Logs are built in the
new format (base block type 6 + HvLE entries with Marvin32 hashes) from the pages that differ
between two real hive files, i.e. what Windows would have logged for that change; the Marvin32
implementation itself is checked against hashes Windows wrote (tests/unit/test_logreplay.py).
"""

from __future__ import annotations

import struct
from pathlib import Path

from rescue.hive import Hive, write_minimal_hive
from rescue.hive.regf import BASE_BLOCK_SIZE, base_block_checksum
from rescue.hive.values import REG_DWORD, REG_SZ, encode_dword, encode_sz
from rescue.safety.logreplay import marvin32

PAGE = 4096


def make_hive(path: Path, values: dict[str, list[tuple[str, int, bytes]]] | None = None) -> Path:
    """A real hive with `values` ({key: [(name, type, data)]}); default: a small SYSTEM-like tree."""
    if values is None:
        values = {
            "Select": [("Current", REG_DWORD, encode_dword(1))],
            "ControlSet001\\Control\\CrashControl": [("CrashDumpEnabled", REG_DWORD, encode_dword(0)),
                                                      ("DumpFile", REG_SZ, encode_sz("%SystemRoot%\\MEMORY.DMP"))],
            "ControlSet001\\Services\\Old": [("Start", REG_DWORD, encode_dword(4))],
        }
    write_minimal_hive(path, root_name="ROOT")
    with Hive(path, write=True) as h:
        for key, vals in values.items():
            h.ensure_key(key)
            for name, t, data in vals:
                h.set(key, name, t, data)
        h.commit()
    return path


def set_sequences(path: Path, primary: int, secondary: int) -> None:
    """Rewrite the base block's sequence numbers (and its checksum, so only the dirtiness differs)."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<II", data, 4, primary, secondary)
    struct.pack_into("<I", data, 508, base_block_checksum(bytes(data[:512])))
    path.write_bytes(bytes(data))


def sequences(path: Path) -> tuple[int, int]:
    return struct.unpack_from("<II", path.read_bytes(), 4)


def changed_pages(old: bytes, new: bytes) -> list[tuple[int, bytes]]:
    """(offset in the hive bins data, 4096 bytes) of every page of `new` that differs from `old`."""
    pages = []
    for off in range(BASE_BLOCK_SIZE, len(new), PAGE):
        if new[off:off + PAGE] != old[off:off + PAGE]:
            pages.append((off - BASE_BLOCK_SIZE, new[off:off + PAGE]))
    return pages


def log_entry(seq: int, bins_size: int, pages: list[tuple[int, bytes]], flags: int = 0) -> bytes:
    refs = b"".join(struct.pack("<II", off, len(data)) for off, data in pages)
    body = refs + b"".join(data for _, data in pages)
    size = (40 + len(body) + 511) // 512 * 512
    body = body + b"\x00" * (size - 40 - len(body))
    head = struct.pack("<4sIIIII", b"HvLE", size, flags, seq, bins_size, len(pages))
    hash1 = marvin32(body)
    head += struct.pack("<Q", hash1)
    hash2 = marvin32(head)
    return head + struct.pack("<Q", hash2) + body


def log_file(hive_head: bytes, seq: int, entries: list[bytes], *, file_type: int = 6) -> bytes:
    """A transaction log: the hive's base block (first 512 bytes, type `file_type`, both sequence
    numbers `seq`, checksum fixed) followed by `entries`."""
    base = bytearray(hive_head[:512])
    struct.pack_into("<II", base, 4, seq, seq)
    struct.pack_into("<I", base, 28, file_type)
    struct.pack_into("<I", base, 508, base_block_checksum(bytes(base)))
    return bytes(base) + b"".join(entries)


def dirty_hive_with_log(folder: Path, name: str = "SYSTEM", *, seq: int = 10) -> tuple[Path, bytes]:
    """A hive on disk as Windows leaves it after a crash: the primary is at sequence seq/seq-1 with old
    data, and .LOG1 holds one entry (sequence seq-1... seq) carrying a change only the log has
    (ControlSet001\\Services\\FromLog Start=3). Returns (hive path, bytes of the fully recovered hive
    as hivex wrote it, for comparison)."""
    hive = make_hive(folder / name)
    set_sequences(hive, seq - 1, seq - 1)
    old = hive.read_bytes()
    newer = folder / f"{name}.newer"
    newer.write_bytes(old)
    with Hive(newer, write=True) as h:
        h.ensure_key("ControlSet001\\Services\\FromLog")
        h.set("ControlSet001\\Services\\FromLog", "Start", REG_DWORD, encode_dword(3))
        h.commit()
    new = newer.read_bytes()
    newer.unlink()
    bins = struct.unpack_from("<I", new, 40)[0]
    entry = log_entry(seq, bins, changed_pages(old, new))
    (folder / f"{name}.LOG1").write_bytes(log_file(old, seq, [entry]))
    (folder / f"{name}.LOG2").write_bytes(b"")
    set_sequences(hive, seq, seq - 1)          # Windows bumped the primary number, never the secondary
    return hive, new
