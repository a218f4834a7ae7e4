"""Just enough NTFS on-disk format to read metadata offline: boot sector, MFT records, runlists,
$Volume flags and $Bitmap statistics. Reads a few KiB per question, never file data.

Sources: the NTFS layout as documented by the Linux-NTFS project ("NTFS Documentation", R. Russon &
Y. Fledel: boot sector fields, FILE record header and update sequence array, attribute header,
mapping pairs (runlists), $VOLUME_INFORMATION flags, $ATTRIBUTE_LIST entries) and ntfs-3g's
layout.h, which uses the same structures. Every function takes a `read(offset, size) -> bytes`
callable over the partition, so it is tested on host bytes and used through the appliance alike.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from rescue.errors import RescueError

Reader = Callable[[int, int], bytes]

AT_STANDARD_INFORMATION = 0x10
AT_ATTRIBUTE_LIST = 0x20
AT_DATA = 0x80
AT_VOLUME_INFORMATION = 0x70
AT_END = 0xFFFFFFFF
VOLUME_IS_DIRTY = 0x0001
MFT_RECORD_MFT, MFT_RECORD_VOLUME, MFT_RECORD_BITMAP = 0, 3, 6


class NtfsFormatError(RescueError):
    """Metadata that does not parse as NTFS (a damaged volume): reported, never guessed around."""


@dataclass(frozen=True)
class BootSector:
    bytes_per_sector: int
    cluster_size: int
    total_sectors: int
    mft_lcn: int
    mftmirr_lcn: int
    record_size: int

    @property
    def total_clusters(self) -> int:
        return self.total_sectors * self.bytes_per_sector // self.cluster_size


def parse_boot_sector(data: bytes) -> BootSector:
    if len(data) < 512 or data[3:11] != b"NTFS    ":
        raise NtfsFormatError("The partition does not start with an NTFS boot sector.")
    bps = struct.unpack_from("<H", data, 0x0B)[0]
    spc = data[0x0D]
    # Cluster sizes above 64 KiB are stored as a negative power of two (Windows 10 1709+).
    spc = spc if spc <= 0x80 else 1 << (256 - spc)
    total, mft, mirr = struct.unpack_from("<QQQ", data, 0x28)
    cpr = struct.unpack_from("<b", data, 0x40)[0]
    cluster = bps * spc
    record = cluster * cpr if cpr > 0 else 1 << -cpr
    if bps not in (512, 1024, 2048, 4096) or not cluster or record < 256:
        raise NtfsFormatError("The NTFS boot sector holds impossible sizes.")
    return BootSector(bps, cluster, total, mft, mirr, record)


def apply_fixups(record: bytes, sector: int = 512) -> bytes:
    """Undo the update sequence array: the last two bytes of every sector were replaced on disk by
    the update sequence number; the originals sit in the array."""
    if record[:4] != b"FILE":
        raise NtfsFormatError("An MFT record lacks its FILE signature.")
    usa_ofs, usa_count = struct.unpack_from("<HH", record, 4)
    buf = bytearray(record)
    usn = record[usa_ofs:usa_ofs + 2]
    for i in range(1, usa_count):
        end = i * sector - 2
        if end + 2 > len(buf):
            break
        if buf[end:end + 2] != usn:
            raise NtfsFormatError("An MFT record is torn (update sequence mismatch).")
        buf[end:end + 2] = record[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return bytes(buf)


@dataclass(frozen=True)
class Attribute:
    type: int
    name: str
    resident: bool
    value: bytes = b""                        # resident value
    runs: tuple[tuple[int | None, int], ...] = ()   # non-resident: (lcn or None if sparse, clusters)
    lowest_vcn: int = 0
    data_size: int = 0


def decode_runlist(data: bytes, offset: int) -> list[tuple[int | None, int]]:
    runs: list[tuple[int | None, int]] = []
    lcn = 0
    pos = offset
    while pos < len(data) and data[pos]:
        hdr = data[pos]
        ln, on = hdr & 0x0F, hdr >> 4
        pos += 1
        length = int.from_bytes(data[pos:pos + ln], "little")
        pos += ln
        if on:
            lcn += int.from_bytes(data[pos:pos + on], "little", signed=True)
            runs.append((lcn, length))
        else:
            runs.append((None, length))       # sparse run
        pos += on
    return runs


def attributes(record: bytes) -> list[Attribute]:
    first = struct.unpack_from("<H", record, 0x14)[0]
    pos, out = first, []
    while pos + 16 <= len(record):
        atype, alen = struct.unpack_from("<II", record, pos)
        if atype == AT_END or alen == 0:
            break
        nonres, nlen, noff = record[pos + 8], record[pos + 9], struct.unpack_from("<H", record, pos + 10)[0]
        name = record[pos + noff:pos + noff + 2 * nlen].decode("utf-16-le", "replace")
        body = record[pos:pos + alen]
        if not nonres:
            vlen, voff = struct.unpack_from("<IH", body, 0x10)
            out.append(Attribute(atype, name, True, value=body[voff:voff + vlen], data_size=vlen))
        else:
            low = struct.unpack_from("<Q", body, 0x10)[0]
            mp = struct.unpack_from("<H", body, 0x20)[0]
            size = struct.unpack_from("<Q", body, 0x30)[0]
            out.append(Attribute(atype, name, False, runs=tuple(decode_runlist(body, mp)), lowest_vcn=low,
                                 data_size=size))
        pos += alen
    return out


class CachedReader:
    """Small reads served from aligned `block`-sized chunks read once. Why: every device read
    through the appliance costs a fixed ~80 ms under TCG whatever its size up to ~64 KiB, and a
    report reads the boot sector, MFT records 0-15 and a few more records that mostly sit in the
    same chunk. Reads of a block or more go straight through. Valid for one read-only pass."""

    def __init__(self, read: Reader, block: int = 256 << 10):
        self._read, self.block = read, block
        self._chunks: dict[int, bytes] = {}

    def __call__(self, offset: int, size: int) -> bytes:
        if size >= self.block:
            return self._read(offset, size)
        out = bytearray()
        pos, end = offset, offset + size
        while pos < end:
            base = pos - pos % self.block
            chunk = self._chunks.get(base)
            if chunk is None:
                chunk = self._chunks[base] = self._read(base, self.block)
            piece = chunk[pos - base:min(end, base + self.block) - base]
            if not piece:
                break                              # past the end of the partition
            out += piece
            pos += len(piece)
        return bytes(out)


class Volume:
    """An NTFS volume read through `read(offset, size)` (offsets within the partition; small reads
    are cached in chunks for the life of this object, so make a new one after writing)."""

    def __init__(self, read: Reader):
        self.read = CachedReader(read)
        self.boot = parse_boot_sector(self.read(0, 512))     # the first chunk: often holds the MFT too
        self._mft_runs: list[tuple[int | None, int]] | None = None
        rec0 = self._record_at(self.boot.mft_lcn * self.boot.cluster_size)
        self._mft_runs = [r for a in attributes(rec0) if a.type == AT_DATA and not a.name for r in a.runs]

    def _record_at(self, offset: int) -> bytes:
        raw = self.read(offset, self.boot.record_size)
        return apply_fixups(raw, self.boot.bytes_per_sector)

    def record(self, number: int) -> bytes:
        """MFT record `number` (= ntfs-3g's inode number), fixups applied."""
        return self._record_at(self.record_offsets(number))

    def record_offsets(self, number: int) -> int:
        """Byte offset (within the partition) of MFT record `number`."""
        byte = number * self.boot.record_size
        cs = self.boot.cluster_size
        vcn, within = divmod(byte, cs)
        for lcn, length in self._mft_runs or ():
            if vcn < length:
                if lcn is None:
                    raise NtfsFormatError(f"MFT record {number} lies in a sparse part of $MFT.")
                return (lcn + vcn) * cs + within
            vcn -= length
        raise NtfsFormatError(f"MFT record {number} is beyond the end of $MFT.")

    def records(self, numbers: Iterable[int], *, span: int = 1 << 20) -> dict[int, bytes]:
        """Many MFT records in few reads: neighbouring records are read together (ranges of at most
        `span` bytes), so 1,000 files of one folder cost one or two device reads, not 1,000 calls."""
        rs = self.boot.record_size
        want = sorted({(self.record_offsets(n), n) for n in numbers})
        out: dict[int, bytes] = {}
        i = 0
        while i < len(want):
            start = want[i][0]
            j = i
            while j + 1 < len(want) and want[j + 1][0] + rs - start <= span:
                j += 1
            blob = self.read(start, want[j][0] + rs - start)
            for off, n in want[i:j + 1]:
                try:
                    out[n] = apply_fixups(blob[off - start:off - start + rs], self.boot.bytes_per_sector)
                except NtfsFormatError:
                    pass
            i = j + 1
        return out

    def file_attributes(self, numbers: Iterable[int]) -> dict[int, int]:
        """Windows file attributes (FILE_ATTRIBUTE_*) from each record's $STANDARD_INFORMATION
        (attribute 0x10, a u32 at offset 0x20 of its value). Records that do not parse are left out."""
        out = {}
        for n, rec in self.records(numbers).items():
            for a in attributes(rec):
                if a.type == AT_STANDARD_INFORMATION and a.resident and len(a.value) >= 0x24:
                    out[n] = struct.unpack_from("<I", a.value, 0x20)[0]
                    break
        return out

    def volume_flags(self) -> int:
        for a in attributes(self.record(MFT_RECORD_VOLUME)):
            if a.type == AT_VOLUME_INFORMATION and a.resident and len(a.value) >= 12:
                return struct.unpack_from("<H", a.value, 10)[0]
        raise NtfsFormatError("$Volume has no volume information.")

    def is_dirty(self) -> bool:
        return bool(self.volume_flags() & VOLUME_IS_DIRTY)

    def data_runs(self, number: int) -> list[tuple[int | None, int]] | None:
        """The unnamed $DATA stream's runs of MFT record `number`, following an $ATTRIBUTE_LIST into
        extension records; None when the data is resident (stored inside the record)."""
        rec = self.record(number)
        attrs = attributes(rec)
        pieces = [a for a in attrs if a.type == AT_DATA and not a.name]
        alist = next((a for a in attrs if a.type == AT_ATTRIBUTE_LIST), None)
        if alist is not None:
            raw = alist.value if alist.resident else self._read_runs(alist.runs, alist.data_size)
            seen = {number}
            for ext in _attribute_list_records(raw, AT_DATA):
                if ext in seen:
                    continue
                seen.add(ext)
                pieces += [a for a in attributes(self.record(ext)) if a.type == AT_DATA and not a.name]
        if not pieces:
            return []
        if all(p.resident for p in pieces):
            return None
        runs: list[tuple[int | None, int]] = []
        for p in sorted((p for p in pieces if not p.resident), key=lambda a: a.lowest_vcn):
            runs += p.runs
        return runs

    def _read_runs(self, runs: Sequence[tuple[int | None, int]], size: int, *, piece: int = 1 << 20) -> bytes:
        """The first `size` bytes of a non-resident stream, read in pieces of at most 1 MiB."""
        cs, buf = self.boot.cluster_size, bytearray()
        for lcn, length in runs:
            n = min(length * cs, size - len(buf))
            if lcn is None:
                buf += bytes(n)
            else:
                for off in range(0, n, piece):
                    buf += self.read(lcn * cs + off, min(piece, n - off))
            if len(buf) >= size:
                break
        return bytes(buf[:size])

    def bitmap(self) -> bytes:
        """$Bitmap: one bit per cluster (1 = in use), read through its runlist (no mount needed,
        and none in the way: works while ntfs-3g has the volume mounted)."""
        runs = self.data_runs(MFT_RECORD_BITMAP)
        need = (self.boot.total_clusters + 7) // 8
        if runs is None:                       # resident (a volume of a few hundred clusters)
            a = next(a for a in attributes(self.record(MFT_RECORD_BITMAP)) if a.type == AT_DATA and not a.name)
            return a.value[:need]
        return self._read_runs(runs, need)


def _attribute_list_records(raw: bytes, atype: int) -> list[int]:
    out, pos = [], 0
    while pos + 26 <= len(raw):
        t, ln = struct.unpack_from("<IH", raw, pos)
        if ln == 0:
            break
        if t == atype:
            ref = struct.unpack_from("<Q", raw, pos + 16)[0] & 0xFFFFFFFFFFFF
            out.append(ref)
        pos += ln
    return out


def fragments(runs: list[tuple[int | None, int]] | None) -> int:
    """Extents on disk: allocated runs that do not continue the previous one (sparse runs skipped).
    Resident data (None) is 0 fragments."""
    if not runs:
        return 0
    count, end = 0, None
    for lcn, length in runs:
        if lcn is None:
            continue
        if lcn != end:
            count += 1
        end = lcn + length
    return count


@dataclass(frozen=True)
class FreeSpace:
    total_clusters: int
    free_clusters: int
    free_extents: int              # runs of free clusters
    largest_free_extent: int       # clusters

    def to_json(self, cluster_size: int) -> dict:
        return {"free_bytes": self.free_clusters * cluster_size, "free_extents": self.free_extents,
                "largest_free_extent_bytes": self.largest_free_extent * cluster_size,
                "largest_free_percent_of_free": self.largest_percent}

    @property
    def largest_percent(self) -> float | None:
        if not self.free_clusters:
            return None
        return round(100.0 * self.largest_free_extent / self.free_clusters, 1)


_FREE_BYTES = re.compile(rb"\x00+")


def bitmap_free_space(bitmap: bytes, total_clusters: int) -> FreeSpace:
    """Free-space statistics of an NTFS $Bitmap (bit n = cluster n, least significant bit first;
    1 = in use). Bits past the last cluster are ignored."""
    nbytes = (total_clusters + 7) // 8
    bitmap = bytes(bitmap[:nbytes]).ljust(nbytes, b"\xff")
    mask = (1 << total_clusters) - 1
    used = int.from_bytes(bitmap, "little") & mask
    free = ~used & mask
    # Bytes to scan, with the bits past the last cluster marked in use.
    bitmap = (used | ((1 << (8 * nbytes)) - 1) ^ mask).to_bytes(nbytes, "little")
    free_count = free.bit_count()
    starts = free & ~(free << 1)            # free clusters whose predecessor is in use (or none)
    extents = starts.bit_count()
    largest = 0
    if free_count:
        # Long runs: whole free bytes, plus the free bits that continue them in the bytes either side.
        for m in _FREE_BYTES.finditer(bitmap):
            n = 8 * (m.end() - m.start())
            if m.start() > 0:
                b = bitmap[m.start() - 1]
                n += 8 - b.bit_length()                         # free high bits of the byte before
            if m.end() < nbytes:
                b = bitmap[m.end()]
                n += (b & -b).bit_length() - 1 if b else 8      # free low bits of the byte after
            largest = max(largest, n)
        if largest < 16:   # no whole free byte anywhere: short runs only. Each `x &= x >> 1`
            x, largest = free, 0       # shortens every run by one; the rounds needed = the longest.
            while x:
                x &= x >> 1
                largest += 1
        largest = min(largest, free_count)
    return FreeSpace(total_clusters, free_count, extents, largest)
