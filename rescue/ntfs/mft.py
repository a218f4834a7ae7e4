"""Where a log reset writes: byte ranges of system files and MFT records, and how to write a record.

Built on rescue.space.ntfs (boot sector, MFT records, attributes, runlists, attribute lists); this
adds what writing needs: the update sequence protection applied again to a changed record (and
undone on log pages, which are protected the same way but are not FILE records), the volume byte
ranges holding a range of a file's data, and the $MFTMirr copy of a record. Pure code: everything
goes through a `read(offset, size) -> bytes` callable over the volume.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rescue.errors import UnsafeStateError
from rescue.space import ntfs as space_ntfs

Reader = space_ntfs.Reader
SECTOR_STRIDE = 512                 # multi-sector protection works in 512-byte strides
ATTR_VOLUME_INFORMATION = space_ntfs.AT_VOLUME_INFORMATION
ATTR_DATA = space_ntfs.AT_DATA
MFT_RECORD_LOGFILE = 2
MFT_RECORD_VOLUME = space_ntfs.MFT_RECORD_VOLUME


class NtfsFormatError(UnsafeStateError):
    """The volume's metadata is not what NTFS says it should be: never write on a guess."""


# --- multi-sector protection -------------------------------------------------------------------
def unprotect(block: bytes, what: str) -> bytes:
    """Undo the update sequence protection of a FILE record or log page; raises on a torn write."""
    usa_ofs, usa_count = struct.unpack_from("<HH", block, 4)
    if usa_count == 0 or usa_ofs + 2 * usa_count > len(block) or (usa_count - 1) * SECTOR_STRIDE > len(block):
        raise NtfsFormatError(f"{what}: bad update sequence array.")
    out = bytearray(block)
    usn = block[usa_ofs:usa_ofs + 2]
    for i in range(1, usa_count):
        end = i * SECTOR_STRIDE - 2
        if block[end:end + 2] != usn:
            raise NtfsFormatError(f"{what}: torn multi-sector write (sector {i - 1}).")
        out[end:end + 2] = block[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return bytes(out)


def protect(plain: bytes, previous_usn: int) -> bytes:
    """Apply update sequence protection to `plain` with the sequence number after `previous_usn`
    (0 and 0xFFFF skipped, as Windows and ntfs-3g do)."""
    usa_ofs, usa_count = struct.unpack_from("<HH", plain, 4)
    usn = (previous_usn + 1) & 0xFFFF
    if usn in (0, 0xFFFF):
        usn = 1
    out = bytearray(plain)
    struct.pack_into("<H", out, usa_ofs, usn)
    for i in range(1, usa_count):
        end = i * SECTOR_STRIDE - 2
        out[usa_ofs + 2 * i:usa_ofs + 2 * i + 2] = plain[end:end + 2]
        struct.pack_into("<H", out, end, usn)
    return bytes(out)


def usn_of(block: bytes) -> int:
    usa_ofs = struct.unpack_from("<H", block, 4)[0]
    return struct.unpack_from("<H", block, usa_ofs)[0]


def resident_value_offset(plain: bytes, atype: int) -> int:
    """Offset within the record of the first resident value of attribute type `atype`."""
    pos = struct.unpack_from("<H", plain, 0x14)[0]
    while pos + 24 <= len(plain):
        t, length = struct.unpack_from("<II", plain, pos)
        if t == space_ntfs.AT_END or length < 24:
            break
        if t == atype and plain[pos + 8] == 0:
            return pos + struct.unpack_from("<H", plain, pos + 0x14)[0]
        pos += length
    raise NtfsFormatError(f"No resident attribute 0x{atype:x} in the record.")


# --- the volume ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MftRecord:
    number: int
    offset: int              # volume byte offset of the record in $MFT
    raw: bytes               # as on disk (protected)
    plain: bytes             # update sequence undone


class NtfsVolume:
    """The records and file ranges a reset reads and writes. Reads straight through (no cache):
    a reset reads a few records and pages, and re-reads them after writing."""

    def __init__(self, read: Reader):
        self.read = read
        try:
            self._v = space_ntfs.Volume(read)
        except space_ntfs.NtfsFormatError as exc:
            raise NtfsFormatError(str(exc)) from None
        self.boot = self._v.boot

    def record(self, number: int) -> MftRecord:
        try:
            off = self._v.record_offsets(number)
        except space_ntfs.NtfsFormatError as exc:
            raise NtfsFormatError(str(exc)) from None
        raw = self.read(off, self.boot.record_size)
        if raw[:4] != b"FILE":
            raise NtfsFormatError(f"MFT record {number} lacks its FILE signature.")
        return MftRecord(number, off, raw, unprotect(raw, f"MFT record {number}"))

    def mirror_offset(self, number: int) -> int | None:
        """Where $MFTMirr keeps record `number` (None: not mirrored). It mirrors at least 4 records,
        or a whole cluster's worth (ntfs-3g's mftmirr_size)."""
        b = self.boot
        if number >= max(4, b.cluster_size // b.record_size):
            return None
        return b.mftmirr_lcn * b.cluster_size + number * b.record_size

    def data_size(self, number: int) -> int:
        for a in space_ntfs.attributes(self.record(number).plain):
            if a.type == ATTR_DATA and not a.name:
                return a.data_size if not a.resident else len(a.value)
        raise NtfsFormatError(f"MFT record {number} has no data.")

    def extents(self, number: int, start: int, size: int) -> list[tuple[int, int]]:
        """(volume byte offset, length) pieces holding bytes [start, start+size) of record
        `number`'s unnamed data; raises when the data is resident, sparse or shorter."""
        try:
            runs = self._v.data_runs(number)
        except space_ntfs.NtfsFormatError as exc:
            raise NtfsFormatError(str(exc)) from None
        if runs is None:
            raise NtfsFormatError(f"MFT record {number} keeps its data inside the record.")
        cs = self.boot.cluster_size
        out: list[tuple[int, int]] = []
        vpos, end = 0, start + size
        for lcn, clusters in runs:
            lo, hi = max(start, vpos), min(end, vpos + clusters * cs)
            if lo < hi:
                if lcn is None:
                    raise NtfsFormatError(f"MFT record {number} has a sparse range where data must be.")
                off = lcn * cs + lo - vpos
                if out and out[-1][0] + out[-1][1] == off:
                    out[-1] = (out[-1][0], out[-1][1] + hi - lo)
                else:
                    out.append((off, hi - lo))
            vpos += clusters * cs
            if vpos >= end:
                break
        if sum(n for _o, n in out) != size:
            raise NtfsFormatError(f"MFT record {number}'s data runs end before its data does.")
        return out

    def read_extents(self, pieces: list[tuple[int, int]]) -> bytes:
        return b"".join(self.read(off, n) for off, n in pieces)
