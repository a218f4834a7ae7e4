"""Fragmentation report (article step 2: "defrag X: /u /x /g").

There is no NTFS defragmenter on Linux (ntfs-3g has none; ntfsresize only moves what is in the way
of a shrink), so rescue does not defragment: it measures, offline, what matters for 0xC0000017 and
tells the operator when to run Windows' own `defrag C: /u /x /g` after the VM boots (/x consolidates
free space, /u shows progress, /g optimizes storage tiers; from the article).

What is read (metadata only, bounded): the NTFS boot sector, the $Bitmap (one bit per cluster:
4 MiB for a 127 GiB volume) and the MFT records of $MFT, the page file and the registry hives, whose
$DATA runlists give their fragment counts. ntfs-3g's inode numbers are MFT record numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rescue.space.ntfs import MFT_RECORD_MFT, FreeSpace, NtfsFormatError, Volume, bitmap_free_space, fragments
from rescue.target import win_to_posix

if TYPE_CHECKING:
    from rescue.disk.records import Partition
    from rescue.disk.view import Session

NO_DEFRAGMENTER = ("No NTFS defragmenter exists for Linux, so rescue does not defragment; run Windows' own "
                   "`defrag {letter} /u /x /g` after the VM boots.")
# Thresholds for recommending defrag (ours, stated so they can be argued with): the largest free
# extent holds under 10% of the free space, or a metadata file the boot needs is in 100+ pieces.
LARGEST_FREE_MIN_PERCENT = 10.0
FRAGMENTS_WARN = 100
WATCHED = ("\\pagefile.sys", "\\Windows\\System32\\config\\SYSTEM", "\\Windows\\System32\\config\\SOFTWARE",
           "\\Windows\\System32\\config\\SAM", "\\Windows\\System32\\config\\SECURITY",
           "\\Windows\\System32\\config\\DEFAULT")


@dataclass(frozen=True)
class FileFragments:
    path: str
    size: int
    fragments: int          # 0: stored inside its MFT record


@dataclass(frozen=True)
class FragReport:
    disk: int
    partition: int
    letter: str | None
    cluster_size: int
    free: FreeSpace
    files: tuple[FileFragments, ...]
    recommend_defrag: bool
    reasons: tuple[str, ...]

    @property
    def largest_free_bytes(self) -> int:
        return self.free.largest_free_extent * self.cluster_size

    @property
    def free_bytes(self) -> int:
        return self.free.free_clusters * self.cluster_size

    def advice(self) -> str:
        return NO_DEFRAGMENTER.format(letter=self.letter or "C:")

    def to_json(self) -> dict:
        return {"disk": self.disk, "partition": self.partition, "letter": self.letter,
                "cluster_size": self.cluster_size, **self.free.to_json(self.cluster_size),
                "files": [{"path": f.path, "size": f.size, "fragments": f.fragments} for f in self.files],
                "recommend_defrag": self.recommend_defrag, "reasons": list(self.reasons),
                "defrag_command": f"defrag {self.letter or 'C:'} /u /x /g", "advice": self.advice()}


def judge(free: FreeSpace, cluster_size: int, files: tuple[FileFragments, ...]) -> tuple[bool, tuple[str, ...]]:
    reasons = []
    pct = free.largest_percent
    if pct is not None and pct < LARGEST_FREE_MIN_PERCENT:
        reasons.append(f"free space is fragmented: the largest free extent holds {pct}% of the free space "
                       f"({free.free_extents:,} free extents)")
    for f in files:
        if f.fragments >= FRAGMENTS_WARN:
            reasons.append(f"{f.path} is in {f.fragments:,} fragments")
    return bool(reasons), tuple(reasons)


def report(session: Session, part: Partition, *, letter: str | None = None) -> FragReport:
    """Measure one mounted NTFS volume through `session` (read-only)."""
    vol = Volume(lambda off, n: session.read_partition_bytes(part, n, off))
    boot = vol.boot
    free = bitmap_free_space(vol.bitmap(), boot.total_clusters)
    files = [FileFragments("\\$MFT", 0, fragments(vol.data_runs(MFT_RECORD_MFT)))]
    mp = session.mounted(part) or session.mount(part, write=False)
    for win in WATCHED:
        real = session.resolve(mp + win_to_posix(win))
        if real is None:
            continue
        e = session.lstat(real)
        if e.kind != "file":
            continue
        try:
            n = fragments(vol.data_runs(e.inode))
        except NtfsFormatError:
            continue
        files.append(FileFragments("\\" + real[len(mp):].strip("/").replace("/", "\\"), e.size, n))
    recommend, reasons = judge(free, boot.cluster_size, tuple(files))
    return FragReport(disk=part.disk, partition=part.number, letter=letter, cluster_size=boot.cluster_size,
                      free=free, files=tuple(files), recommend_defrag=recommend, reasons=reasons)
