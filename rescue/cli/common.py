"""Shared CLI plumbing: consoles, JSON output, and opening a TARGET (disk set or bare hive file).

Ground rule 4: every command launches the appliance at most once, through `open_target`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, is_dataclass
from typing import Iterator, Sequence

from rich.console import Console

from rescue.errors import InputError, UsageError

# People read stdout; progress, warnings and errors go to stderr so `--json` output stays clean.
# When piped (logs, CI), rich would wrap tables at 80 columns; keep them readable. No emoji codes:
# a path, a value or a hive name with ":name:" in it is printed as it is (and rich's emoji table,
# a noticeable share of start-up, is never loaded).
out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, emoji=False, width=None if sys.stderr.isatty() else 120)


def to_jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    return obj


def print_json(data) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}")


def info(message: str) -> None:
    err.print(message)


def is_hive_target(path: str) -> bool:
    from rescue.hive.regf import is_hive_file

    return os.path.isfile(path) and is_hive_file(path)


@contextlib.contextmanager
def open_disks(paths: Sequence[str], *, write: bool = False, fmt: str | None = None,
               accel: str | None = None, root: str | None = None, quiet: bool = False,
               images: Sequence | None = None) -> Iterator:
    """Detect formats, launch ONE appliance with a spinner, discover the Windows layout.

    Yields a `rescue.target.DiskTarget` whose `.session` and `.layout` the command uses. `images`:
    already detected DiskImages for `paths` (e.g. one opened through a staging overlay).
    """
    from rescue.disk.formats import check_not_in_use, check_writable, detect
    from rescue.disk.session import DiskSession
    from rescue.layout import discover
    from rescue.target import DiskTarget

    if not paths:
        raise UsageError("Give at least one disk (an image file or a block device).")
    images = list(images) if images is not None else [detect(p, fmt) for p in paths]
    if write:
        # An appliance left by a killed rescue run may still hold the image's lock: reap our own
        # orphans first, so the in-use check below only refuses for someone else's process.
        from rescue.disk.session import reap_orphans

        reap_orphans()
        for img in images:
            check_writable(img)
            check_not_in_use(img)
    session = DiskSession(images, write=write, accel=accel, notify=warn)
    try:
        label = "Starting the libguestfs appliance" + (" (read-write)" if write else " (read-only)")
        if quiet or not err.is_terminal:
            session.launch()
        else:
            with err.status(f"{label}…", spinner="dots"):
                session.launch()
        target = DiskTarget(session, None)
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
def open_target(target: str, *, write: bool = False, fmt: str | None = None, accel: str | None = None,
                root: str | None = None, extra_disks: Sequence[str] = ()) -> Iterator:
    """TARGET is a disk image / block device, or a hive file told apart by its `regf` signature
    (no appliance needed: instant)."""
    from rescue.target import HostFileTarget

    if not os.path.exists(target):
        raise InputError(f"{target} does not exist.",
                         hint="Give a disk image, a block device such as /dev/sdc, or a hive file.")
    if is_hive_target(target):
        if extra_disks:
            raise UsageError("Extra disks make no sense with a bare hive file.")
        t = HostFileTarget(target, write=write)
        try:
            yield t
        finally:
            t.close()
        return
    with open_disks([target, *extra_disks], write=write, fmt=fmt, accel=accel, root=root) as t:
        yield t
