"""The apply engine's part for changes that are not files: a disk's sector 0 (the MBR boot
indicator, rescue.safety.plan.SetActivePartition).

Same guarantees as for files (rescue.safety.apply): checked against the bytes the plan was made
from before anything is written; the whole 512-byte sector kept in the backup folder on the
Windows volume and read back from there before the first write; written with one raw write of
the disk device (never through a partition tool), synced, read back and compared; put back from
the backup on a failure, and by `rescue undo`. It is written after the files, so a failure while
writing files never needs the partition table rolled back.

Why only the boot indicators may differ from the kept copy when undoing: a sector whose partition
entries changed since (someone repartitioned the disk) must not be overwritten with an old table;
undo refuses it, before it writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rescue.disk import ptable
from rescue.errors import RescueError, UnsafeStateError, VerifyError
from rescue.safety import backup as B
from rescue.safety.plan import Plan, SetActivePartition

if TYPE_CHECKING:
    from rescue.safety.faults import Faults
    from rescue.target import Target


@dataclass(frozen=True)
class SectorWork:
    change: SetActivePartition

    def keep(self) -> B.SectorKeep:
        return B.SectorKeep(self.change.disk, self.change.disk_label, self.change.before, role="mbr")


def prepare(target: Target, plan: Plan) -> list[SectorWork]:
    """The sector writes of `plan`, each checked: one per disk, changing only boot indicators, and
    the disk still holding the sector the plan was made from."""
    works: list[SectorWork] = []
    for c in plan.sector_changes:
        if any(w.change.disk == c.disk for w in works):
            raise RuntimeError(f"plan changes sector 0 of disk {c.disk} twice")        # planner bug
        if c.after != ptable.with_active(c.before, c.partition) or \
                not ptable.only_boot_indicators_differ(c.before, c.after):
            raise RuntimeError("plan's MBR change is not a boot-indicator change")     # planner bug
        now = target.read_boot_sector(c.disk)
        if now != c.before:
            raise UnsafeStateError(f"{c.where} changed since the plan was made from it.",
                                   hint="Run the command again; nothing was written.")
        works.append(SectorWork(c))
    return works


def write(target: Target, works: list[SectorWork], faults: Faults, started: list[SectorWork]) -> None:
    """Write each sector (the backup is durable by now: the engine synced it with the staged files),
    then read it back."""
    for w in works:
        faults("before-mbr-write")
        started.append(w)
        target.write_boot_sector(w.change.disk, w.change.after)     # synced by the disk layer
        faults("after-mbr-write")
        got = target.read_boot_sector(w.change.disk)
        if got != w.change.after:
            raise VerifyError(f"{w.change.where} reads back different from what was written.")


def rollback(target: Target, manifest: B.Manifest, started: list[SectorWork]) -> tuple[list[str], list[str]]:
    """Put every started sector back from the backup: (restored labels, problems)."""
    restored, problems = [], []
    disks = {w.change.disk for w in started}
    for entry in manifest.sectors:
        if entry.disk not in disks:
            continue
        try:
            if B.restore_sector(target, manifest.id, entry) == "restored":
                restored.append(entry.label)
        except (RescueError, OSError) as exc:      # reported: the user must know the MBR's state
            problems.append(f"{entry.label}: {B._short(exc)}")
    return restored, problems


def after_entries(manifest: B.Manifest, works: list[SectorWork]) -> tuple[B.SectorEntry, ...]:
    """The manifest's sector entries with what the run left there."""
    after = {w.change.disk: B.sha256_bytes(w.change.after) for w in works}
    return tuple(B.SectorEntry(e.disk, e.disk_path, e.offset, e.size, e.role, e.sha256, e.stored,
                               after.get(e.disk, e.after_sha256)) for e in manifest.sectors)


# --- undo ------------------------------------------------------------------------------------------
def undo_states(target: Target, manifest: B.Manifest) -> tuple[tuple[B.SectorEntry, str], ...]:
    """Each kept sector with the sha256 of what the disk holds now. Refuses (before any write) a
    sector that differs from the kept one in more than the boot indicators."""
    states = []
    for e in manifest.sectors:
        now = target.read_boot_sector(e.disk)
        kept = target.read_bytes(B.child(B.backup_dir(target, manifest.id), e.stored))
        if B.sha256_bytes(kept) != e.sha256:
            raise VerifyError(f"The copy of {e.label} in backup {manifest.id} does not match its manifest; "
                              "nothing was restored.")
        if not ptable.only_boot_indicators_differ(now, kept):
            raise UnsafeStateError(
                f"{e.label} changed since backup {manifest.id} in more than the active flag (its partition table "
                "was rewritten); writing the old sector back could damage the partitions, so nothing was restored.",
                hint=f"The sector as it was is kept in {B.location(target, manifest.id)}\\{e.stored} for reference.")
        states.append((e, B.sha256_bytes(now)))
    return tuple(states)


def undo_keeps(target: Target, work: list[tuple[B.SectorEntry, str]]) -> tuple[B.SectorKeep, ...]:
    """The current sectors an undo keeps in its own backup (so the undo can be undone)."""
    return tuple(B.SectorKeep(e.disk, e.disk_path, target.read_boot_sector(e.disk), e.role) for e, _ in work)
