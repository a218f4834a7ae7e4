"""Grow a disk image file on the host: raw, VHD (fixed and dynamic), VHDX, qcow2.

`qemu-img resize` only handles raw and qcow2 (qemu 7.2 says "Image format driver does not support
resize" for vpc and vhdx), so VHD and VHDX are grown here, in place, the way Hyper-V's Resize-VHD
does, touching only metadata and never reading or writing data blocks except the few a larger
block table has to make room for. Every byte written is journalled first (`Journal`), so a failure
part-way restores the file byte for byte.

Sources:
- VHD: Microsoft "Virtual Hard Disk Image Format Specification" v1.0 (hard disk footer, dynamic disk
  header, block allocation table, CHS geometry algorithm in appendix "CHS calculation"); qemu's
  block/vpc.c for which creators qemu sizes by CHS instead of "current size" and its 2040 GiB limit.
- VHDX: [MS-VHDX] v1.0: headers (2.2.2), region table (2.2.3), BAT with interleaved sector bitmap
  entries and the chunk ratio (2.5), metadata region and its known items (2.6), CRC-32C checksums.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from rescue.errors import InputError, UnsafeStateError, WriteFailedError

if TYPE_CHECKING:
    from rescue.disk.formats import DiskImage

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
VHD_MAX = 2040 * GiB                 # VHD format maximum (spec; qemu refuses more)
VHDX_MAX = 64 * TiB
FORMAT_MAX = {"vpc": VHD_MAX, "vhdx": VHDX_MAX}


# --- journal --------------------------------------------------------------------------------------
@dataclass
class Journal:
    """Old bytes of every region about to be overwritten, and the original length: `restore()`
    puts the file back byte for byte (regions written past the old end vanish with the truncate)."""

    path: str
    length: int
    entries: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, path: str) -> "Journal":
        return cls(path, os.path.getsize(path))

    def write(self, fh: BinaryIO, offset: int, data: bytes) -> None:
        if offset < self.length:
            fh.seek(offset)
            self.entries.append((offset, fh.read(min(len(data), self.length - offset))))
        fh.seek(offset)
        fh.write(data)

    def restore(self) -> None:
        with open(self.path, "r+b") as fh:
            for offset, old in reversed(self.entries):
                fh.seek(offset)
                fh.write(old)
            fh.truncate(self.length)
            fh.flush()
            os.fsync(fh.fileno())


def _read(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


# --- VHD ------------------------------------------------------------------------------------------
QEMU_CHS_CREATORS_EXEMPT = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")
VHD_MAX_GEOMETRY = 65535 * 16 * 255


def vhd_geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) per the VHD specification's CHS algorithm."""
    total = min(size // 512, VHD_MAX_GEOMETRY)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def vhd_checksum(block: bytes, at: int) -> int:
    b = bytearray(block)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def _new_footer(footer: bytes, size: int) -> bytes:
    f = bytearray(footer)
    struct.pack_into(">Q", f, 48, size)
    c, h, s = vhd_geometry(size)
    struct.pack_into(">HBB", f, 56, c, h, s)
    # qemu sizes "vpc "/"qemu"-made images by CHS, which cannot express every size: mark the image
    # as sized by its footer ("qem2", what `qemu-img create -o force_size` writes) when CHS falls short.
    # Hyper-V, Azure and Windows always use the footer's current size.
    if bytes(f[28:32]) not in QEMU_CHS_CREATORS_EXEMPT and c * h * s * 512 != size and c * h * s != VHD_MAX_GEOMETRY:
        f[28:32] = b"qem2"
    struct.pack_into(">I", f, 64, vhd_checksum(bytes(f), 64))
    return bytes(f)


def grow_vhd(path: str, new_size: int, journal: Journal) -> None:
    with open(path, "r+b") as fh:
        fh.seek(0, os.SEEK_END)
        file_size = fh.tell()
        footer = _read(fh, file_size - 512, 512)
        if footer[:8] != b"conectix":
            raise InputError(f"{path} has no VHD footer at its end.")
        disk_type = struct.unpack_from(">I", footer, 60)[0]
        old_size = struct.unpack_from(">Q", footer, 48)[0]
        new_footer = _new_footer(footer, new_size)
        if disk_type == 2:
            # Fixed: data then footer. New footer first (the file stays a valid VHD at every step),
            # then the old footer's bytes, now inside the disk, become zeros.
            journal.write(fh, old_size + (new_size - old_size), new_footer)
            journal.write(fh, old_size, bytes(512))
        elif disk_type == 3:
            _grow_dynamic_vhd(fh, path, footer, new_footer, file_size, new_size, journal)
        else:
            raise InputError(f"{path} is a differencing VHD; merge it into its parent first.")
        fh.flush()
        os.fsync(fh.fileno())


def _grow_dynamic_vhd(fh: BinaryIO, path: str, footer: bytes, new_footer: bytes, file_size: int, new_size: int,
                      journal: Journal) -> None:
    dyn_off = struct.unpack_from(">Q", footer, 16)[0]
    dyn = _read(fh, dyn_off, 1024)
    if dyn[:8] != b"cxsparse":
        raise InputError(f"{path} is a damaged dynamic VHD (no dynamic disk header).")
    table_off = struct.unpack_from(">Q", dyn, 16)[0]
    max_entries, block_size = struct.unpack_from(">II", dyn, 28)
    bat = list(struct.unpack(f">{max_entries}I", _read(fh, table_off, 4 * max_entries)))
    bitmap = ((block_size // 512 + 7) // 8 + 511) // 512 * 512
    new_entries = -(-new_size // block_size)
    data_end = max([file_size - 512] + [e * 512 + bitmap + block_size for e in bat if e != 0xFFFFFFFF])
    if new_entries > max_entries:
        need_end = table_off + -(-4 * new_entries // 512) * 512
        in_way = sorted((e, i) for i, e in enumerate(bat) if e != 0xFFFFFFFF and e * 512 < need_end)
        # Make room for the larger table: copy the blocks that sit right after it to the end of the
        # file (bounded: 4 bytes of table per block, so a few blocks even for 2 TiB).
        dest = -(-data_end // 512) * 512
        final_end = dest + len(in_way) * (bitmap + block_size)
        journal.write(fh, final_end, footer)                # a valid closing footer at every step
        for k, (sector, idx) in enumerate(in_way):
            data = _read(fh, sector * 512, bitmap + block_size)
            new_pos = dest + k * (bitmap + block_size)
            journal.write(fh, new_pos, data)
            bat[idx] = new_pos // 512
        table = struct.pack(f">{max_entries}I", *bat) + b"\xff" * (4 * (new_entries - max_entries))
        table += b"\xff" * (-len(table) % 512)
        journal.write(fh, table_off, table)
        d = bytearray(dyn)
        struct.pack_into(">I", d, 28, new_entries)
        struct.pack_into(">I", d, 36, vhd_checksum(bytes(d), 36))
        journal.write(fh, dyn_off, bytes(d))
        trailer = final_end
    else:
        trailer = file_size - 512
    journal.write(fh, trailer, new_footer)
    journal.write(fh, 0, new_footer)                        # the copy at the start


# --- VHDX -----------------------------------------------------------------------------------------
def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _with_crc(block: bytes, at: int = 4) -> bytes:
    b = bytearray(block)
    b[at:at + 4] = b"\0\0\0\0"
    struct.pack_into("<I", b, at, crc32c(bytes(b)))
    return bytes(b)


def _crc_ok(block: bytes, at: int = 4) -> bool:
    return _with_crc(block, at)[at:at + 4] == block[at:at + 4]


BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
HEADERS = (64 * 1024, 128 * 1024)
REGION_TABLES = (192 * 1024, 256 * 1024)
PAYLOAD_BLOCK_FULLY_PRESENT = 6


def _guid(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes_le=raw)


def grow_vhdx(path: str, new_size: int, journal: Journal) -> None:
    with open(path, "r+b") as fh:
        headers = []
        for off in HEADERS:
            h = _read(fh, off, 4096)
            if h[:4] == b"head" and _crc_ok(h):
                headers.append((struct.unpack_from("<Q", h, 8)[0], off, h))
        if not headers:
            raise InputError(f"{path} is a damaged VHDX (no valid header).")
        seq, cur_off, header = max(headers)
        if any(header[48:64]):
            raise UnsafeStateError(f"{path} has a VHDX log that was never replayed (the writer stopped mid-update).",
                                   hint=f"Let qemu replay it first: `qemu-img check -r all -f vhdx {path}`; nothing was written.")
        rt = _read(fh, REGION_TABLES[0], 64 * 1024)
        if rt[:4] != b"regi" or not _crc_ok(rt):
            raise InputError(f"{path} is a damaged VHDX (bad region table).")
        count = struct.unpack_from("<I", rt, 8)[0]
        regions = {}
        for i in range(count):
            e = 16 + 32 * i
            regions[_guid(rt[e:e + 16])] = (e, *struct.unpack_from("<QI", rt, e + 16))
        bat_entry_pos, bat_off, bat_len = regions[BAT_GUID]
        _, meta_off, _ = regions[METADATA_GUID]
        meta = _read(fh, meta_off, 64 * 1024)
        if meta[:8] != b"metadata":
            raise InputError(f"{path} is a damaged VHDX (no metadata table).")
        items = {}
        for i in range(struct.unpack_from("<H", meta, 10)[0]):
            e = 32 + 32 * i
            items[_guid(meta[e:e + 16])] = struct.unpack_from("<II", meta, e + 16)
        def item(g: uuid.UUID, size: int) -> tuple[bytes, int]:
            o, _ = items[g]
            return _read(fh, meta_off + o, size), meta_off + o
        fp, _ = item(FILE_PARAMETERS, 8)
        block_size, flags = struct.unpack("<II", fp)
        if flags & 2:
            raise InputError(f"{path} is a differencing VHDX; merge it into its parent first.")
        leave_allocated = bool(flags & 1)
        raw, size_at = item(VIRTUAL_DISK_SIZE, 8)
        old_size = struct.unpack("<Q", raw)[0]
        lss = struct.unpack("<I", item(LOGICAL_SECTOR_SIZE, 4)[0])[0]
        if new_size % lss:
            raise InputError(f"The new size must be a multiple of the VHDX's {lss}-byte sectors.")
        chunk = (1 << 23) * lss // block_size

        def total_entries(size: int) -> int:
            blocks = -(-size // block_size)
            return blocks + (blocks - 1) // chunk
        old_total, new_total = total_entries(old_size), total_entries(new_size)
        old_bat = _read(fh, bat_off, 8 * old_total)
        entries = list(struct.unpack(f"<{old_total}Q", old_bat))
        fh.seek(0, os.SEEK_END)
        file_end = fh.tell()
        block_end = max([file_end] + [(e >> 20) * MiB + block_size for e in entries if (e & 7) in (6, 7)])
        alloc = -(-block_end // MiB) * MiB        # next free 1 MiB-aligned offset
        new_entries = entries + [0] * (new_total - old_total)
        if leave_allocated:
            # Fixed VHDX: every payload block is present. New blocks get file space past the end (a
            # sparse extension of the file: no data is written, it reads as zeros).
            old_blocks = -(-old_size // block_size)
            for b in range(old_blocks, -(-new_size // block_size)):
                idx = b + b // chunk
                new_entries[idx] = PAYLOAD_BLOCK_FULLY_PRESENT | ((alloc // MiB) << 20)
                alloc += -(-block_size // MiB) * MiB
        table = struct.pack(f"<{new_total}Q", *new_entries)
        if len(table) <= bat_len:
            journal.write(fh, bat_off, table)
            new_bat_off, new_bat_len = bat_off, bat_len
        else:
            new_bat_off, new_bat_len = alloc, -(-len(table) // MiB) * MiB
            alloc += new_bat_len
            journal.write(fh, new_bat_off, table + bytes(new_bat_len - len(table)))
        if leave_allocated and alloc > file_end:
            fh.truncate(alloc)
        if (new_bat_off, new_bat_len) != (bat_off, bat_len):
            region_table = bytearray(rt)
            struct.pack_into("<QI", region_table, bat_entry_pos + 16, new_bat_off, new_bat_len)
            signed = _with_crc(bytes(region_table))
            journal.write(fh, REGION_TABLES[1], signed)
            journal.write(fh, REGION_TABLES[0], signed)
        journal.write(fh, size_at, struct.pack("<Q", new_size))
        # Headers: the non-current slot first with the next sequence number, then the other, each
        # naming new write GUIDs (MS-VHDX 2.2.2.1: the file and the virtual disk's data changed).
        other = HEADERS[1] if cur_off == HEADERS[0] else HEADERS[0]
        file_guid, data_guid = uuid.uuid4().bytes_le, uuid.uuid4().bytes_le
        for n, slot in enumerate((other, cur_off), start=1):
            hdr = bytearray(header)
            struct.pack_into("<Q", hdr, 8, seq + n)
            hdr[16:32], hdr[32:48] = file_guid, data_guid
            journal.write(fh, slot, _with_crc(bytes(hdr)))
        fh.flush()
        os.fsync(fh.fileno())


# --- every format ---------------------------------------------------------------------------------
def qemu_virtual_size(path: str, fmt: str) -> int:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", "-f", fmt, path],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise WriteFailedError(f"qemu-img cannot read {path} any more: {out.stderr.strip()}")
    import json

    return int(json.loads(out.stdout)["virtual-size"])


def qemu_check(path: str, fmt: str) -> str | None:
    """`qemu-img check` (metadata consistency) for formats that support it; None when clean."""
    if fmt not in ("qcow2", "vhdx", "vpc"):
        return None
    out = subprocess.run(["qemu-img", "check", "-f", fmt, path], capture_output=True, text=True, timeout=600)
    if out.returncode in (0,) or "does not support checks" in out.stderr:
        return None
    return (out.stdout + out.stderr).strip().splitlines()[-1] if (out.stdout + out.stderr).strip() else f"exit {out.returncode}"


def grow(image: DiskImage, new_size: int) -> Journal | None:
    """Grow `image` (rescue.disk.formats.DiskImage) to `new_size` virtual bytes, then check that qemu
    reads it back at that size with consistent metadata. On any failure the file is restored byte
    for byte (raw/VHD/VHDX) and WriteFailedError raised. Returns the journal (None for qcow2, whose
    growth qemu-img does itself)."""
    path, fmt = image.path, image.format
    if image.is_block_device:
        raise UnsafeStateError(f"{path} is a block device; it cannot be grown from here.")
    journal = Journal.start(path) if fmt != "qcow2" else None
    try:
        if fmt == "raw":
            with open(path, "r+b") as fh:
                fh.truncate(new_size)
                os.fsync(fh.fileno())
        elif fmt == "qcow2":
            out = subprocess.run(["qemu-img", "resize", "-f", "qcow2", path, str(new_size)],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise WriteFailedError(f"qemu-img resize failed: {out.stderr.strip()}")
        elif fmt in ("vpc", "vhdx"):
            assert journal is not None          # started above for every format but qcow2
            (grow_vhd if fmt == "vpc" else grow_vhdx)(path, new_size, journal)
        else:
            raise InputError(f"Growing a {fmt} image is not supported; convert it to VHD, VHDX, qcow2 or raw.")
        got = qemu_virtual_size(path, fmt)
        problem = qemu_check(path, fmt)
        if got != new_size or problem:
            raise WriteFailedError(f"{path} did not read back as a {new_size}-byte {fmt} image "
                                   f"(qemu sees {got} bytes{'; ' + problem if problem else ''}).")
    except BaseException:
        if journal is not None:
            journal.restore()
        raise
    return journal
