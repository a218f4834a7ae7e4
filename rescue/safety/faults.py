"""The test hook that makes an apply crash or fail at a named point (RESCUE_FAULT).

Not a feature: the fault-injection tests use it to prove that a crash at any step leaves the old
state, or one that `rescue undo` restores byte for byte.
"""

from __future__ import annotations

import os
import signal

# In the order an apply reaches them; the first two only when an NTFS log is reset first.
NTFS_FAULT_POINTS = ("ntfs-reset", "after-ntfs-reset")
FILE_FAULT_POINTS = ("after-backup", "mid-upload", "before-rename", "after-rename")
# Only when a plan writes a disk's sector 0 (the MBR active flag), after its files.
MBR_FAULT_POINTS = ("before-mbr-write", "after-mbr-write")
FAULT_POINTS = NTFS_FAULT_POINTS + FILE_FAULT_POINTS + MBR_FAULT_POINTS


# --- fault injection (test hook) ---------------------------------------------------------------
class Faults:
    """TEST HOOK, not a feature: RESCUE_FAULT names points of an apply where the process kills itself
    with SIGKILL (as a crash, power loss or OOM kill would) or, with the "raise:" prefix, raises
    OSError (a failed write, which exercises the rollback). Syntax: `[raise:]point[@n]`, several
    separated by commas; `@n` fires the n-th time the point is reached (default the first).
    Points, in the order an apply reaches them: ntfs-reset (an NTFS log reset with the log body
    emptied and synced, the restart pages not yet written), after-ntfs-reset (the reset written and
    synced, no backup yet), mid-upload (half of a file written under its
    temporary name), after-backup (the backup and every staged copy synced, no original changed
    yet), before-rename, after-rename (that file switched and synced), before-mbr-write (the kept
    sector 0 durable in the backup, the MBR not written yet), after-mbr-write (the new sector 0
    written and synced, not yet read back, the manifest still "in-progress"). Used by
    tests/integration/test_safety_disk.py and test_rebuild_bcd_disk.py."""

    def __init__(self, spec: str | None):
        self.armed: dict[str, tuple[int, bool]] = {}
        self.seen: dict[str, int] = {}
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            raise_ = item.startswith("raise:")
            item = item.removeprefix("raise:")
            point, _, nth = item.partition("@")
            if point not in FAULT_POINTS:
                raise ValueError(f"RESCUE_FAULT: unknown point {point!r} (known: {', '.join(FAULT_POINTS)})")
            self.armed[point] = (int(nth) if nth else 1, raise_)

    @classmethod
    def from_env(cls) -> "Faults":
        return cls(os.environ.get("RESCUE_FAULT"))

    def due(self, point: str) -> bool:
        """Count one passage through `point`; True when the fault is to fire now."""
        if point not in self.armed:
            return False
        self.seen[point] = self.seen.get(point, 0) + 1
        return self.seen[point] == self.armed[point][0]

    def fire(self, point: str) -> None:
        if self.armed[point][1]:
            raise OSError(f"injected fault at {point}")
        os.kill(os.getpid(), signal.SIGKILL)

    def __call__(self, point: str) -> None:
        if self.due(point):
            self.fire(point)


# --- work items --------------------------------------------------------------------------------
