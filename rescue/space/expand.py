"""`rescue expand`: grow the OS disk, its Windows partition and the NTFS in it (article step 2:
"expand the OS disk, up to 1 TB").

How a plan, a confirmation and ONE appliance launch fit together when part of the work (growing the
image file) cannot happen inside the appliance: the appliance never sees the real file grow.
Instead it works on a throw-away qcow2 overlay whose backing file is the user's image, opened
read-only, and whose virtual size is already the new size (reads past the backing file's end are
zeros, exactly what a grown image holds there). In that one launch we read the facts, refuse what is
unsafe, print the plan and ask; only after "yes" the partition table and the NTFS are grown, in the
overlay, and checked (ntfsresize's own consistency check, a mount, free space read back). Only then
is the image file grown on the host (`imagegrow`, journalled) and the overlay's few changed clusters
committed into it (`qemu-img commit`), and those clusters are read back from the image and compared.
So a refusal, a "no", a dry run or any failure before the commit leave the image byte-identical;
the rejected alternatives were growing the file before the launch (a refusal found inside the
appliance, e.g. a hibernated volume, would leave it grown) and a second, read-only launch to plan
(ground rule 4 allows one).

Growing the image file cannot be undone by `rescue undo` (Windows can shrink the volume later if
ever needed); the first MiB of the disk and the MiB that held the old GPT backup are saved on the
Windows volume (\\rescue-backup\\<UTC time>\\, with a manifest of kind "expand" that `rescue backups`
lists and `rescue undo` explains) before the partition table changes.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from rescue.units import format_bytes, parse_size
from rescue.disk.ptable import (SECTOR, GptHeader, gpt_entries, gpt_header, identity_diff,  # noqa: F401
                                 mbr_entries, mbr_resized, table_identity)
from rescue.errors import DiskError, UnsafeStateError, UsageError, VerifyError, WriteFailedError
from rescue.safety import backup as B
from rescue.safety import ntfs_reset
from rescue.space import imagegrow
from rescue.space.imagegrow import GiB, MiB, TiB

if TYPE_CHECKING:
    from rescue.disk.formats import DiskImage
    from rescue.disk.records import Partition
    from rescue.disk.view import Session
    from rescue.layout import WindowsLayout
    from rescue.safety.ntfs_reset import NtfsOptions
    from rescue.target import Target

ARTICLE_MAX = 1 * TiB               # the article: "expand the OS disk (up to 1 TB)"
MBR_MAX = 2 * TiB                   # 32-bit sector numbers of 512 bytes
BACKUP_DIR = "\\rescue-backup"


def human(n: int) -> str:
    return format_bytes(n, exact=True)


def target_size(current: int, *, size: str | None, add: str | None) -> int:
    if size and add:
        raise UsageError("Give either --size or --add, not both.")
    new = parse_size(size) if size else current + parse_size(add) if add else current
    return -(-new // MiB) * MiB        # whole MiB: Azure requires it of VHDs, partitions align to it


def host_checks(image: DiskImage, new_size: int, *, allow_large: bool) -> None:
    """Limits that need no appliance: shrinking, the article's 1 TB, the format maximum, a block
    device (which only the cloud side can grow)."""
    cur = image.virtual_size
    if new_size < cur:
        raise UsageError(f"{image.path} is already {human(cur)}; rescue only grows disks, it never shrinks one.")
    if new_size > ARTICLE_MAX and not allow_large:
        raise UsageError(f"{human(new_size)} is more than the article's 1 TB for an OS disk.",
                         hint="Choose --size 1T or less, or pass --allow-large if you really want more "
                              "(Azure allows OS disks up to 4 TiB; MBR disks use at most 2 TiB).")
    fmax = imagegrow.FORMAT_MAX.get(image.format)
    if fmax and new_size > fmax:
        raise UsageError(f"A {image.format_label} cannot be larger than {human(fmax)} ({human(new_size)} asked).",
                         hint="Choose a smaller --size, or convert the disk to VHDX (qemu-img convert -O vhdx).")
    if image.format == "vmdk" and new_size > cur:
        raise UsageError("Growing a VMDK is not supported; convert it to VHD, VHDX, qcow2 or raw first.")
    if image.is_block_device and new_size > cur:
        gb = -(-new_size // GiB)
        raise UsageError(
            f"{image.path} is a block device of {human(cur)}; it cannot be grown from this machine.",
            hint=f"Grow the disk on the cloud side, e.g. on Azure with the VM deallocated: "
                 f"`az disk update --resource-group RG --name DISK --size-gb {gb}`, attach it again, "
                 f"then run `rescue expand {image.path}` without --size to grow the partition and NTFS.")


# --- the plan --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpandPlan:
    disk: str                       # the user's path
    format_label: str
    old_disk_size: int
    new_disk_size: int
    table: str                      # "gpt" | "mbr"
    partition: int
    letter: str | None
    part_start: int                 # bytes
    old_part_size: int
    new_part_size: int
    fs_size: int | None
    fs_free: int | None
    notes: tuple[str, ...] = ()
    ntfs_resets: tuple = ()         # rescue.safety.ntfs_reset.PlannedReset: the log reset that goes first

    @property
    def grows_image(self) -> bool:
        return self.new_disk_size > self.old_disk_size

    @property
    def nothing_to_do(self) -> bool:
        return self.new_part_size <= self.old_part_size and not self.grows_image

    def steps(self) -> list[str]:
        s = []
        if self.grows_image:
            s.append(f"grow the {self.format_label} image from {human(self.old_disk_size)} to "
                     f"{human(self.new_disk_size)} (not undoable by `rescue undo`)")
        s.append(f"save the partition table (first MiB and the old last MiB of the disk) in "
                 f"{BACKUP_DIR}\\<time> on the Windows volume")
        if self.table == "gpt":
            s.append("move the GPT backup header and table to the new end of the disk")
        s.append(f"grow partition {self.partition}{' (' + self.letter + ')' if self.letter else ''} from "
                 f"{human(self.old_part_size)} to {human(self.new_part_size)} (its start stays at "
                 f"{self.part_start:,} bytes)")
        s.append("grow its NTFS to fill the partition (ntfsresize checks the filesystem first)")
        s.append("verify: partition table entries unchanged but this end, NTFS mounts, size and free "
                 "space read back, changed clusters compared after they are written to the image")
        return s

    def to_json(self) -> dict:
        return {"disk": self.disk, "format": self.format_label, "old_disk_size": self.old_disk_size,
                "new_disk_size": self.new_disk_size, "grows_image": self.grows_image, "table": self.table,
                "partition": self.partition, "letter": self.letter, "partition_start": self.part_start,
                "old_partition_size": self.old_part_size, "new_partition_size": self.new_part_size,
                "filesystem_size": self.fs_size, "filesystem_free": self.fs_free,
                "nothing_to_do": self.nothing_to_do, "steps": self.steps(), "notes": list(self.notes),
                "ntfs_resets": [r.to_json() for r in self.ntfs_resets]}


def _partition_role(part: Partition) -> str:
    from rescue.layout_scan import _role  # noqa: PLC0415  (same classification as inspect)

    return _role(part, False, False)


def make_plan(session: Session, layout: WindowsLayout, *, user_path: str, format_label: str, old_disk_size: int,
              log_reset: bool = False) -> ExpandPlan:
    """Facts read through the (overlay) session -> the plan, or a RescueError saying why not.
    Nothing is written here."""
    from rescue.space.ntfs import NtfsFormatError, Volume as NtfsVolume

    root = layout.require_root()
    if root.disk != 0:
        raise UsageError("The Windows installation is not on the first disk given; expand grows the disk it is on.",
                         hint="Give that disk alone.")
    vol = layout.volume(root.disk, root.partition)
    part = session.partition(root.disk, root.partition)
    info = session.disks()[root.disk]
    new_disk = info.size
    where = f"partition {part.number}" + (f" ({vol.letter})" if vol and vol.letter else "")
    # log_reset: the volume's log is reset before the resize (the caller planned it), which is what
    # makes ntfs-3g's verdict "ok"; its dirty bit is still checked below.
    if vol and vol.state != "ok" and not log_reset:
        raise UnsafeStateError(f"The Windows volume, {where}, cannot be grown: {vol.note or vol.state}.",
                               hint="Nothing was written.")
    if part.fstype != "ntfs":
        raise UnsafeStateError(f"The Windows volume, {where}, is not NTFS ({part.fstype}).")
    state = "ok" if log_reset else session.ntfs_state(part, rw=True)
    if state != "ok":
        raise UnsafeStateError(f"The Windows volume, {where}, is not clean ({state}); it cannot be resized.",
                               hint="Boot Windows and shut it down fully (or run chkdsk /f); nothing was written.")
    try:
        ntfs = NtfsVolume(lambda off, n: session.read_partition_bytes(part, n, off))
        dirty = ntfs.is_dirty()
    except NtfsFormatError as exc:
        raise UnsafeStateError(f"The NTFS on {where} cannot be read: {exc}") from None
    if dirty:
        raise UnsafeStateError(f"The NTFS on {where} is marked dirty (a check by chkdsk is scheduled).",
                               hint="Boot Windows once and let chkdsk finish (ntfsresize itself marks a volume "
                                    "it has grown this way, so a disk grown by rescue needs one boot before it "
                                    "can grow again), or run `chkdsk C: /f`; ntfsresize refuses such a volume. "
                                    "Nothing was written.")
    if info.table not in ("gpt", "mbr"):
        raise UnsafeStateError("The disk has no MBR or GPT partition table.")
    if info.table == "mbr" and part.number > 4:
        raise UnsafeStateError(f"The Windows volume is logical partition {part.number} inside an extended "
                               "partition; rescue only grows primary partitions.")
    end = part.start + part.size
    behind = sorted((p for p in info.partitions if p.start >= end), key=lambda p: p.start)
    if behind:
        nxt = behind[0]
        role = _partition_role(nxt)
        gap = nxt.start - end
        what = "a recovery partition" if role == "recovery" else f"partition {nxt.number} ({role})"
        hint = ("Microsoft's documented way (KB5028997, 'resize your partition to install the WinRE update'): "
                "boot Windows, `reagentc /disable`, delete the recovery partition with diskpart, extend C:, "
                "recreate the recovery partition at the end of the disk, `reagentc /enable`. "
                "Or grow C: from Windows Disk Management into space you make behind it. "
                if role == "recovery" else
                "Move or delete that partition from Windows first. ")
        raise UnsafeStateError(
            f"{what.capitalize()} (partition {nxt.number}, {human(nxt.size)}) sits right behind the Windows "
            f"partition{f' after {human(gap)} of free space' if gap >= MiB else ''}, so the new space at the "
            f"end of the disk cannot be joined to C: without moving it; rescue does not move partitions.",
            hint=hint + "Nothing was written.")
    sectors = new_disk // SECTOR
    if info.table == "gpt":
        head = session.read_disk_bytes(root.disk, 2 * SECTOR, 0)
        hdr = gpt_header(head[SECTOR:])
        if hdr is None:
            raise UnsafeStateError("The GPT header cannot be read.")
        table_sectors = -(-hdr.entries * hdr.entry_size // SECTOR)
        last = sectors - 2 - table_sectors          # last usable LBA with the backup at the end
    else:
        if new_disk > MBR_MAX:
            raise UsageError(f"An MBR disk can use at most 2 TiB; {human(new_disk)} was asked.",
                             hint="Choose --size 2T or less (convert to GPT with mbr2gpt in Windows for more).")
        last = min(sectors, 1 << 32) - 1
    new_end = (last + 1) // (MiB // SECTOR) * (MiB // SECTOR) - 1     # end on a MiB boundary
    new_part_size = max(part.size, (new_end + 1) * SECTOR - part.start)
    mp = session.mounted(part)
    usage = session.usage(mp) if mp else None
    notes = []
    if new_part_size == part.size:
        notes.append("the partition already reaches the end of the disk")
    return ExpandPlan(disk=user_path, format_label=format_label, old_disk_size=old_disk_size,
                      new_disk_size=new_disk, table=info.table, partition=part.number,
                      letter=vol.letter if vol else None, part_start=part.start, old_part_size=part.size,
                      new_part_size=new_part_size, fs_size=usage.size_bytes if usage else None,
                      fs_free=usage.free_bytes if usage else None, notes=tuple(notes))


@dataclass(frozen=True)
class ExpandResult:
    plan: ExpandPlan
    backup: str                      # folder on the Windows volume
    fs_size_before: int
    fs_size_after: int
    free_before: int
    free_after: int
    image_grown: bool = False
    committed_bytes: int = 0
    verified_extents: int = 0
    seconds: dict = field(default_factory=dict)
    ntfs_resets: tuple = ()          # rescue.safety.ntfs_reset.ResetRecord of each log reset made

    def to_json(self) -> dict:
        return {"ntfs_resets": [r.to_json() for r in self.ntfs_resets],
                "plan": self.plan.to_json(), "backup": self.backup, "filesystem_size_before": self.fs_size_before,
                "filesystem_size_after": self.fs_size_after, "free_before": self.free_before,
                "free_after": self.free_after, "image_grown": self.image_grown,
                "committed_bytes": self.committed_bytes, "verified_extents": self.verified_extents,
                "seconds": self.seconds}


def apply_in_session(session: Session, plan: ExpandPlan, *, stamp: str,
                     extra: dict[str, bytes] | None = None) -> ExpandResult:
    """Grow the partition and the NTFS inside the (overlay) session, verifying each step. Everything
    here writes to the overlay only: any failure leaves the image file as it was. `extra`: files
    kept with the partition table backup (the restart area of a reset NTFS log)."""
    try:
        return _apply(session, plan, stamp=stamp, extra=extra or {})
    except DiskError as exc:               # one sentence, never a traceback
        raise WriteFailedError(f"Growing the partition failed: {exc.message}",
                               hint="The image file has not been changed.") from None


def _apply(session: Session, plan: ExpandPlan, *, stamp: str, extra: dict[str, bytes]) -> ExpandResult:
    from rescue.target import win_to_posix

    part = session.partition(0, plan.partition)
    mp = session.mount(part, write=True)
    before = session.usage(mp)
    head = session.read_disk_bytes(0, MiB, 0)
    old_tail_at = max(0, plan.old_disk_size - MiB)
    tail = session.read_disk_bytes(0, plan.old_disk_size - old_tail_at, old_tail_at)
    # The backup folder sits among the other runs' backups, named like them (their ids sort in
    # time order), in the existing \\rescue-backup whatever its spelling (ntfs-3g is case-sensitive).
    root = session.resolve(mp + win_to_posix(BACKUP_DIR)) or mp + win_to_posix(BACKUP_DIR)
    existing = set(session.listdir(root)) if session.is_dir(root) else set()
    backup_id = B.unique_id(stamp, existing)
    folder = f"{BACKUP_DIR}\\{backup_id}"
    base = f"{root}/{backup_id}"
    saved = {"disk-first-1MiB.bin": head, f"disk-at-{old_tail_at}.bin": tail}
    session.makedirs(base)
    saved.update(extra)                    # the restart area of a reset NTFS log, when there was one
    for name, data in saved.items():
        session.write_file(f"{base}/{name}", data)
    session.write_file(f"{base}/README.txt", (
        "rescue expand saved the partition table of this disk before growing it.\r\n"
        f"disk-first-1MiB.bin = bytes 0..1048575 of the disk; disk-at-{old_tail_at}.bin = the old last MiB\r\n"
        "(GPT backup header). Restoring them is only meaningful on a disk whose NTFS has not been grown.\r\n").encode())
    manifest = expand_manifest(plan, backup_id, saved={n: len(d) for n, d in saved.items()})
    session.write_file(f"{base}/{B.MANIFEST}", (json.dumps(manifest.to_json(), indent=2) + "\n").encode())
    session.sync()
    session.umount(part)

    before_id = table_identity(head, plan.table, plan.partition)
    end_sector = (plan.part_start + plan.new_part_size) // SECTOR - 1
    if plan.table == "gpt":
        session.part_expand_gpt(0)
        session.part_resize(0, plan.partition, end_sector)
    else:
        # MBR: only the entry's sector count (and CHS end) change, written here. parted would do the
        # same but also installs its own boot code when the first byte of the MBR's is zero.
        for p in session.disks()[0].partitions:      # BLKRRPART needs every partition unmounted
            if session.mounted(p):
                session.umount(p)
        session.write_device(0, mbr_resized(head[:SECTOR], plan.partition, end_sector), 0)
        session.reread_partition_table(0)
    after_head = session.read_disk_bytes(0, MiB, 0)
    after_id = table_identity(after_head, plan.table, plan.partition)
    if after_id != before_id:
        what = identity_diff(before_id, after_id, plan.table)
        raise VerifyError(f"The partition table changed in more than the Windows partition's end ({what}); "
                          "stopped before the NTFS was touched (the image file has not been changed).")
    grown = session.partition(0, plan.partition)
    if grown.start != plan.part_start or grown.size != plan.new_part_size:
        raise VerifyError(f"Partition {plan.partition} reads back as {grown.size:,} bytes at {grown.start:,}, "
                          f"not {plan.new_part_size:,} at {plan.part_start:,}.")
    if plan.table == "gpt":
        hdr = gpt_header(after_head[SECTOR:2 * SECTOR])
        if hdr is None or hdr.alternate_lba != plan.new_disk_size // SECTOR - 1:
            raise VerifyError("The GPT backup header is not at the end of the disk after moving it.")
    try:
        session.ntfsresize(grown)
    except DiskError as exc:
        raise WriteFailedError(f"ntfsresize refused or failed: {exc.message}",
                               hint="The image file has not been changed.") from None
    mp = session.mount(grown, write=False)
    after = session.usage(mp)
    # NTFS keeps its backup boot sector in the partition's last sector, so the filesystem is at most
    # the partition less one sector (and ntfsresize rounds down to whole clusters).
    cluster = session.cluster_size(mp)
    if not (plan.new_part_size - 2 * cluster - SECTOR <= after.size_bytes <= plan.new_part_size):
        raise VerifyError(f"The NTFS reads back as {after.size_bytes:,} bytes in a {plan.new_part_size:,}-byte partition.")
    gained = after.size_bytes - before.size_bytes
    if after.free_bytes < before.free_bytes + gained - 64 * MiB:
        raise VerifyError("Free space did not grow with the filesystem.")
    return ExpandResult(plan=plan, backup=folder, fs_size_before=before.size_bytes, fs_size_after=after.size_bytes,
                        free_before=before.free_bytes, free_after=after.free_bytes)


def expand_manifest(plan: ExpandPlan, backup_id: str, *, saved: dict[str, int]) -> "B.Manifest":
    """The manifest of an expand's backup folder (kind "expand"). It lists no files to restore:
    growing cannot be undone by `rescue undo` (see rescue.safety.undo), and the saved table bytes
    are kept for a person, not for undo. Status "applied" is true wherever the manifest is seen:
    it is written into the overlay, which reaches the image only when the whole grow succeeded."""
    grown = f"partition {plan.partition}{' (' + plan.letter + ')' if plan.letter else ''} " \
            f"{human(plan.old_part_size)} -> {human(plan.new_part_size)}"
    title = f"expand {grown}" + (f", disk {human(plan.old_disk_size)} -> {human(plan.new_disk_size)}"
                                 if plan.grows_image else "")
    now = B.utc_now()
    return B.Manifest(id=backup_id, kind="expand", created=now, updated=now, status="applied", target=plan.disk,
                      plan={"title": title, "expand": plan.to_json(), "saved": saved},
                      notes=(EXPAND_NOT_UNDOABLE,))


EXPAND_NOT_UNDOABLE = ("Growing the disk, its partition and its NTFS cannot be undone by `rescue undo`; "
                       "Windows can shrink the volume later (Disk Management, Shrink Volume) if ever needed. "
                       "The partition table from before is kept here for reference only: writing it back "
                       "over the grown NTFS would damage it.")


def _plan_log_reset(target: Target, layout: WindowsLayout, ntfs: NtfsOptions | None) -> tuple:
    """The log reset the Windows volume needs before it can be grown (refused without the flag)."""
    root = layout.root
    if root is None:
        return ()
    return ntfs_reset.plan_resets(target, [(root.disk, root.partition)], ntfs or ntfs_reset.NtfsOptions())


def run(path: str, *, size: str | None, add: str | None, allow_large: bool, dry_run: bool,
        fmt: str | None, accel: str | None, confirm: Callable[[ExpandPlan], None],
        notify: Callable[[str], None] = lambda m: None, ntfs: NtfsOptions | None = None):
    """The whole command: host checks -> overlay -> ONE launch (facts, plan, `confirm(plan)`, grow
    partition + NTFS, verify) -> grow the image -> commit -> read back. Returns the ExpandPlan (dry
    run, nothing to do) or the ExpandResult. `confirm` prints the plan and raises to stop."""
    from rescue.disk.formats import check_not_in_use, check_writable, detect
    from rescue.disk.session import DiskSession
    from rescue.layout import discover
    from rescue.space.staging import staged
    from rescue.target import DiskTarget

    seconds: dict[str, float] = {}
    t = time.monotonic()
    image = detect(path, fmt)
    new_size = target_size(image.virtual_size, size=size, add=add)
    host_checks(image, new_size, allow_large=allow_large)
    if not dry_run:
        check_writable(image)
        check_not_in_use(image)
    with staged(image, new_size, dry_run=dry_run) as stage, contextlib.ExitStack() as stack:
        with DiskSession([stage.working_image], write=not dry_run, accel=accel, notify=notify) as s:
            seconds["launch"] = round(s.launch_seconds, 1)
            layout = discover(s)
            target = DiskTarget(s, layout)
            stack.callback(target.close)
            resets = _plan_log_reset(target, layout, ntfs)
            plan = make_plan(s, layout, user_path=path, format_label=image.format_label,
                             old_disk_size=image.virtual_size, log_reset=bool(resets))
            plan = replace(plan, ntfs_resets=resets)
            seconds["plan"] = round(time.monotonic() - t - seconds["launch"], 1)
            confirm(plan)
            if dry_run or plan.nothing_to_do:
                return plan
            t1 = time.monotonic()
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            # The log reset goes first; the dirty bit after the resize (ntfsresize refuses a dirty
            # volume, and marks the one it grew itself). All of it in the overlay until the commit.
            records = ntfs_reset.perform(target, resets, dirty=False)
            result = apply_in_session(s, plan, stamp=stamp, extra=ntfs_reset.backup_extra(records))
            records = ntfs_reset.ensure_dirty(target, records)
            result = replace(result, ntfs_resets=records)
            seconds["partition_and_ntfs"] = round(time.monotonic() - t1, 1)
        done = stage.commit()
    seconds.update(done.seconds)
    seconds["total"] = round(time.monotonic() - t, 1)
    return replace(result, image_grown=done.image_grown, committed_bytes=done.committed_bytes,
                   verified_extents=done.verified_extents, seconds=seconds)
