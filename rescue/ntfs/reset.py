"""Reading a volume's state and planning its log reset, from raw bytes (pure: no appliance).

`read_state` gathers the evidence; `plan_reset` turns a volume into the exact byte writes a reset
makes, in the order that keeps every crash point safe:

1. the hibernation header zeroed (--discard-hibernation only): from then on Windows cold-boots and
   cannot resume a session whose disk changed underneath it;
2. $Volume's VOLUME_IS_DIRTY set, in $MFT and in $MFTMirr: chkdsk runs at the next boot;
3. the log body (everything after the two restart pages) filled with 0xFF;
4. LAST, both restart pages filled with 0xFF in ONE write: the restart area is either the old one
   or gone, never half of one. Until this write lands the volume is in its old state (plus a
   dirty bit and a dropped image), and running the reset again finishes it (a crash between the
   $Volume record and its $MFTMirr copy leaves them different: the next run writes the copy).

The "before" bytes of every region whose content matters (restart pages, the $Volume record, the
hibernation header) are kept in the plan, so the engine can put them in the backup.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rescue.ntfs.logfile import LogState, assess, restart_span
from rescue.ntfs.mft import (ATTR_VOLUME_INFORMATION, MFT_RECORD_LOGFILE, MFT_RECORD_VOLUME, NtfsFormatError,
                             NtfsVolume, Reader, protect, resident_value_offset, usn_of)
from rescue.space.ntfs import CachedReader
from rescue.ntfs.state import HIBERFIL_HEADER, VOLUME_IS_DIRTY, NtfsEvidence, NtfsState, classify, volume_flags

FILL_CHUNK = 1 << 20            # 0xFF written in pieces of this size (the appliance's message limit is 4 MiB)


@dataclass(frozen=True)
class Write:
    offset: int                 # volume byte offset
    data: bytes | None          # None: `fill` bytes of 0xFF (the log body: up to hundreds of MiB)
    what: str                   # "restart pages", "log body", "$Volume", "$MFTMirr $Volume", "hiberfil header"
    fill: int = 0

    @property
    def length(self) -> int:
        return self.fill if self.data is None else len(self.data)

    def pieces(self):
        """(offset, bytes) in writes of at most FILL_CHUNK bytes."""
        if self.data is not None:
            yield self.offset, self.data
            return
        for pos in range(0, self.fill, FILL_CHUNK):
            yield self.offset + pos, b"\xff" * min(FILL_CHUNK, self.fill - pos)


@dataclass(frozen=True)
class Saved:
    """A region as it was before the reset (kept in the backup)."""

    name: str                   # file name in the backup folder
    offset: int
    data: bytes


@dataclass(frozen=True)
class ResetPlan:
    writes: tuple[Write, ...]   # in order; the restart pages are the last one
    saved: tuple[Saved, ...]
    log_size: int
    flags_before: int
    flags_after: int


def _restart_pieces(vol: NtfsVolume) -> tuple[int, list[tuple[int, int]]]:
    """($LogFile size, where its two restart pages are on the volume)."""
    log_size = vol.data_size(MFT_RECORD_LOGFILE)
    if log_size < 8192:
        raise NtfsFormatError(f"$LogFile is too small ({log_size} bytes) to be a log.")
    first = vol.read_extents(vol.extents(MFT_RECORD_LOGFILE, 0, 4096))
    span = min(restart_span(first), log_size)
    return log_size, vol.extents(MFT_RECORD_LOGFILE, 0, span)


def read_log_state(vol: NtfsVolume) -> LogState:
    _size, pieces = _restart_pieces(vol)
    return assess(vol.read_extents(pieces))


def read_state(read: Reader, hiberfil: str | None, hiberboot: bool | None) -> NtfsEvidence:
    """The volume's state; `hiberfil` is hiberfil_signature() of the file's first bytes (None: no
    file), `hiberboot` the SYSTEM hive's HiberbootEnabled (None: unknown or not the Windows volume)."""
    try:
        vol = NtfsVolume(CachedReader(read))      # one read-only pass: a few chunk reads in all
        log = read_log_state(vol)
        flags = volume_flags(vol.record(MFT_RECORD_VOLUME).plain)
    except NtfsFormatError as exc:
        return NtfsEvidence(NtfsState.UNKNOWN, hiberfil_signature=hiberfil, hiberboot_enabled=hiberboot,
                            problem=exc.message)
    return classify(log, flags, hiberfil, hiberboot)


def _dirty_volume_record(vol: NtfsVolume) -> tuple[bytes, bytes, int, int]:
    """(raw before, raw after, flags before, flags after) of the $Volume record with the dirty bit set."""
    rec = vol.record(MFT_RECORD_VOLUME)
    at = resident_value_offset(rec.plain, ATTR_VOLUME_INFORMATION) + 10
    flags = struct.unpack_from("<H", rec.plain, at)[0]
    plain = bytearray(rec.plain)
    struct.pack_into("<H", plain, at, flags | VOLUME_IS_DIRTY)
    return rec.raw, protect(bytes(plain), usn_of(rec.raw)), flags, flags | VOLUME_IS_DIRTY


def plan_reset(read: Reader, *, hiberfil_record: int | None = None, dirty: bool = True) -> ResetPlan:
    """The writes that reset the log of the volume `read` reads (see the module's order), zeroing
    the hibernation header of MFT record `hiberfil_record` first when given. `dirty=False` leaves the
    dirty bit to the caller (a resize that follows refuses a dirty volume and sets the bit itself)."""
    vol = NtfsVolume(read)
    writes: list[Write] = []
    saved: list[Saved] = []
    if hiberfil_record is not None:
        pieces = vol.extents(hiberfil_record, 0, min(HIBERFIL_HEADER, vol.data_size(hiberfil_record)))
        saved.append(Saved("hiberfil-header.bin", pieces[0][0], vol.read_extents(pieces)))
        writes.extend(Write(off, bytes(n), "hiberfil header") for off, n in pieces)
    raw_before, _raw_after, flags_before, flags_after = _dirty_volume_record(vol)
    saved.append(Saved("volume-record.bin", vol.record(MFT_RECORD_VOLUME).offset, raw_before))
    if dirty:
        writes.extend(_dirty(vol))
    else:
        flags_after = flags_before
    log_size, head = _restart_pieces(vol)
    span = head[0][1] if head else 0
    if len(head) != 1:
        # Two writes could tear between the pages; Windows never lays the log out like this.
        raise NtfsFormatError("$LogFile's restart pages are not contiguous on disk, so they cannot be "
                              "replaced in one write.")
    saved.append(Saved("logfile-restart.bin", head[0][0], vol.read_extents(head)))
    for off, n in vol.extents(MFT_RECORD_LOGFILE, span, log_size - span):
        writes.append(Write(off, None, "log body", fill=n))
    writes.append(Write(head[0][0], b"\xff" * span, "restart pages"))
    return ResetPlan(tuple(writes), tuple(saved), log_size, flags_before, flags_after)


def _dirty(vol: NtfsVolume) -> list[Write]:
    """Set VOLUME_IS_DIRTY in $Volume, and make its $MFTMirr copy the same record: two writes that
    cannot be one, so a crash between them leaves the copies different (ntfs-3g then calls the
    volume corrupt), and the next run writes the mirror even when the bit is already set."""
    raw, raw_after, before, after = _dirty_volume_record(vol)
    out = []
    if before != after:
        out.append(Write(vol.record(MFT_RECORD_VOLUME).offset, raw_after, "$Volume"))
    else:
        raw_after = raw
    mirror = vol.mirror_offset(MFT_RECORD_VOLUME)
    if mirror is not None and (out or vol.read(mirror, len(raw_after)) != raw_after):
        out.append(Write(mirror, raw_after, "$MFTMirr $Volume"))
    return out


def dirty_writes(read: Reader) -> tuple[Write, ...]:
    """The writes that set VOLUME_IS_DIRTY ($MFT and $MFTMirr), none when both say so already."""
    return tuple(_dirty(NtfsVolume(read)))
