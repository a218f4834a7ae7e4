"""Opening what a command works on: ONE appliance launch over the disks (ground rule 4) with the
Windows layout discovered, or a bare hive file on the host (no appliance: instant). The targets
themselves are in rescue.target."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator, Sequence

from rescue.errors import InputError, UsageError
from rescue.report import SILENT, Reporter
from rescue.target import DiskTarget, HostFileTarget, Target

if TYPE_CHECKING:
    from rescue.safety.ntfs_reset import NtfsOptions


def is_hive_target(path: str) -> bool:
    from rescue.hive.regf import is_hive_file

    return os.path.isfile(path) and is_hive_file(path)


@contextlib.contextmanager
def open_disks(paths: Sequence[str], *, write: bool = False, fmt: str | None = None,
               accel: str | None = None, root: str | None = None, images: Sequence | None = None,
               reporter: Reporter | None = None, ntfs: NtfsOptions | None = None) -> Iterator[DiskTarget]:
    """Detect formats, launch ONE appliance (ground rule 4), discover the Windows layout.

    Yields a DiskTarget whose `.session` and `.layout` the command uses. `images`: already detected
    DiskImages for `paths` (e.g. disk 0 opened through a staging overlay). `ntfs`: the command's
    rescue.safety.ntfs_reset.NtfsOptions, which the write engine reads from the target."""
    from rescue.disk.formats import check_not_in_use, check_writable, detect
    from rescue.disk.session import DiskSession
    from rescue.layout import discover

    reporter = reporter or SILENT
    if not paths:
        raise UsageError("Give at least one disk (an image file or a block device).")
    images = list(images) if images is not None else [detect(p, fmt) for p in paths]
    if write:
        for img in images:                  # check_not_in_use reaps our own orphans first
            check_writable(img)
            check_not_in_use(img)
    session = DiskSession(images, write=write, accel=accel, notify=reporter.warn)
    try:
        label = "Starting the libguestfs appliance" + (" (read-write)" if write else " (read-only)")
        with reporter.progress(f"{label}…"):
            session.launch()
        target = DiskTarget(session, None, reporter=reporter)
        target.ntfs_options = ntfs
        fetched: dict = {}
        target.layout = discover(session, root=root, workdir=target.workdir, fetched=fetched)
        # Hives read during discovery are reused (never downloaded twice in one command).
        target._copies.update(fetched)
        try:
            yield target
        finally:
            target.close()
    finally:
        session.close()


@contextlib.contextmanager
def open_target(path: str, *, write: bool = False, fmt: str | None = None, accel: str | None = None,
                root: str | None = None, extra_disks: Sequence[str] = (),
                reporter: Reporter | None = None, ntfs: NtfsOptions | None = None) -> Iterator[Target]:
    """TARGET is a disk image / block device, or a hive file told apart by its `regf` signature
    (no appliance needed: instant)."""
    if not os.path.exists(path):
        raise InputError(f"{path} does not exist.",
                         hint="Give a disk image, a block device such as /dev/sdc, or a hive file.")
    if is_hive_target(path):
        if extra_disks:
            raise UsageError("Extra disks make no sense with a bare hive file.")
        if ntfs is not None and (ntfs.reset_log or ntfs.discard_hibernation):
            raise UsageError("--reset-ntfs-log and --discard-hibernation act on a disk's NTFS volumes, "
                             "not on a hive file.")
        host = HostFileTarget(path, write=write, reporter=reporter)
        try:
            yield host
        finally:
            host.close()
        return
    with open_disks([path, *extra_disks], write=write, fmt=fmt, accel=accel, root=root,
                    reporter=reporter, ntfs=ntfs) as disks:
        yield disks
