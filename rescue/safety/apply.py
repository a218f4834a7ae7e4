"""The one write path every repair uses: plan shown -> (dry run stops) -> host-side edits checked ->
room checked -> confirmation -> backup on the target -> atomic uploads verified by read-back ->
rollback from the backup on any failure.

Order, and why:
1. Every hive edit is made and checked on the host BEFORE anything is written: download (already
   done by the planner), replay pending logs (rescue.safety.hivecheck), hivex edit, commit, reopen
   and compare with the plan. A failure here costs nothing: the disk is untouched.
2. Room for the backup and the temporary copies is checked, then the user confirms.
3. The backup is made on the target and each copy is compared (sha256) with the bytes the plan was
   made from: this also proves the file did not change since it was read.
4. Each new file is staged under a temporary name beside its original; one sync makes the backup
   and the staged copies durable; then each is renamed over its original in plan order (rename is
   atomic: a crash leaves the old or the new file), synced, and read back (sha256 == the host file).
   A replayed or log-discarded hive's .LOG1/.LOG2 are emptied only AFTER the hive is in place: the
   hive written by hivex is clean, so Windows ignores the logs from then on; emptying them first
   and crashing before the upload would leave a dirty hive whose logs are gone. A disk's sector 0
   (the MBR's active flag) is written after the files, read back (rescue.safety.sectors).
5. Any failure (or Ctrl-C) during 3-4 restores what was already touched from the backup and says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rescue.errors import DiskError, RescueError, UnsafeStateError, VerifyError, WriteFailedError
from rescue.safety import backup as B
from rescue.report import SILENT, Reporter
from rescue.safety.faults import FAULT_POINTS, FILE_FAULT_POINTS, NTFS_FAULT_POINTS, Faults  # noqa: F401
from rescue.safety import render
from rescue.safety import sectors as S
from rescue.safety.hivecheck import HiveState, announce, assess, forget
from rescue.safety.hivecheck import safe_hive_copy  # noqa: F401  (readers import it from here too)
from rescue.safety.hive_edits import check_before, verify_hive
from rescue.safety.plan import HIVE_CHANGES, DeleteFile, DeleteKey, DeleteValue, FileRef, Plan, SetValue, WriteFile
from rescue.target import sha256_file
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.target import Target

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class ApplyResult:
    backup_id: str | None
    applied: bool
    nothing_to_do: bool
    dry_run: bool
    files: tuple[FileRef, ...]           # files written or deleted
    backup_location: str | None = None
    notes: tuple[str, ...] = ()
    prelude: Any = None                  # what Plan.prelude.run() returned (has .to_json())
    target_label: str = ""               # the TARGET as given (for `rescue undo TARGET`)
    changes: int = 0                     # changes applied
    changed_files: int = 0               # files they touched
    planned_resets: tuple = ()           # rescue.safety.ntfs_reset.PlannedReset: the log resets the plan needs
    ntfs_resets: tuple = ()              # rescue.safety.ntfs_reset.ResetRecord of each log reset made
    sectors: tuple = ()                  # rescue.safety.backup.SectorEntry of each disk sector written

    def to_json(self) -> dict:
        return {"applied": self.applied, "dry_run": self.dry_run, "nothing_to_do": self.nothing_to_do,
                "backup_id": self.backup_id, "backup_location": self.backup_location,
                "files": [f.to_json() for f in self.files], "notes": list(self.notes),
                "prelude": self.prelude.to_json() if self.prelude is not None else None,
                "ntfs_resets": [r.to_json() for r in self.ntfs_resets],
                "sectors": [{"disk": e.disk, "disk_path": e.disk_path, "offset": e.offset, "size": e.size,
                             "role": e.role} for e in self.sectors]}

    def plan_json(self, plan: Plan) -> dict:
        """plan.to_json() with the log resets the engine found it needs (`ntfs_resets`)."""
        return {**plan.to_json(), "ntfs_resets": [r.to_json() for r in self.planned_resets]}


@dataclass
class _HiveWork:
    ref: FileRef
    state: HiveState
    changes: list
    edited: Path
    sha_after: str


@dataclass
class _WriteWork:
    ref: FileRef
    host: Path
    sha_after: str


@dataclass
class _DeleteWork:
    refs: list[FileRef]           # deleted one call for all (not kept) or one by one (kept)
    kept: bool
    size: int = 0


@dataclass
class _Prepared:
    works: list = field(default_factory=list)
    keeps: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    sectors: list = field(default_factory=list)      # rescue.safety.sectors.SectorWork


def _group(plan: Plan) -> dict[FileRef, list]:
    groups: dict[FileRef, list] = {}
    for c in plan.file_changes:
        groups.setdefault(c.file, []).append(c)
    return groups


def _prepare(target: Target, plan: Plan, discard: bool) -> _Prepared:
    prep = _Prepared(sectors=S.prepare(target, plan))
    loose: list[FileRef] = []            # deleted, not kept: one batch at the end of their run
    for n, (ref, changes) in enumerate(_group(plan).items()):
        label = target.describe(ref)
        if all(isinstance(c, HIVE_CHANGES) for c in changes):
            work = _prepare_hive(target, ref, changes, discard, n)
            prep.works.append(work)
            prep.keeps.append(B.Keep(ref, "hive", True, size=work.state.original.stat().st_size,
                                     sha256=work.state.sha256))
            prep.keeps.extend(B.Keep(lg.ref, "log", True, size=lg.size, sha256=lg.sha256) for lg in work.state.logs)
            if work.state.verdict != "clean":
                prep.notes.append(f"{label}: {work.state.summary}")
        elif all(isinstance(c, DeleteFile) for c in changes):
            if any(c.backup for c in changes):
                prep.works.append(_DeleteWork([ref], kept=True, size=changes[0].size))
                prep.keeps.append(B.Keep(ref, "file", True))
            else:
                loose.append(ref)
                prep.keeps.append(B.Keep(ref, "file", False, size=changes[0].size))
        elif all(isinstance(c, WriteFile) for c in changes):
            host = target.workdir / f"write-{n}-{Path(ref.path.replace(chr(92), '/')).name or 'file'}"
            host.write_bytes(changes[-1].data)
            prep.works.append(_WriteWork(ref, host, sha256_file(host)))
            prep.keeps.append(B.Keep(ref, "file", True))
        else:
            raise RuntimeError(f"plan mixes hive edits and file operations on {label}")  # planner bug
    if loose:
        # Deleted files that are not kept go last: everything that can be rolled back is done first.
        prep.works.append(_DeleteWork(loose, kept=False))
    return prep


def _prepare_hive(target: Target, ref: FileRef, changes: list, discard: bool, n: int) -> _HiveWork:
    from rescue.hive import Hive

    state = assess(target, ref, discard_hive_logs=discard)
    if state.verdict == "refused":
        raise state.refusal()
    edited = target.workdir / f"edit-{n}-{state.original.name}"
    shutil.copyfile(state.base, edited)
    try:
        hive = Hive(edited, write=True)
        for c in changes:
            check_before(hive, c, state.label)
            if isinstance(c, SetValue):
                hive.set(c.key, c.name, c.type, c.data)
            elif isinstance(c, DeleteValue):
                hive.delete_value(c.key, c.name)
            else:
                hive.delete_key(c.key)
        hive.commit()
        hive.close()
    except RuntimeError as exc:
        raise WriteFailedError(f"Editing {state.label} failed on the host copy ({B._short(exc)}); nothing was written.") from None
    verify_hive(edited, changes, state.label)
    return _HiveWork(ref, state, list(changes), edited, sha256_file(edited))


# --- room --------------------------------------------------------------------------------------
def _volume(target: Target, ref: FileRef):
    if not ref.on_host:
        return (ref.disk, ref.partition)
    p = Path(ref.path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return ("host", p.stat().st_dev)


def _check_room(target: Target, prep: _Prepared) -> None:
    need: dict = {}

    def add(ref: FileRef, n: int) -> None:
        key = _volume(target, ref)
        prev = need.get(key, (ref, 0))
        need[key] = (prev[0], prev[1] + n)

    root = target.backup_root()
    kept = 0
    for k in prep.keeps:
        if k.keep:
            kept += k.size if k.size is not None else (target.size(k.file) if target.exists(k.file) else 0)
    kept += sum(len(w.change.before) for w in prep.sectors)
    add(root, kept + (1 << 20))            # + the manifest and filesystem slack
    for w in prep.works:
        if isinstance(w, _HiveWork):
            add(w.ref, w.edited.stat().st_size + (64 << 10))   # the temporary copy before the rename
        elif isinstance(w, _WriteWork):
            add(w.ref, w.host.stat().st_size + (64 << 10))
    for key, (ref, n) in need.items():
        free = target.free_bytes(ref)
        if free is not None and free < n:
            where = render.file_label(target, FileRef("\\", ref.disk, ref.partition)) if not ref.on_host \
                else str(Path(ref.path).parent)
            raise UnsafeStateError(
                f"Not enough free space on {where} for the backup and the temporary copies "
                f"({format_bytes(n)} needed, {format_bytes(free)} free).",
                hint="Free some space first (for example with `rescue cleanup`); nothing was written.")


def _prelude_volumes(plan: Plan) -> tuple[tuple[int, int], ...]:
    """The volume a prelude grows (an expand always grows a partition of disk 0), so a log reset it
    needs is planned too."""
    data = plan.prelude.data if plan.prelude is not None else {}
    grow = data.get("expand") if isinstance(data, dict) else None
    return ((0, grow["partition"]),) if isinstance(grow, dict) and "partition" in grow else ()


# --- applying ----------------------------------------------------------------------------------
def _stage(target: Target, host: Path, ref: FileRef, faults: Faults) -> None:
    if faults.due("mid-upload"):
        # What a crash in the middle of the upload leaves: part of the file under its temporary name.
        data = host.read_bytes()
        target.write_bytes(target.companion(ref, B.TEMP_SUFFIX), data[: len(data) // 2])
        target.sync()
        faults.fire("mid-upload")
    target.stage(host, ref)


def _read_back(target: Target, ref: FileRef, want: str) -> None:
    got = target.sha256(ref)
    if got != want:
        raise VerifyError(f"{target.describe(ref)} reads back different from what was written "
                          f"(sha256 {got[:12]}…, expected {want[:12]}…).")


def _apply(target: Target, prep: _Prepared, faults: Faults, started: list[FileRef], notes: list[str],
           started_sectors: list) -> dict:
    """Write every work item; returns {ref: sha256 after} (None for deleted) of the files changed.

    Syncs cost ~0.15 s each under TCG, so they are placed where the crash guarantees need them:
    every new file is staged beside its original, then ONE sync makes the backup (made unsynced)
    and the staged copies durable before any original changes; then the files are switched one at
    a time in plan order, each rename synced before the next, so a crash leaves the first k files
    new and the rest old (undo restores either)."""
    after: dict[FileRef, str | None] = {}
    uploads = [w for w in prep.works if isinstance(w, (_HiveWork, _WriteWork))]
    for w in uploads:
        started.append(w.ref)            # a failure from here on drops the staged copy (rollback)
        _stage(target, w.edited if isinstance(w, _HiveWork) else w.host, w.ref, faults)
    target.sync()
    faults("after-backup")
    for w in uploads:
        faults("before-rename")
        target.switch(w.ref)
        target.sync()
        faults("after-rename")
        _read_back(target, w.ref, w.sha_after)
        after[w.ref] = w.sha_after
    # A replayed or log-discarded hive's logs are emptied only now that the hive is in place, synced
    # (a crash before leaves the new hive with logs Windows ignores: the hive is clean).
    logs = [lg for w in uploads if isinstance(w, _HiveWork) for lg in w.state.pending_logs]
    if logs:
        empty = target.workdir / "empty"
        empty.write_bytes(b"")
        for lg in logs:
            started.append(lg.ref)
            target.stage(empty, lg.ref)
        target.sync()
        for lg in logs:
            target.switch(lg.ref)
            _read_back(target, lg.ref, EMPTY_SHA256)
            after[lg.ref] = EMPTY_SHA256
    # The MBR last of what can be rolled back: a failure writing files never touches the table.
    S.write(target, prep.sectors, faults, started_sectors)
    for w in prep.works:
        if not isinstance(w, _DeleteWork):
            continue
        if w.kept:
            started.extend(w.refs)
            for ref in w.refs:
                target.delete(ref)
                if target.exists(ref):
                    raise VerifyError(f"{target.describe(ref)} is still there after deleting it.")
                after[ref] = None
        else:
            started.extend(w.refs)
            failed = dict(target.delete_many(w.refs))
            for ref in w.refs:
                after[ref] = None
            for ref, reason in failed.items():
                if target.exists(ref):
                    # Left in place: nothing is lost, the plan just frees less. Not a reason to undo.
                    notes.append(f"could not delete {render.file_label(target, ref)}: {reason}")
                    after.pop(ref, None)
    # No sync here: the emptied logs' renames and the deletions are made durable by the sync that
    # precedes the "applied" manifest's rename (write_manifest), so no manifest ever claims more
    # than the disk holds.
    return after


def _rollback(target: Target, manifest: B.Manifest, started: list[FileRef],
              started_sectors: list) -> tuple[list[str], list[str]]:
    """Restore every started sector and file from the backup. Returns (restored labels, problems)."""
    touched = set(started)
    restored, problems = S.rollback(target, manifest, started_sectors)
    for entry in manifest.files:
        if entry.file not in touched:
            continue
        try:
            what = B.restore_entry(target, manifest.id, entry)
        except (RescueError, OSError) as exc:
            problems.append(f"{target.describe(entry.file)}: {B._short(exc)}")
            continue
        if what in ("restored", "removed"):
            restored.append(render.file_label(target, entry.file))
        elif what == "not kept":
            problems.append(f"{render.file_label(target, entry.file)} was deleted and not kept (by design)")
    try:
        target.sync()
    except (DiskError, OSError) as exc:
        problems.append(f"sync: {B._short(exc)}")
    return restored, problems


def execute(target: Target, plan: Plan, *, dry_run: bool, reporter: Reporter | None = None,
            discard_hive_logs: bool = False) -> ApplyResult:
    """Apply `plan` to `target` the safe way (the module's docstring says how). The plan is shown
    through the reporter before anything happens, and applied only with its consent
    (`reporter.confirm`: --yes, or a yes at the prompt). Returns what was done; the caller tells
    the user (nothing to do, dry run, applied).

    A volume the plan writes (its files', its backup's) that Windows did not dismount cleanly is
    refused here, before anything is shown as doable, unless the target's ntfs_options allow its
    log reset, which then runs after the confirmation and before the first write
    (rescue.safety.ntfs_reset)."""
    from rescue.safety import ntfs_reset

    reporter = reporter or getattr(target, "reporter", None) or SILENT
    resets = () if plan.empty else ntfs_reset.plan_resets(
        target, ntfs_reset.written_volumes(target, plan, _prelude_volumes(plan)),
        target.ntfs_options or ntfs_reset.NtfsOptions())
    if resets:
        reporter.show(target, ntfs_reset.ResetPreview(resets))
    reporter.show(target, plan)
    if plan.empty:
        return ApplyResult(None, False, True, dry_run, ())
    if dry_run:
        return ApplyResult(None, False, False, True, (), planned_resets=resets)
    if not target.write:
        raise RuntimeError("execute() needs a target opened for writing")  # caller bug

    prep = _prepare(target, plan, discard_hive_logs)
    for w in prep.works:
        if isinstance(w, _HiveWork):
            announce(target, w.state, reporter=reporter)
    n_files = len(plan.files_touched())
    what = render.changes_phrase(plan, n_files)
    faults = Faults.from_env()
    if plan.prelude is None:
        _check_room(target, prep)
        reporter.confirm(render.resets_question(resets, f"Apply {what}?"))
        records = ntfs_reset.perform(target, resets, faults=faults)
        pre = None
    else:
        # The prelude (growing the volume) makes the room the backup may need, so room is checked
        # after it. Its writes sit in the command's staging overlay until the command commits. A
        # log reset goes first, with the dirty bit after the resize (ntfsresize refuses a dirty volume).
        question = plan.prelude.title + (f", then apply {what}?"
                                         if plan.changes else "?")
        reporter.confirm(render.resets_question(resets, question))
        records = ntfs_reset.perform(target, resets, faults=faults, dirty=False)
        pre = plan.prelude.run()
        records = ntfs_reset.ensure_dirty(target, records)
        _check_room(target, prep)
        if not plan.changes:
            return ApplyResult(None, True, False, False, (), prelude=pre, planned_resets=resets, ntfs_resets=records)

    label = render.target_label(target)
    # Not synced yet: _apply syncs once after staging the new files, before it changes anything.
    manifest = B.make_backup(target, prep.keeps, kind="apply", target_label=label, plan=plan.to_json(),
                             notes=tuple(prep.notes), synced=False, extra=ntfs_reset.backup_extra(records),
                             ntfs_resets=tuple(r.to_json() for r in records),
                             sectors=tuple(w.keep() for w in prep.sectors))
    where = B.location(target, manifest.id)
    reporter.info(f"Backup {manifest.id} written to {where}.")
    for r in records:
        reporter.info(f"Reset the NTFS log of {r.where}" + (" and invalidated its hibernation image"
                      if r.hibernation_discarded else "") + "; chkdsk checks it at the next Windows boot (old "
                      f"restart area kept in backup {manifest.id}).")

    started: list[FileRef] = []
    started_sectors: list = []
    notes = list(prep.notes)
    try:
        after = _apply(target, prep, faults, started, notes, started_sectors)
    except (Exception, KeyboardInterrupt) as exc:
        forget(target, started)
        restored, problems = _rollback(target, manifest, started, started_sectors)
        unrecoverable = [p for p in problems if "not kept" not in p]
        status = B.ManifestStatus.ROLLBACK_FAILED if unrecoverable else B.ManifestStatus.ROLLED_BACK
        try:
            B.write_manifest(target, replace(manifest, status=status, notes=tuple(notes + problems)))
        except (RescueError, OSError):
            pass
        what = exc.message if isinstance(exc, RescueError) else B._short(exc)
        if isinstance(exc, KeyboardInterrupt):
            what = "interrupted"
        if unrecoverable:
            msg = (f"Writing failed ({what}), and restoring from backup {manifest.id} failed too "
                   f"({'; '.join(unrecoverable[:3])}).")
            hint: str | None = f"Run `rescue undo {label} --backup {manifest.id}` to restore the originals from {where}."
        else:
            msg = (f"Writing failed ({what}). Rolled back: {len(restored)} file(s) restored from backup "
                   f"{manifest.id} ({where}); the files are as before.")
            hint = " ".join(p for p in problems) or None
        if isinstance(exc, KeyboardInterrupt):
            reporter.warn(msg)
            raise
        raise (VerifyError if isinstance(exc, VerifyError) else WriteFailedError)(msg, hint=hint) from None

    forget(target, started)
    for w in prep.works:            # read back equal to these host files: no second download
        if isinstance(w, (_HiveWork, _WriteWork)) and w.ref in after:
            target.adopt(w.ref, w.edited if isinstance(w, _HiveWork) else w.host)
    files = tuple(after)
    entries = tuple(replace(e, after_sha256=after.get(e.file, e.sha256)) for e in manifest.files)
    # Not synced here: the session's close syncs; a crash before leaves "in-progress", which undo
    # treats as in effect, so nothing is lost either way.
    sector_entries = S.after_entries(manifest, prep.sectors)
    B.write_manifest(target, replace(manifest, status=B.ManifestStatus.APPLIED, files=entries, notes=tuple(notes),
                                     sectors=sector_entries), durable=False)
    for note in notes[len(prep.notes):]:
        reporter.warn(note)
    return ApplyResult(manifest.id, True, False, False, files, where, tuple(notes), prelude=pre, sectors=sector_entries,
                       target_label=label, changes=len(plan.changes), changed_files=n_files,
                       planned_resets=resets, ntfs_resets=records)
