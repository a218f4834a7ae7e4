"""Writing on a volume Windows did not dismount cleanly: refuse with the true state, or, when the
user asked for it (--reset-ntfs-log, --discard-hibernation), reset the NTFS log first.

A Windows 8+ volume that crashed, was force-stopped, hibernated or shut down with Fast Startup has
a version 2.0 $LogFile restart area that is not clean; ntfs-3g refuses to write to it and no Linux
tool can replay the log. The accepted way (what ntfs-3g does itself for older logs) is to empty the
log and let chkdsk check the volume at the next Windows boot; rescue.ntfs.reset has the writes and
why their order is crash-safe. Here: which volumes a command will write, what to tell the user,
and the reset itself, before the first write of the command, with the old restart area, $Volume
record and hibernation header kept (on the host at once, then in the run's backup).

What is lost: the metadata changes of the last seconds before the crash that only the log held
(chkdsk repairs the volume around them), and with --discard-hibernation the hibernated session.
A reset is never undone: writing the old log back over metadata changed since would corrupt it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rescue.errors import DiskError

from rescue.errors import UnsafeStateError, VerifyError, WriteFailedError
from rescue.layout import VolumeState
from rescue.ntfs import probe
from rescue.ntfs.reset import Write, dirty_writes, plan_reset
from rescue.ntfs.state import NtfsEvidence, NtfsState

if TYPE_CHECKING:
    from rescue.safety.faults import Faults

if TYPE_CHECKING:
    from rescue.disk.records import Partition
    from rescue.disk.view import Session
    from rescue.layout import WindowsLayout
    from rescue.safety.plan import Plan
    from rescue.target import Target

LOG_FLAG = "--reset-ntfs-log"
HIBERNATION_FLAG = "--discard-hibernation"


@dataclass(frozen=True)
class NtfsOptions:
    reset_log: bool = False                 # --reset-ntfs-log
    discard_hibernation: bool = False       # --discard-hibernation (implies the log reset)


@dataclass(frozen=True)
class PlannedReset:
    disk: int
    partition: int
    where: str                              # "C: (osdisk.vhd partition 3)"
    evidence: NtfsEvidence
    discard_hibernation: bool

    def lines(self) -> list[str]:
        out = []
        if self.discard_hibernation:
            out.append(f"zero the hibernation image header in {self.where}\\hiberfil.sys (Windows cold-boots; "
                       "the hibernated session is dropped)")
        out.append(f"reset the NTFS log of {self.where} ({self.evidence.summary()}) the way ntfs-3g does, "
                   "keeping a copy of its restart area in the backup")
        out.append(f"mark {self.where} dirty: Windows runs chkdsk on it at the next boot")
        return out

    def to_json(self) -> dict:
        return {"disk": self.disk, "partition": self.partition, "where": self.where,
                "discard_hibernation": self.discard_hibernation, "evidence": self.evidence.to_json()}


@dataclass(frozen=True)
class ResetPreview:
    """The resets a command makes before its first write, shown before it asks (the reporter's
    show(); rescue.cli.views draws it)."""

    resets: tuple[PlannedReset, ...]

    CAVEAT = ("The last metadata changes Windows made before it stopped are dropped with the log; chkdsk "
              "repairs the volume at the next boot. `rescue undo` restores every changed file but not the log.")


@dataclass(frozen=True)
class ResetRecord:
    disk: int
    partition: int
    where: str
    state_before: str
    log_version_before: str | None
    restart_flags_before: int | None
    volume_flags_before: int
    volume_flags_after: int
    log_size: int
    hibernation_discarded: bool
    saved: tuple[tuple[str, int, bytes], ...]      # (file name, volume offset, bytes before)
    host_copy: str                                   # folder on the host with the same bytes
    when: str

    def backup_name(self, name: str) -> str:
        return f"ntfs-d{self.disk}p{self.partition}-{name}"

    def to_json(self) -> dict:
        import hashlib

        return {"disk": self.disk, "partition": self.partition, "where": self.where, "when": self.when,
                "state_before": self.state_before, "log_version_before": self.log_version_before,
                "restart_flags_before": self.restart_flags_before,
                "volume_flags_before": self.volume_flags_before, "volume_flags_after": self.volume_flags_after,
                "log_size": self.log_size, "hibernation_discarded": self.hibernation_discarded,
                "saved": [{"file": self.backup_name(n), "volume_offset": off, "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()} for n, off, data in self.saved],
                "host_copy": self.host_copy, "undone_by_undo": False}


# --- which volumes, and may we ---------------------------------------------------------------------
def written_volumes(target: Target, plan: Plan | None = None,
                    extra: tuple[tuple[int, int], ...] = ()) -> list[tuple[int, int]]:
    """(disk, partition) of every volume the command writes: its files' and its backup's."""
    seen: dict[tuple[int, int], None] = {}
    for ref in (plan.files_touched() if plan is not None else ()):
        if not ref.on_host:
            seen.setdefault(ref.volume, None)
    try:
        root = target.backup_root()
        if not root.on_host:
            seen.setdefault(root.volume, None)
    except Exception:            # no Windows volume: the planner already said so, or nothing is kept
        pass
    for key in extra:
        seen.setdefault(key, None)
    return list(seen)


def describe(layout: WindowsLayout, disk: int, partition: int) -> str:
    where = f"{layout.disk_paths[disk]} partition {partition}"
    letter = layout.letter_of(disk, partition)
    return f"{letter} ({where})" if letter else where


def plan_resets(target: Target, volumes: Sequence[tuple[int, int]], options: NtfsOptions) -> tuple[PlannedReset, ...]:
    """The resets the command needs on `volumes`, or UnsafeStateError naming the true state and the
    flag that allows writing. Nothing is written here."""
    layout = target.layout
    if layout is None:
        return ()
    out = []
    for disk, partition in volumes:
        vol = layout.volume(disk, partition)
        ev = getattr(vol, "ntfs", None) if vol is not None else None
        if ev is None or not ev.state.needs_reset:
            continue
        where = describe(layout, disk, partition)
        if ev.state.hibernation and not options.discard_hibernation:
            raise refusal(where, ev, options)
        if ev.state is NtfsState.UNCLEAN and not (options.reset_log or options.discard_hibernation):
            raise refusal(where, ev, options)
        out.append(PlannedReset(disk, partition, where, ev, ev.state.hibernation))
    return tuple(out)


def flag_for(ev: NtfsEvidence) -> str:
    """The option a write on a volume in this state needs."""
    return HIBERNATION_FLAG if ev.state.hibernation else LOG_FLAG


def flag_note(ev: NtfsEvidence) -> str:
    """One sentence for diagnose: what that option does and what it costs."""
    if ev.state.hibernation:
        return (f"{HIBERNATION_FLAG}: Windows left a resumable hibernation image, which is invalidated (Windows "
                "cold-boots, the hibernated session is lost), and the NTFS log is reset with chkdsk at the next "
                "boot.")
    return (f"{LOG_FLAG}: Windows crashed or was stopped with changes only in its NTFS log, which no Linux tool "
            "can replay; the log is reset as ntfs-3g does and chkdsk repairs the volume at the next boot (the "
            "last changes before the crash are lost; `rescue undo` restores files, not the log).")


def reset_allowed(target: Target, disk: int, partition: int) -> bool:
    """True when the volume needs a log reset and the command's options allow it (a resize that
    follows the reset may then plan on it)."""
    layout = target.layout
    vol = layout.volume(disk, partition) if layout is not None else None
    ev = getattr(vol, "ntfs", None)
    opts = target.ntfs_options
    if ev is None or opts is None or not ev.state.needs_reset:
        return False
    return opts.discard_hibernation or (opts.reset_log and not ev.state.hibernation)


def refusal(where: str, ev: NtfsEvidence, options: NtfsOptions) -> UnsafeStateError:
    nothing = " Nothing was written."
    if ev.state is NtfsState.UNCLEAN:
        return UnsafeStateError(
            f"{where} was not shut down cleanly: Windows crashed, hung or was stopped while it was in use, and "
            f"its NTFS log still holds changes only Windows can replay ({ev.summary()}); ntfs-3g will not write "
            "to it.",
            hint=f"Add {LOG_FLAG} to reset the log the way ntfs-3g does for older Windows versions and mark the "
                 "volume for chkdsk at the next boot (the last metadata changes before the crash are dropped; "
                 "chkdsk repairs the volume around them). Or attach the disk to a working Windows VM and run "
                 "`chkdsk X: /f` there." + nothing)
    kind = ("was shut down with Fast Startup (a hybrid shutdown: Windows hibernated its kernel session)"
            if ev.state is NtfsState.FAST_STARTUP else "is hibernated")
    also = f" ({LOG_FLAG} alone is not enough: the hibernated session must be dropped too)" if options.reset_log else ""
    return UnsafeStateError(
        f"{where} {kind}: \\hiberfil.sys holds a resumable image ({ev.summary()}), so writing to the volume now "
        "would be undone or corrupted by the resume.",
        hint=f"If the VM can still start, let it resume and shut it down fully (`shutdown /s /t 0`). If it "
             f"cannot, add {HIBERNATION_FLAG}{also}: the image is invalidated (Windows cold-boots; "
             + ("only the signed-out kernel session is lost" if ev.state is NtfsState.FAST_STARTUP
                else "open programs and unsaved work in the hibernated session are lost")
             + "), the log is reset and chkdsk checks the volume at the next boot." + nothing)


# --- doing it --------------------------------------------------------------------------------------
def _host_dir(label: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rescue" / "ntfs-reset"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
    d = base / f"{stamp}-{safe}"
    n = 1
    while d.exists():
        n += 1
        d = base / f"{stamp}-{safe}-{n}"
    d.mkdir(parents=True)
    return d


def _keep_on_host(folder: Path, saved: tuple[tuple[str, int, bytes], ...], info: dict) -> None:
    """Copies of the bytes about to be overwritten, durable before the first write."""
    for name, _off, data in saved:
        with open(folder / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    (folder / "reset.json").write_text(json.dumps(info, indent=2) + "\n")
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(session: Session, part: Partition, writes: tuple[Write, ...] | list[Write]) -> None:
    for w in writes:
        for off, data in w.pieces():
            session.write_device(part.disk, data, part.start + off)


def perform(target: Target, planned: tuple[PlannedReset, ...], *, faults: Faults | None = None,
            dirty: bool = True) -> tuple[ResetRecord, ...]:
    """Reset each planned volume (unmounted first), verify it, and refresh the layout's evidence.
    `dirty=False`: leave the dirty bit for after a resize (ntfsresize refuses a dirty volume);
    call ensure_dirty() then."""
    if not planned:
        return ()
    session, _layout = target.disk_set()
    records = []
    for p in planned:
        part = session.partition(p.disk, p.partition)
        mp = session.mounted(part)
        now = probe.evidence(session, part, mp, p.evidence.hiberboot_enabled)
        if now.state != p.evidence.state:
            raise UnsafeStateError(f"{p.where} changed since it was read ({p.evidence.state.value} -> "
                                   f"{now.state.value}); nothing was written.", hint="Run the command again.")
        _head, hib_record = probe.hiberfil(session, mp) if p.discard_hibernation else (None, None)
        if p.discard_hibernation and hib_record is None:
            raise UnsafeStateError(f"{p.where}\\hiberfil.sys cannot be located; nothing was written.")
        if mp:
            session.umount(part)        # nothing of ntfs-3g's may sit between us and the device
        rplan = plan_reset(probe.reader(session, part), hiberfil_record=hib_record, dirty=dirty)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        saved = tuple((s.name, s.offset, s.data) for s in rplan.saved)
        folder = _host_dir(f"{session.images[p.disk].path}-p{p.partition}")
        _keep_on_host(folder, saved, {"where": p.where, "when": when, "evidence": p.evidence.to_json(),
                                      "offsets": {n: off for n, off, _d in saved}})
        try:
            body = [w for w in rplan.writes if w.what != "restart pages"]
            last = [w for w in rplan.writes if w.what == "restart pages"]
            _write(session, part, body)
            session.sync()                      # the emptied body is on disk before the restart area goes
            if faults is not None:
                faults("ntfs-reset")            # killed here: the old restart area, whole
            _write(session, part, last)         # ONE write: both restart pages
            session.sync()
            if faults is not None:
                faults("after-ntfs-reset")
        except DiskError as exc:
            raise WriteFailedError(f"Resetting the NTFS log of {p.where} failed ({exc.message}).",
                                   hint=f"Run the command again to finish the reset; copies of the old restart "
                                        f"area are in {folder}.") from None
        after = probe.evidence(session, part, None, p.evidence.hiberboot_enabled)
        if not after.log_empty or (dirty and not after.dirty):
            raise VerifyError(f"The NTFS log of {p.where} does not read back as reset ({after.summary()}).",
                              hint=f"Copies of the old restart area are in {folder}.")
        records.append(ResetRecord(p.disk, p.partition, p.where, p.evidence.state.value, p.evidence.log_version,
                                   p.evidence.restart_flags, rplan.flags_before, rplan.flags_after, rplan.log_size,
                                   p.discard_hibernation, saved, str(folder), when))
        _refresh(target, p, after if not p.discard_hibernation else replace(after, hiberfil_signature="zeroed"))
    return tuple(records)


def ensure_dirty(target: Target, records: tuple[ResetRecord, ...]) -> tuple[ResetRecord, ...]:
    """Set the dirty bit on reset volumes that do not have it yet (after a resize); returns the
    records with the flags as they now are."""
    if not records:
        return ()
    session, _layout = target.disk_set()
    out = []
    for r in records:
        part = session.partition(r.disk, r.partition)
        writes = dirty_writes(probe.reader(session, part))
        if writes:
            if session.mounted(part):
                session.umount(part)
            _write(session, part, writes)
            session.sync()
        ev = probe.evidence(session, part, None)
        if not ev.dirty or ev.volume_flags is None:
            raise VerifyError(f"{r.where} does not read back as marked for chkdsk.")
        out.append(replace(r, volume_flags_after=ev.volume_flags))
    return tuple(out)


def _refresh(target: Target, p: PlannedReset, ev: NtfsEvidence) -> None:
    """The layout now says what the volume is: writable (dirty), so later steps and the diagnosis
    after the fix see it as it is."""
    _session, layout = target.disk_set()
    state = VolumeState.DIRTY if ev.state is NtfsState.DIRTY else VolumeState.OK
    vols = tuple(replace(v, ntfs=ev, state=state, note=None)
                 if (v.disk, v.partition) == (p.disk, p.partition) else v for v in layout.volumes)
    target.layout = replace(layout, volumes=vols)


def backup_extra(records: tuple[ResetRecord, ...]) -> dict[str, bytes]:
    """{file name in the backup folder: bytes} for the run's backup."""
    return {r.backup_name(n): data for r in records for n, _off, data in r.saved}


def undo_note(resets: list[dict]) -> str:
    wheres = ", ".join(sorted({r.get("where", "?") for r in resets}))
    return (f"The NTFS log reset of {wheres} is not undone: writing the old log back over metadata changed since "
            "would corrupt the volume (its old restart area is kept in the backup for the record). Every changed "
            "file is restored; chkdsk checks the volume at the next Windows boot.")
