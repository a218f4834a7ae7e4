"""Fleet mode: many VMs' disks in ONE appliance launch, a report per VM.

Mass incidents (one bad update or agent release, hundreds of VMs at the same stop screen) are when
offline repair matters most. `--each` attaches every VM's disks to one appliance (read-only for a
triage) and treats each VM on its own: its layout, plan, backup and result, through a
`SessionView` (rescue.disk.view) that numbers its disks from 0 as if it had been given alone. A
failure or a refusal on one VM is that VM's report; the others go on.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rescue.errors import ExitCode, InputError, RescueError, UnsafeStateError, UsageError
from rescue.report import SILENT, Reporter

if TYPE_CHECKING:
    from rescue.target import DiskTarget


@dataclass(frozen=True)
class VmDisks:
    """One VM: its OS disk, then its data disks (so drive letters still map)."""

    paths: Tuple[str, ...]

    @property
    def name(self) -> str:
        return self.paths[0]


def vm_groups(disks: Sequence[str], manifest: Optional[str] = None) -> List[VmDisks]:
    """Each DISK a VM of its own, or the manifest's lines: one VM per line, OS disk first, then
    its data disks (shell quoting; blank lines and `#` comments skipped)."""
    if manifest and disks:
        raise UsageError("Give the disks on the command line or in --manifest, not both.")
    if manifest:
        try:
            lines = Path(manifest).read_text().splitlines()
        except OSError as exc:
            raise InputError(f"Cannot read the manifest {manifest}: {exc.strerror}.") from None
        groups = []
        for n, line in enumerate(lines, 1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise UsageError(f"{manifest} line {n}: {exc}.") from None
            if words:
                groups.append(VmDisks(tuple(words)))
    else:
        groups = [VmDisks((d,)) for d in disks]
    if not groups:
        raise UsageError("Give at least one disk (or a --manifest with one VM per line).")
    seen: Dict[str, int] = {}
    for g in groups:
        for p in g.paths:
            if p in seen:
                raise UsageError(f"{p} is listed twice: each disk belongs to one VM.")
            seen[p] = 1
    return groups


class Outcome(str, Enum):
    HEALTHY = "healthy"              # diagnose: nothing found
    FOUND = "found"                  # diagnose: problems found (exit 1 alone)
    PLANNED = "planned"              # fix --dry-run: the plan, nothing written
    NOTHING_TO_DO = "nothing-to-do"  # fix: the disk already is as the plan wants it
    FIXED = "fixed"                  # fix: applied and read back
    UNDONE = "undone"                # undo: restored
    REFUSED = "refused"              # an unsafe or unsupported state: nothing written (exit 3-7)
    FAILED = "failed"                # a write failed or the appliance did (exit 8-10, 70)

    def __str__(self) -> str:
        return self.value


GOOD = (Outcome.HEALTHY, Outcome.PLANNED, Outcome.NOTHING_TO_DO, Outcome.FIXED, Outcome.UNDONE)


@dataclass(frozen=True)
class VmReport:
    """What happened to one VM's disks."""

    vm: VmDisks
    status: Outcome
    exit_code: int                   # the code the same command would have exited with on this VM alone
    seconds: float
    diagnosis: Any = None            # rescue.repairs.findings.Diagnosis (before, for a fix)
    after: Any = None                # the diagnosis after a fix
    plan: Any = None                 # rescue.safety.plan.Plan
    result: Any = None               # ApplyResult / UndoResult
    error: Optional[str] = None
    backup_id: Optional[str] = None

    def to_json(self) -> dict:
        diag = self.after or self.diagnosis
        return {"disk": self.vm.name, "disks": list(self.vm.paths), "status": self.status.value,
                "exit_code": self.exit_code, "seconds": round(self.seconds, 2),
                "findings": [f.to_json() for f in diag.findings] if diag is not None else None,
                "found": [f.id for f in diag.found] if diag is not None else None,
                "fix_commands": diag.fix_commands() if diag is not None and self.after is None else [],
                "changes": len(self.plan.changes) if self.plan is not None else None,
                "result": self.result.to_json() if self.result is not None else None,
                "backup_id": self.backup_id, "error": self.error}


def fleet_exit_code(reports: Sequence[VmReport]) -> int:
    """0 when every VM ended healthy, fixed (or had nothing to do), else the highest VM's code."""
    if all(r.status in GOOD for r in reports):
        return ExitCode.OK
    return max(r.exit_code for r in reports)


def failed(vm: VmDisks, exc: BaseException, started: float) -> VmReport:
    if isinstance(exc, RescueError):
        code = exc.exit_code
        status = Outcome.FAILED if code in (ExitCode.WRITE_FAILED, ExitCode.VERIFY_FAILED, ExitCode.APPLIANCE,
                                            ExitCode.BUG) else Outcome.REFUSED
        return VmReport(vm, status, code, time.monotonic() - started, error=str(exc))
    # A bug met on one VM is that VM's report; the others still get theirs.
    return VmReport(vm, Outcome.FAILED, ExitCode.BUG, time.monotonic() - started,
                    error=f"internal error: {type(exc).__name__}: {exc}")


class Fleet:
    """One appliance over every VM's disks; `target(vm)` is one VM's DiskTarget."""

    def __init__(self, vms: Sequence[VmDisks], *, write: bool, fmt: Optional[str] = None,
                 accel: Optional[str] = None, reporter: Reporter = SILENT) -> None:
        self.vms = list(vms)
        self.write = write
        self.fmt = fmt
        self.accel = accel
        self.reporter = reporter
        self.session: Any = None
        self.refused: Dict[str, VmReport] = {}      # VMs stopped on the host, before the launch
        self._indices: Dict[str, List[int]] = {}
        self._targets: Dict[str, Any] = {}          # each VM's target, kept for later phases

    def open(self) -> "Fleet":
        from rescue.disk.formats import check_not_in_use, check_writable, detect
        from rescue.disk.session import DiskSession

        images: List[Any] = []
        for vm in self.vms:
            started = time.monotonic()
            try:
                mine = [detect(p, self.fmt) for p in vm.paths]
                if self.write:
                    for img in mine:
                        check_writable(img)
                        check_not_in_use(img)      # reaps orphans of killed rescue runs first
            except Exception as exc:  # noqa: BLE001  one VM's bad input is its own report
                self.refused[vm.name] = failed(vm, exc, started)
                continue
            self._indices[vm.name] = list(range(len(images), len(images) + len(mine)))
            images += mine
        if images:
            self.session = DiskSession(images, write=self.write, accel=self.accel, notify=self.reporter.warn)
            with self.reporter.progress(f"Starting the libguestfs appliance for {len(images)} disk(s)"
                                        + (" (read-write)" if self.write else " (read-only)") + "…"):
                self.session.launch()
        return self

    def close(self) -> None:
        for target in self._targets.values():
            target.close()
        self._targets.clear()
        if self.session is not None:
            self.session.close()
            self.session = None

    def __enter__(self) -> "Fleet":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def target(self, vm: VmDisks) -> Any:
        """One VM's disks as a DiskTarget: its layout discovered on first use, then kept (a fix
        plans every VM, then applies each: discovery and the hives read are not paid twice)."""
        from rescue.disk.view import SessionView
        from rescue.layout import discover
        from rescue.target import DiskTarget

        if vm.name not in self._targets:
            view = SessionView(self.session, self._indices[vm.name])
            target = DiskTarget(view, None, reporter=self.reporter)
            target.write = self.write
            self._targets[vm.name] = target
            fetched: dict = {}
            target.layout = discover(view, workdir=target.workdir, fetched=fetched)
            target._copies.update(fetched)
        return self._targets[vm.name]

    def each(self, work: Callable[[VmDisks, Any], VmReport]) -> Iterator[VmReport]:
        """`work(vm, target)` for every VM in order (refused ones reported as they were)."""
        total = len(self.vms)
        for n, vm in enumerate(self.vms):
            self.reporter.advance(n, total, vm.name)
            if vm.name in self.refused:
                yield self.refused[vm.name]
                continue
            started = time.monotonic()
            try:
                report = work(vm, self.target(vm))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001  reported for that VM; the others go on
                report = failed(vm, exc, started)
            yield report
        self.reporter.advance(total, total, "")


# --- the three fleet jobs --------------------------------------------------------------------------
def diagnose_each(fleet: Fleet, scenarios: Sequence[Any], options: Any) -> Iterator[VmReport]:
    from rescue.repairs.context import RepairContext
    from rescue.repairs.runner import diagnose

    def work(vm: VmDisks, target: DiskTarget) -> VmReport:
        started = time.monotonic()
        diag = diagnose(RepairContext(target, options, reporter=fleet.reporter), scenarios)
        status = Outcome.HEALTHY if diag.healthy else Outcome.FOUND
        return VmReport(vm, status, ExitCode.OK if diag.healthy else ExitCode.FINDINGS,
                        time.monotonic() - started, diagnosis=diag)

    return fleet.each(work)


@dataclass
class _Planned:
    vm: VmDisks
    before: Any
    plan: Any
    seconds: float


def fix_each(fleet: Fleet, scenario: Any, options: Any, *, dry_run: bool,
             confirm: Callable[[Sequence[VmReport]], None]) -> Iterator[VmReport]:
    """Plan every VM first (one diagnosis each), let `confirm` see every plan (one question for
    all), then apply each VM's plan through the safety engine and diagnose it again."""
    from rescue.repairs.context import RepairContext
    from rescue.repairs.runner import diagnose, plan_fix
    from rescue.safety.apply import execute

    planned: Dict[str, _Planned] = {}

    def plan_work(vm: VmDisks, target: DiskTarget) -> VmReport:
        from rescue.safety.ntfs_reset import NtfsOptions

        started = time.monotonic()
        # --reset-ntfs-log / --discard-hibernation apply to every VM (the engine reads them here).
        target.ntfs_options = NtfsOptions(reset_log=bool(options.get("reset_ntfs_log")),
                                          discard_hibernation=bool(options.get("discard_hibernation")))
        ctx = RepairContext(target, options, reporter=fleet.reporter)
        before = diagnose(ctx, (scenario,))
        if before.blockers:
            raise UnsafeStateError(f"Refusing to fix: {before.blockers[0].evidence}.",
                                   hint="Nothing was written on this VM's disks.")
        plan = plan_fix(ctx, scenario, before)
        planned[vm.name] = _Planned(vm, before, plan, time.monotonic() - started)
        status = Outcome.NOTHING_TO_DO if plan.empty else Outcome.PLANNED
        return VmReport(vm, status, ExitCode.OK, time.monotonic() - started, diagnosis=before, plan=plan)

    first = list(fleet.each(plan_work))
    if dry_run or not any(r.status is Outcome.PLANNED for r in first):
        yield from first
        return
    confirm(first)
    done = {r.vm.name: r for r in first if r.status is not Outcome.PLANNED}
    quiet = fleet.reporter.consented()       # consent was given once, for every plan

    def apply_work(vm: VmDisks, target: DiskTarget) -> VmReport:
        if vm.name in done:
            return done[vm.name]
        p = planned[vm.name]
        started = time.monotonic()
        target.reporter = quiet
        result = execute(target, p.plan, dry_run=False, reporter=quiet,
                         discard_hive_logs=bool(options.get("discard_hive_logs")))
        after = diagnose(RepairContext(target, options, reporter=quiet), (scenario,))
        seconds = p.seconds + time.monotonic() - started
        return VmReport(vm, Outcome.FIXED if result.applied else Outcome.NOTHING_TO_DO, ExitCode.OK, seconds,
                        diagnosis=p.before, after=after, plan=p.plan, result=result, backup_id=result.backup_id)

    yield from fleet.each(apply_work)


def undo_each(fleet: Fleet, *, backup_id: Optional[str] = None, dry_run: bool,
              reset_ntfs_log: bool = False, discard_hibernation: bool = False) -> Iterator[VmReport]:
    from rescue.safety.ntfs_reset import NtfsOptions
    from rescue.safety.undo import undo

    def work(vm: VmDisks, target: DiskTarget) -> VmReport:
        started = time.monotonic()
        # A volume Windows left unclean or hibernated is refused as in fix, unless the flag says
        # to reset its log / discard its hibernation (on every VM, as for fix --each).
        target.ntfs_options = NtfsOptions(reset_log=reset_ntfs_log, discard_hibernation=discard_hibernation)
        target.reporter = fleet.reporter.consented()
        result = undo(target, backup_id=backup_id, dry_run=dry_run)
        status = Outcome.PLANNED if dry_run else Outcome.UNDONE if result.applied else Outcome.NOTHING_TO_DO
        return VmReport(vm, status, ExitCode.OK, time.monotonic() - started, result=result,
                        backup_id=result.undo_backup_id)

    return fleet.each(work)


def default_jobs(n_vms: int) -> int:
    """One appliance per 2 cores, bounded by memory (an appliance under load takes ~1.5 GiB with
    its qemu) and by the number of VMs."""
    import os

    cores = os.cpu_count() or 1
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = 4 << 30
    return max(1, min(cores // 2, int(mem // (3 << 29)), n_vms))


def shares(vms: Sequence[VmDisks], jobs: int) -> List[List[VmDisks]]:
    """`jobs` shares of the VMs, round robin (neighbours in the list tend to be alike in size)."""
    out: List[List[VmDisks]] = [[] for _ in range(max(1, min(jobs, len(vms))))]
    for i, vm in enumerate(vms):
        out[i % len(out)].append(vm)
    return out
