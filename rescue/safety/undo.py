"""`rescue undo`: put back, byte for byte, the files a run changed.

The latest run's backup still in effect (status applied / in-progress / rollback-failed: a run that
was killed half-way is undone like any other; repeated undos step back run by run) or the one named
with --backup (also an undo's own backup: that undoes the undo) is restored: every kept
file is copied back under a temporary name and renamed over the current one, then its sha256 is
compared with the manifest; files the run created are removed. Before that, the current state of
those files is itself backed up (kind "undo"), so an undo can be undone. The restored backup is then
marked "undone" in its manifest. Files deleted without being kept (page files, cleanup) cannot come
back and are listed as such. A disk sector the run wrote (the MBR's active flag) is written back
from its kept copy, byte for byte, and read back (rescue.safety.sectors); a sector whose partition
entries changed since is refused before anything is restored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rescue import __version__
from rescue.errors import NotFoundError, RescueError, UnsafeStateError, VerifyError, WriteFailedError
from rescue.safety import backup as B
from rescue.safety import render
from rescue.safety import sectors as S
from rescue.safety.hivecheck import forget
from rescue.report import SILENT, Reporter
from rescue.fileref import FileRef

if TYPE_CHECKING:
    from rescue.target import Target


@dataclass(frozen=True)
class UndoResult:
    backup_id: str                       # the backup restored
    undo_backup_id: str | None           # the backup of the state before this undo
    applied: bool
    dry_run: bool
    restored: tuple[FileRef, ...] = ()   # copied back from the backup
    removed: tuple[FileRef, ...] = ()    # created by the run, removed
    identical: tuple[FileRef, ...] = ()  # already byte-identical to the backup
    not_kept: int = 0                    # deleted by the run without being kept: cannot come back
    target_label: str = ""
    manifest: "B.Manifest | None" = None  # the backup restored (for its summary)
    not_undone: tuple[str, ...] = ()     # what the run did that no undo reverses (an NTFS log reset)
    restored_sectors: tuple[B.SectorEntry, ...] = ()   # disk sectors written back (an MBR)

    def to_json(self) -> dict:
        return {"backup_id": self.backup_id, "undo_backup_id": self.undo_backup_id, "applied": self.applied,
                "dry_run": self.dry_run, "restored": [f.to_json() for f in self.restored],
                "removed": [f.to_json() for f in self.removed], "identical": [f.to_json() for f in self.identical],
                "not_kept": self.not_kept, "not_undone": list(self.not_undone),
                "restored_sectors": [{"disk": e.disk, "disk_path": e.disk_path, "offset": e.offset, "size": e.size,
                                      "role": e.role} for e in self.restored_sectors]}


def choose(target: Target, backup_id: str | None) -> B.Manifest:
    manifest = _choose(target, backup_id)
    if manifest.format > B.MANIFEST_FORMAT:
        # Restoring only what this version knows of would leave the disk half old, half new.
        raise UnsafeStateError(
            f"Backup {manifest.id} on {render.target_label(target)} was written by rescue "
            f"{manifest.tool_version} in a newer backup format than this rescue ({__version__}) reads, "
            "so nothing was restored.",
            hint=f"Undo it with rescue {manifest.tool_version} or newer.")
    return manifest


def _choose(target: Target, backup_id: str | None) -> B.Manifest:
    backups = B.list_backups(target)
    label = render.target_label(target)
    if backup_id:
        found = next((m for m in backups if m.id == backup_id), None)
        if found is None:
            raise NotFoundError(f"There is no backup {backup_id} on {label}.",
                                hint=f"`rescue backups {label}` lists them.")
        if found.status in ("incomplete", "unreadable"):
            raise NotFoundError(f"Backup {backup_id} is {found.status} (the run stopped before changing anything), "
                                "so there is nothing to undo.")
        if found.kind == "expand":
            raise _grow_not_undoable(target, found)
        return found
    # Repeated `rescue undo` steps back through the runs, newest first; an undo itself is undone
    # only when named (`--backup ID`), so undoing twice never just toggles between two states.
    active = [m for m in backups if m.status in B.ACTIVE]
    runs = [m for m in active if m.kind != "undo"]
    if runs and runs[-1].kind == "expand":
        # Stepping over it silently would undo an older run while the newest change stays.
        earlier = [m for m in runs if m.kind != "expand"]
        raise _grow_not_undoable(target, runs[-1], latest=True, earlier=earlier[-1] if earlier else None)
    if runs:
        return runs[-1]
    if active:
        raise NotFoundError(f"Every change rescue made on {label} is already undone.",
                            hint=f"To undo the last undo, name its backup: `rescue undo {label} --backup {active[-1].id}`.")
    raise NotFoundError(f"There is no backup to undo on {label}.",
                        hint=f"`rescue backups {label}` lists the backups and their status.")


def _grow_not_undoable(target: Target, manifest: B.Manifest, *, latest: bool = False,
                       earlier: B.Manifest | None = None) -> NotFoundError:
    """Why `rescue undo` restores nothing for an expand run, and what can be done instead."""
    label = render.target_label(target)
    what = "The latest change rescue made" if latest else f"Backup {manifest.id} records that rescue"
    hint = ("Windows can shrink the volume later (Disk Management, Shrink Volume) if ever needed; the partition "
            f"table from before is kept in {B.location(target, manifest.id)} for reference only (writing it back "
            "over the grown NTFS would damage it).")
    if earlier is not None:
        hint += f" To undo the run before it, name its backup: `rescue undo {label} --backup {earlier.id}`."
    return NotFoundError(f"{what} on {label} grew the disk ({manifest.title or 'rescue expand'}, backup "
                         f"{manifest.id}); growing cannot be undone by `rescue undo`, so nothing was restored.",
                         hint=hint)


@dataclass(frozen=True)
class UndoPreview:
    """What an undo is about to do, shown before it asks: each file of the backup with its current
    sha256 ("absent" when missing), the files that cannot come back, and those changed since."""

    manifest: B.Manifest
    states: tuple[tuple[B.BackupEntry, str], ...]
    not_kept: tuple[B.BackupEntry, ...]
    changed_since: tuple[B.BackupEntry, ...]
    not_undone: tuple[str, ...] = ()     # what that run did that no undo reverses (an NTFS log reset)
    sectors: tuple[tuple[B.SectorEntry, str], ...] = ()   # each kept disk sector with its sha256 now


def undo(target: Target, *, backup_id: str | None = None, dry_run: bool,
         reporter: Reporter | None = None) -> UndoResult:
    """Restore a backup (module docstring); the preview is shown through the reporter and the
    restore runs only with its consent."""
    from rescue.safety import ntfs_reset

    reporter = reporter or getattr(target, "reporter", None) or SILENT
    manifest = choose(target, backup_id)
    # A log reset is never undone (the old log over newer metadata would corrupt the volume): say so.
    not_undone = (ntfs_reset.undo_note(list(manifest.ntfs_resets)),) if manifest.ntfs_resets else ()
    restorable = [e for e in manifest.files if e.stored or not e.existed]
    not_kept = [e for e in manifest.files if e.existed and not e.stored]
    states = []
    for e in restorable:
        states.append((e, target.sha256(e.file) if target.exists(e.file) else "absent"))
    changed_since = [e for e, now in states if e.after_sha256 is not None and now not in (e.after_sha256, e.sha256)]
    sector_states = S.undo_states(target, manifest)      # refuses a re-partitioned disk, before any write
    reporter.show(target, UndoPreview(manifest, tuple(states), tuple(not_kept), tuple(changed_since), not_undone,
                                      sector_states))
    label = render.target_label(target)

    def finish(result: UndoResult) -> UndoResult:
        return replace(result, target_label=label, manifest=manifest, not_undone=not_undone)

    if dry_run:
        return finish(UndoResult(manifest.id, None, False, True, not_kept=len(not_kept)))
    if not target.write:
        raise RuntimeError("undo() needs a target opened for writing")  # caller bug
    work = [(e, now) for e, now in states if not ((e.stored and now == e.sha256) or (not e.existed and now == "absent"))]
    sector_work = [(e, now) for e, now in sector_states if now != e.sha256]
    if not work and not sector_work:
        for e, _ in states:
            B.drop_temp(target, e.file)   # what a run killed mid-upload left beside the file
        B.write_manifest(target, replace(manifest, status=B.ManifestStatus.UNDONE))
        return finish(UndoResult(manifest.id, None, False, False,
                                 identical=tuple(e.file for e, _ in states), not_kept=len(not_kept)))
    # The volumes written: the files' and this undo's own backup's (refused, or reset, as any write).
    resets = ntfs_reset.plan_resets(
        target, ntfs_reset.written_volumes(target, None, tuple((e.file.disk, e.file.partition) for e, _ in work
                                                                if e.file.disk is not None
                                                                and e.file.partition is not None)),
        target.ntfs_options or ntfs_reset.NtfsOptions())
    if resets:
        reporter.show(target, ntfs_reset.ResetPreview(resets))
    also = f" and {', '.join(e.label for e, _ in sector_work)}" if sector_work else ""
    reporter.confirm(render.resets_question(resets, f"Restore {len(work)} file(s){also} from backup {manifest.id}?"))
    records = ntfs_reset.perform(target, resets)
    for e, now in states:
        if (e, now) not in work:
            B.drop_temp(target, e.file)

    keeps = [B.Keep(e.file, e.role, True, sha256=None if now == "absent" else now) for e, now in work]
    plan = {"title": f"undo {manifest.id}", "restores": manifest.id,
            "files": [{"file": e.file.to_json(), "to_sha256": e.sha256, "action": "restore" if e.stored else "remove"}
                      for e, _ in work],
            "sectors": [{"disk": e.disk, "disk_path": e.disk_path, "offset": e.offset, "size": e.size,
                         "to_sha256": e.sha256, "action": "restore"} for e, _ in sector_work]}
    mine = B.make_backup(target, keeps, kind="undo", target_label=label, plan=plan, undoes=manifest.id,
                         extra=ntfs_reset.backup_extra(records), ntfs_resets=tuple(r.to_json() for r in records),
                         sectors=S.undo_keeps(target, sector_work))
    reporter.info(f"Current state backed up as {mine.id} in {B.location(target, mine.id)} (so this undo can be undone).")
    forget(target, [e.file for e, _ in work])
    restored: list[FileRef] = []
    removed: list[FileRef] = []
    sectors_restored: list[B.SectorEntry] = []
    try:
        for e, _ in work:
            what = B.restore_entry(target, manifest.id, e)
            (restored if what == "restored" else removed if what == "removed" else []).append(e.file)
        for se, _ in sector_work:
            if B.restore_sector(target, manifest.id, se) == "restored":
                sectors_restored.append(se)
    except (Exception, KeyboardInterrupt) as exc:
        # Put back what this undo already changed, from its own backup.
        problems = []
        for entry in mine.files:
            try:
                B.restore_entry(target, mine.id, entry)
            except (RescueError, OSError) as exc2:
                problems.append(f"{target.describe(entry.file)}: {B._short(exc2)}")
        for sentry in mine.sectors:
            try:
                B.restore_sector(target, mine.id, sentry)
            except (RescueError, OSError) as exc2:
                problems.append(f"{sentry.label}: {B._short(exc2)}")
        B.write_manifest(target, replace(mine, status=B.ManifestStatus.ROLLBACK_FAILED if problems else B.ManifestStatus.ROLLED_BACK))
        what = exc.message if isinstance(exc, RescueError) else B._short(exc)
        if isinstance(exc, KeyboardInterrupt):
            raise
        msg = f"Undo of {manifest.id} failed ({what}); " + (
            f"putting the files back as they were failed too ({'; '.join(problems[:3])})." if problems
            else "the files were put back as they were before this undo.")
        raise (VerifyError if isinstance(exc, VerifyError) else WriteFailedError)(msg) from None
    target.sync()
    after = {e.file: e.sha256 if e.stored else None for e, _ in work}
    B.write_manifest(target, replace(mine, status=B.ManifestStatus.APPLIED,
                                     files=tuple(replace(x, after_sha256=after.get(x.file)) for x in mine.files),
                                     sectors=tuple(replace(x, after_sha256=next(
                                         e.sha256 for e, _ in sector_work if e.disk == x.disk)) for x in mine.sectors)))
    B.write_manifest(target, replace(manifest, status=B.ManifestStatus.UNDONE, undone_by=mine.id))
    result = UndoResult(manifest.id, mine.id, True, False, tuple(restored), tuple(removed),
                        tuple(e.file for e, now in states if (e, now) not in work), len(not_kept),
                        restored_sectors=tuple(sectors_restored))
    return finish(result)
