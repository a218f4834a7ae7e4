"""Which BCD store a command works on, and a host copy of it to read.

The store the firmware uses is found by layout discovery (rescue.layout_scan: Gen2
\\EFI\\Microsoft\\Boot\\BCD on the EFI system partition, Gen1 \\Boot\\BCD on the active partition);
`--store PATH` names another one on the disk (e.g. EFI/Microsoft/Recovery/BCD); a BCD file given as
the target is the store itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from rescue.errors import NotFoundError, NotWindowsError, RescueError, UsageError
from rescue.fileref import FileRef, win_path

if TYPE_CHECKING:
    from rescue.target import Target


def store_ref(target: Target, store_path: Optional[str] = None) -> FileRef:
    """The FileRef of the store to work on: the bare hive itself, the layout's BCD, or --store."""
    from rescue.target import HostFileTarget

    if isinstance(target, HostFileTarget) and target.session is None:     # TARGET is the store
        if store_path:
            raise UsageError("--store picks a store on a disk; TARGET is already a BCD file.")
        return target.main
    layout = target.layout
    if not store_path:
        if layout is None or layout.bcd is None:
            raise NotWindowsError("No BCD store found on the given disk(s) (neither \\EFI\\Microsoft\\Boot\\BCD "
                                  "on an EFI system partition nor \\Boot\\BCD on an MBR partition).",
                                  hint="Name one with --store PATH, or give the BCD file itself.")
        return FileRef(layout.bcd.path, layout.bcd.disk, layout.bcd.partition)
    path = win_path(store_path)
    candidates = []
    if layout is not None and layout.bcd is not None:
        candidates.append((layout.bcd.disk, layout.bcd.partition))
    for v in (layout.volumes if layout is not None else ()):
        if v.fstype and (v.disk, v.partition) not in candidates:
            candidates.append((v.disk, v.partition))
    for disk, part in candidates:
        ref = FileRef(path, disk, part)
        try:
            if target.exists(ref):
                return ref
        except RescueError:
            continue                          # a volume that does not mount cannot hold it
    raise NotFoundError(f"{path} was not found on any volume of the given disk(s).")


def host_copy(target: Target, ref: FileRef, discard_hive_logs: bool = False) -> Path:
    """A host copy of the store for reading, pending transaction logs replayed (safety engine)."""
    from rescue.safety.hivecheck import safe_hive_copy

    return safe_hive_copy(target, ref, discard_hive_logs=discard_hive_logs)


def open_store(target: Target, ref: FileRef, discard_hive_logs: bool = False):
    """The parsed store (rescue.bcd.model.BcdStore) at `ref`, read from a host copy."""
    from rescue.bcd.model import BcdStore

    return BcdStore.open(host_copy(target, ref, discard_hive_logs), name=ref.path)


def store_label(target: Target, ref: FileRef) -> str:
    return ref.path if ref.on_host else target.describe(ref)


def device_context(target: Any):
    """Attached disks and drive letters for naming partition devices; None for a bare hive file."""
    from rescue.bcd.devices import DeviceContext

    if target.session is None or target.layout is None:
        return None
    return DeviceContext(target.session.disks(), target.layout.letters, target.layout.disk_paths)
