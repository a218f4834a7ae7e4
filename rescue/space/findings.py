"""Free-space findings for `rescue inspect` / `rescue diagnose` (pure functions over scan results).

The article's rule (step 2): under 300 MB free on the OS disk, Windows cannot create its ramdisk
(0xC0000017): expand the disk (up to 1 TB), run Disk Cleanup, defragment.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Callable, Sequence

from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.space.expand import human
from rescue.units import count, format_bytes

if TYPE_CHECKING:
    from rescue.space.fragmentation import FragReport

if TYPE_CHECKING:
    from rescue.disk.view import Session
    from rescue.layout import WindowsLayout
    from rescue.space.cleanup import VolumeScan

LOW_SPACE_BYTES = 300 * 1000 * 1000          # the article's "less than 300 MB", taken as written (decimal)
AZURE_DISK_TIERS_GIB = (4, 8, 16, 32, 64, 128, 256, 512, 1024)


def suggest_size(disk_bytes: int) -> str:
    """The first managed-disk size tier at least 1.5 times the current disk (a 127 GiB disk -> 256G:
    growing to the next tier, 128 GiB, would gain one), at most the article's 1 TB."""
    gib = 1.5 * disk_bytes / (1 << 30)
    for t in AZURE_DISK_TIERS_GIB:
        if t >= gib:
            return "1T" if t == 1024 else f"{t}G"
    return "1T"


def space_findings(*, free_bytes: int | None, size_bytes: int | None, letter: str | None = None,
                   scan: VolumeScan | None = None, frag: FragReport | None = None, disk_bytes: int | None = None,
                   disk_path: str | None = None, block_device: bool = False) -> list[Finding]:
    """Findings for the Windows (OS) volume.

    free_bytes/size_bytes: the volume's free and total space (None: unknown); scan: a
    rescue.space.cleanup.VolumeScan of it (None: not scanned); frag: a
    rescue.space.fragmentation.FragReport (None: not measured); disk_bytes: the disk's size, for the
    suggested --expand size."""
    name = letter or "the OS volume"
    out: list[Finding] = []
    low = free_bytes is not None and free_bytes < LOW_SPACE_BYTES
    if free_bytes is None:
        out.append(Finding("space-low", "OS volume has at least 300 MB free", UNKNOWN,
                           f"free space of {name} could not be read"))
    else:
        out.append(Finding("space-low", "OS volume has at least 300 MB free", FOUND if low else OK,
                           f"{name} has {format_bytes(free_bytes)} free of {format_bytes(size_bytes)}"
                           + (" (under 300 MB: 0xC0000017)" if low else ""),
                           fixable=low, fix_option="--cleanup" if low else None))
    reclaim = scan.reclaim_bytes if scan is not None else None
    if scan is None:
        out.append(Finding("space-cleanup", "Files Disk Cleanup would remove", UNKNOWN, "not scanned"))
    else:
        parts = ", ".join(f"{c.key} {count(c.file_count, 'file')} {format_bytes(c.reclaim_bytes)}" for c in scan.included if c.files)
        opt = [c for c in scan.categories if not c.included and c.files]
        extra = ("; opt-in: " + ", ".join(f"{c.key} {format_bytes(c.reclaim_bytes)}" for c in opt)) if opt else ""
        status = FOUND if low and (reclaim or 0) > 0 else OK
        out.append(Finding("space-cleanup", "Files Disk Cleanup would remove", status,
                           f"cleanup can free {format_bytes(reclaim)}" + (f" ({parts})" if parts else "") + extra
                           + ("" if low else " (not needed: enough free space)"),
                           fixable=status == FOUND, fix_option="--cleanup" if status == FOUND else None))
    if free_bytes is None:
        out.append(Finding("space-expand", "OS disk large enough", UNKNOWN, "free space unknown"))
    else:
        after = free_bytes + (reclaim or 0)
        need = after < LOW_SPACE_BYTES
        size = suggest_size(disk_bytes) if disk_bytes else "1T"
        # `rescue fix no-memory --expand SIZE` grows image, partition and NTFS in the same launch as
        # the rest of the fix (rescue.space.staging); `rescue expand` does only that. A block device
        # (a cloud disk attached to this VM) can only be grown on the cloud side.
        where = shlex.quote(disk_path) if disk_path else "the disk"
        now = f" (now {human(disk_bytes)})" if disk_bytes else ""
        if not need:
            ev, option = (f"{format_bytes(after)} free after cleanup" if reclaim else f"{format_bytes(free_bytes)} free"), None
        elif block_device:
            gb = int(size[:-1]) * (1024 if size.endswith("T") else 1)
            ev, option = (f"even after cleanup {name} would have {format_bytes(after)} free: {where}{now} is a block device, "
                          f"grow it on the cloud side first (Azure, VM deallocated: `az disk update -g RG -n DISK "
                          f"--size-gb {gb}`), attach it again, then add `--expand fill`"), None
        else:
            ev, option = (f"even after cleanup {name} would have {format_bytes(after)} free: grow {where}{now} to {size} "
                          f"with `--expand {size}`"), f"--expand {size}"
        out.append(Finding("space-expand", "OS disk large enough", FOUND if need else OK, ev,
                           fixable=option is not None, fix_option=option))
    if frag is None:
        out.append(Finding("space-fragmentation", "Free space not badly fragmented", UNKNOWN, "not measured"))
    else:
        ev = (f"largest free extent {format_bytes(frag.largest_free_bytes)} of {format_bytes(frag.free_bytes)} free "
              f"({frag.free.free_extents:,} free extents)")
        if frag.reasons:
            ev += "; " + "; ".join(frag.reasons)
        if frag.recommend_defrag:
            ev += "; " + frag.advice()
        out.append(Finding("space-fragmentation", "Free space not badly fragmented",
                           FOUND if frag.recommend_defrag else OK, ev))
    return out


def space_section_data(scans: Sequence[VolumeScan], frags: Sequence[FragReport] = ()) -> dict:
    """JSON for inspect's space section: per volume, reclaimable bytes by category and the largest
    free extent."""
    by_key = {(f.disk, f.partition): f for f in frags}
    vols = []
    for s in scans:
        f = by_key.get((s.disk, s.partition))
        vols.append({"disk": s.disk, "partition": s.partition, "letter": s.letter, "size_bytes": s.size_bytes,
                     "free_bytes": s.free_bytes, "reclaim_bytes": s.reclaim_bytes,
                     "categories": {c.key: {"files": c.file_count, "bytes": c.bytes, "reclaim_bytes": c.reclaim_bytes,
                                            "opt_in": c.opt_in, "truncated": c.truncated}
                                    for c in s.categories},
                     "largest_free_extent_bytes": f.largest_free_bytes if f else None,
                     "free_extents": f.free.free_extents if f else None})
    return {"volumes": vols}


def assess_windows_volume(session: Session, layout: WindowsLayout, *, check_readonly: bool = False,
                          limit: int = 50_000, on_frag_error: Callable[[Exception], None] = lambda exc: None,
                          prior: tuple[VolumeScan, set[str]] | None = None):
    """Scan the Windows volume's cleanup categories (bounded, metadata only), measure its free-space
    fragmentation, and derive the findings: the one sequence `inspect` and `diagnose` both need.
    `prior`: (an earlier VolumeScan of this launch, Windows paths deleted since) to reuse instead of
    scanning again. Returns (findings, scan, frag); frag is None when it could not be measured
    (advisory only)."""
    from rescue.space.cleanup import scan_volume
    from rescue.space.fragmentation import report

    win = layout.require_root()
    vol = layout.volume(win.disk, win.partition)
    letter = vol.letter if vol else None
    part = session.partition(win.disk, win.partition)
    if prior is not None:
        usage = session.usage(session.mounted(part) or session.mount(part, write=False))
        scan = prior[0].without(prior[1], size_bytes=usage.size_bytes, free_bytes=usage.free_bytes)
    else:
        scan = scan_volume(session, part, letter=letter, check_readonly=check_readonly, limit=limit)
    try:
        frag = report(session, part, letter=letter)
    except Exception as exc:  # noqa: BLE001  a damaged volume: "not measured", never a failed command
        frag = None
        on_frag_error(exc)
    findings = space_findings(free_bytes=scan.free_bytes, size_bytes=scan.size_bytes, letter=scan.letter,
                              scan=scan, frag=frag, disk_bytes=session.disk_size(win.disk),
                              disk_path=layout.disk_paths[win.disk],
                              block_device=session.images[win.disk].is_block_device)
    return findings, scan, frag
