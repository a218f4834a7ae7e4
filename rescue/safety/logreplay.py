"""Replaying a hive's transaction logs (.LOG1/.LOG2) the way Windows does when it loads the hive.

Why: since Windows 8.1 the kernel writes registry changes to the transaction logs first and folds
them into the primary file later ("reconcile"). A hive copied off a VM that crashed, lost power or
was stopped hard is therefore often *dirty* (its base block's primary and secondary sequence numbers
differ) and its newest data lives only in the logs. hivex ignores the logs and marks the hive clean
on commit, so editing such a hive as it is would silently throw away Windows' last writes. Replaying
first gives the hive Windows itself would see at the next boot.

Format (all little-endian): Maxim Suhanov, "Windows registry file format specification" (github
msuhanov/regf), "Format of transaction log files" / "New format" / "Dirty state of a hive" /
"Multiple transaction log files"; libyal libregf "Windows NT Registry File (REGF) format"
§transaction log. A new-format log is a 512-byte partial copy of the base block (file type 6) then
log entries from offset 512, each:

    0  "HvLE"   4  size (multiple of 512)   8  flags   12  sequence number
    16 hive bins data size   20 dirty page count   24 Hash-1 (8)   32 Hash-2 (8)
    40 dirty page references (offset from the start of the hive bins data, size), then the pages

Hash-1 is Marvin32 over bytes 40..size, Hash-2 is Marvin32 over bytes 0..32 (Hash-1 included),
both with the seed 0x82EF4D887A4E55C5; an entry with a wrong hash or hive bins size ends the log.

Which entries apply (the specification and the "missing log entries" note of the same author):
a log's entries are consecutive sequence numbers starting at the sequence number in its own base
block; the log whose base block has the lower sequence number is applied first, provided that
number is not below the hive's secondary sequence number (else it is stale and only the other log
is used); the second log follows when it continues the first exactly (last + 1). Windows' "partial
reconcile" may leave a gap between the hive's secondary sequence number and the first entry: the
primary then already holds the data of the missing entries, and applying the rest is correct.

After replay the base block is made clean: both sequence numbers = the last entry's, hive bins data
size = the last entry's, flags bit 0 from the last entry's flags, checksum recomputed.

Old-format logs (Vista..8: a "DIRT" bitmap) are recognised and reported, not replayed: the caller
refuses and offers --discard-hive-logs. This module reads bytes and returns bytes; it never touches a
disk, and nothing here is copied from any other implementation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rescue.hive.regf import BASE_BLOCK_SIZE, REGF_MAGIC, base_block_checksum

MARVIN_SEED = 0x82EF4D887A4E55C5
LOG_BASE_BLOCK = 512
ENTRY_HEADER = 40
FILE_TYPE_PRIMARY = 0
FILE_TYPES_OLD_LOG = (1, 2)
FILE_TYPE_NEW_LOG = 6
_M = 0xFFFFFFFF


class ReplayError(Exception):
    """The logs cannot be replayed safely (reason in the message); the caller refuses."""


# --- Marvin32 -----------------------------------------------------------------------------------
def marvin32(data: bytes, seed: int = MARVIN_SEED) -> int:
    """Marvin32 (Microsoft's seeded 32-bit-word hash, as in .NET's Marvin.ComputeHash32) returning
    the full 64-bit state (hi << 32 | lo), which is what a log entry stores in Hash-1/Hash-2."""
    lo, hi = seed & _M, (seed >> 32) & _M
    n = len(data)
    whole = n - n % 4
    for (word,) in struct.iter_unpack("<I", memoryview(data)[:whole]):
        # One Marvin block, inlined (this loop runs over megabytes of log pages).
        lo = (lo + word) & _M
        hi ^= lo
        lo = ((lo << 20) | (lo >> 12)) & _M
        lo = (lo + hi) & _M
        hi = ((hi << 9) | (hi >> 23)) & _M
        hi ^= lo
        lo = ((lo << 27) | (lo >> 5)) & _M
        lo = (lo + hi) & _M
        hi = ((hi << 19) | (hi >> 13)) & _M
    # The last 0..3 bytes, then the 0x80 end marker right after them, then one all-zero block.
    final = 0x80 << (8 * (n - whole))
    for i, b in enumerate(data[whole:]):
        final |= b << (8 * i)
    for word in (final & _M, 0):
        lo = (lo + word) & _M
        hi ^= lo
        lo = ((lo << 20) | (lo >> 12)) & _M
        lo = (lo + hi) & _M
        hi = ((hi << 9) | (hi >> 23)) & _M
        hi ^= lo
        lo = ((lo << 27) | (lo >> 5)) & _M
        lo = (lo + hi) & _M
        hi = ((hi << 19) | (hi >> 13)) & _M
    return (hi << 32) | lo


# --- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogEntry:
    offset: int                 # in the log file
    sequence: int
    size: int
    flags: int
    hive_bins_size: int
    pages: tuple[tuple[int, int, int], ...]   # (offset in hive bins data, size, offset in the log file)


@dataclass(frozen=True)
class LogFile:
    name: str                   # ".LOG1", ".LOG2", ".LOG"
    size: int
    format: str                 # "empty" | "new" | "old" | "invalid"
    sequence: int | None        # primary sequence number of the log's base block
    entries: tuple[LogEntry, ...] = ()
    problem: str | None = None  # why it is "invalid"

    def to_json(self) -> dict:
        return {"name": self.name, "size": self.size, "format": self.format, "sequence": self.sequence,
                "entries": len(self.entries),
                "first": self.entries[0].sequence if self.entries else None,
                "last": self.entries[-1].sequence if self.entries else None,
                "problem": self.problem}


@dataclass(frozen=True)
class ReplayResult:
    data: bytes                 # the replayed primary file
    applied: tuple[tuple[str, int, int], ...]   # (log name, first sequence, last sequence) per log used
    sequence: int               # the base block's sequence numbers after replay
    hive_bins_size: int
    pages: int                  # dirty pages written

    @property
    def entries(self) -> int:
        return sum(last - first + 1 for _, first, last in self.applied)

    def describe(self) -> str:
        parts = [f"{name} entries {first}..{last}" for name, first, last in self.applied]
        return f"replayed {self.entries} log entries ({', '.join(parts)}; {self.pages} pages), sequence now {self.sequence}"


def _seq_before(a: int, b: int) -> bool:
    """a < b in 32-bit serial-number arithmetic (sequence numbers may wrap)."""
    return a != b and ((b - a) & _M) < 0x80000000


# --- parsing ------------------------------------------------------------------------------------
def _parse_entry(data: bytes, pos: int, expected_seq: int) -> LogEntry | None:
    """The log entry at `pos` if it is a valid entry with sequence number `expected_seq`, else None
    (end of the log's valid entries: remnants of older entries follow)."""
    if pos + ENTRY_HEADER > len(data) or data[pos:pos + 4] != b"HvLE":
        return None
    size, flags, seq, bins_size, count = struct.unpack_from("<IIIII", data, pos + 4)
    if size < 512 or size % 512 or pos + size > len(data):
        return None
    if bins_size < 4096 or bins_size % 4096 or count == 0 or ENTRY_HEADER + 8 * count > size:
        return None
    if seq != expected_seq:
        return None
    hash1, hash2 = struct.unpack_from("<QQ", data, pos + 24)
    if marvin32(data[pos:pos + 32]) != hash2:
        return None
    if marvin32(data[pos + ENTRY_HEADER:pos + size]) != hash1:
        return None
    pages = []
    page_pos = pos + ENTRY_HEADER + 8 * count
    for i in range(count):
        off, psize = struct.unpack_from("<II", data, pos + ENTRY_HEADER + 8 * i)
        pages.append((off, psize, page_pos))
        page_pos += psize
    if page_pos > pos + size:
        # Hash-valid but its pages overrun the entry: our reading of the format would be wrong.
        raise ReplayError(f"log entry {seq} at offset {pos} lists more page bytes than it holds")
    for off, psize, _ in pages:
        if psize == 0 or psize % 512 or off % 512 or off + psize > bins_size:
            raise ReplayError(f"log entry {seq} has a dirty page outside its hive bins data "
                              f"(offset {off:#x}, size {psize:#x}, hive bins {bins_size:#x})")
    return LogEntry(offset=pos, sequence=seq, size=size, flags=flags, hive_bins_size=bins_size,
                    pages=tuple(pages))


def parse_log(name: str, data: bytes) -> LogFile:
    """Classify one transaction log and, for the new format, collect its valid entries."""
    if not data or not data.strip(b"\x00"):
        return LogFile(name, len(data), "empty", None)
    if len(data) < LOG_BASE_BLOCK or data[:4] != REGF_MAGIC:
        return LogFile(name, len(data), "invalid", None, problem="no 'regf' base block")
    seq1, seq2 = struct.unpack_from("<II", data, 4)
    (ftype,) = struct.unpack_from("<I", data, 28)
    (stored,) = struct.unpack_from("<I", data, 508)
    if ftype in FILE_TYPES_OLD_LOG:
        return LogFile(name, len(data), "old", seq1)
    if ftype != FILE_TYPE_NEW_LOG:
        return LogFile(name, len(data), "invalid", seq1, problem=f"file type {ftype} is not a log")
    if stored != base_block_checksum(data[:512]):
        return LogFile(name, len(data), "invalid", seq1, problem="its base block checksum is wrong")
    if seq1 != seq2:
        # The log's own header write did not finish: Windows does not use such a log.
        return LogFile(name, len(data), "invalid", seq1, problem="its own sequence numbers differ")
    entries = []
    pos, expected = LOG_BASE_BLOCK, seq1
    while True:
        entry = _parse_entry(data, pos, expected)
        if entry is None:
            break
        entries.append(entry)
        pos += entry.size
        expected = (expected + 1) & _M
    return LogFile(name, len(data), "new", seq1, tuple(entries))


def newest_entry(log: LogFile) -> int | None:
    return log.entries[-1].sequence if log.entries else None


# --- replay -------------------------------------------------------------------------------------
def _seq(log: LogFile) -> int:
    """The base block sequence of a log that has one (choose_logs keeps only those)."""
    assert log.sequence is not None
    return log.sequence


def choose_logs(secondary: int, logs: list[LogFile]) -> list[LogFile]:
    """The new-format logs to apply, in order (see the module docstring for the rules)."""
    usable = [lg for lg in logs if lg.format == "new" and lg.entries and lg.sequence is not None]
    if not usable:
        return []
    usable.sort(key=lambda lg: _seq(lg))
    if len(usable) == 2 and _seq_before(_seq(usable[1]), _seq(usable[0])):
        usable.reverse()  # wrap-around: serial order, not integer order
    first = usable[0]
    if _seq_before(_seq(first), secondary):
        # The first log is older than the hive: already applied. Only the other one may be newer.
        rest = [lg for lg in usable[1:] if not _seq_before(_seq(lg), secondary)]
        return rest[:1]
    chosen = [first]
    if len(usable) > 1 and usable[1].sequence == (((newest_entry(first) or 0) + 1) & _M):
        chosen.append(usable[1])
    return chosen


def replay(primary: bytes, logs: list[tuple[str, bytes]]) -> ReplayResult:
    """Apply the pending new-format log entries of `logs` ([(".LOG1", bytes), (".LOG2", bytes)]) to the
    dirty `primary` and return the recovered file. Raises ReplayError when that cannot be done safely."""
    if len(primary) < BASE_BLOCK_SIZE or primary[:4] != REGF_MAGIC:
        raise ReplayError("the hive has no 'regf' base block")
    (stored,) = struct.unpack_from("<I", primary, 508)
    if stored != base_block_checksum(primary[:512]):
        # Windows would rebuild the base block from a log; too rare to trust an implementation we
        # cannot test against a real case.
        raise ReplayError("the hive's own base block checksum is wrong")
    (seq1, seq2) = struct.unpack_from("<II", primary, 4)
    parsed = [parse_log(name, data) for name, data in logs]
    old = [lg.name for lg in parsed if lg.format == "old"]
    if old and not any(lg.format == "new" and lg.entries for lg in parsed):
        raise ReplayError(f"{', '.join(old)} use the old (pre-Windows 8.1) log format, which rescue does not replay")
    chosen = choose_logs(seq2, parsed)
    if not chosen:
        raise ReplayError("no transaction log holds entries newer than the hive")

    buf = bytearray(primary)
    applied, pages, last = [], 0, None
    for lg in chosen:
        data = dict(logs)[lg.name]
        for entry in lg.entries:
            end = BASE_BLOCK_SIZE + entry.hive_bins_size
            if len(buf) < end:
                buf.extend(b"\x00" * (end - len(buf)))      # the hive grew: its new bins are in the log
            for off, size, src in entry.pages:
                dst = BASE_BLOCK_SIZE + off
                buf[dst:dst + size] = data[src:src + size]
                pages += 1
            last = entry
        applied.append((lg.name, lg.entries[0].sequence, lg.entries[-1].sequence))
    assert last is not None
    struct.pack_into("<II", buf, 4, last.sequence, last.sequence)
    struct.pack_into("<I", buf, 40, last.hive_bins_size)
    (flags,) = struct.unpack_from("<I", buf, 144)
    struct.pack_into("<I", buf, 144, (flags & ~1) | (last.flags & 1))
    struct.pack_into("<I", buf, 508, base_block_checksum(bytes(buf[:512])))
    check_hive_bins(bytes(buf), last.hive_bins_size)
    return ReplayResult(data=bytes(buf), applied=tuple(applied), sequence=last.sequence,
                        hive_bins_size=last.hive_bins_size, pages=pages)


def check_hive_bins(data: bytes, bins_size: int) -> None:
    """Walk the hive bin headers: each "hbin" must name its own offset and have a size that is a
    multiple of 4096, and together they must cover exactly the hive bins data (the specification's
    recovery check). Raises ReplayError."""
    pos = 0
    while pos < bins_size:
        at = BASE_BLOCK_SIZE + pos
        if data[at:at + 4] != b"hbin":
            raise ReplayError(f"after replay there is no hive bin at offset {pos:#x}")
        off, size = struct.unpack_from("<II", data, at + 4)
        if off != pos or size < 4096 or size % 4096:
            raise ReplayError(f"after replay the hive bin at {pos:#x} is inconsistent (offset {off:#x}, size {size:#x})")
        pos += size
    if pos != bins_size:
        raise ReplayError(f"after replay the hive bins end at {pos:#x}, not at {bins_size:#x}")
