"""One runner for every scenario: diagnose → plan → (dry run stops) → safety engine (backup once,
apply, read back) → diagnose again → staged commit (`--expand`).

The triage (`rescue diagnose`) runs the checks of every registered scenario against one
`RepairContext`, so the whole disk is looked at in one appliance launch and each hive and the BCD
are read once. Nothing here prints: progress, the plan and questions go through the context's
reporter, and the results come back typed (`Diagnosis`, `FixOutcome`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Tuple

from rescue.errors import RescueError, UnsafeStateError, UsageError
from rescue.repairs.base import OptionValues, Scenario
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, UNKNOWN, Diagnosis, Finding
from rescue.repairs.sources import SHOWN_SOURCES, SourceError, space_scan
from rescue.safety.plan import Plan, Prelude, Step

if TYPE_CHECKING:
    from rescue.target import Target

# Volume states that make every write unsafe (rescue.layout.Volume.state), with the finding each
# becomes on the volumes a fix touches (the Windows root and the BCD's volume). BitLocker blocks
# every fix; an NTFS volume Windows did not dismount is fixable with the flag its state needs
# (rescue.safety.ntfs_reset), which the fixing command then carries.
UNSAFE_VOLUME_STATES = (("bitlocker", "unsafe-bitlocker", "volume not BitLocker-locked"),
                        ("hibernated", "unsafe-hibernated", "volume not hibernated (Fast Startup)"),
                        ("fast-startup", "unsafe-hibernated", "volume not hibernated (Fast Startup)"),
                        ("unclean", "unsafe-unclean-ntfs", "NTFS shut down cleanly"))


@dataclass(frozen=True)
class DiagnosisView:
    """A diagnosis with the heading a person sees it under ("Before", "After")."""

    diagnosis: Diagnosis
    title: str


def volume_blockers(ctx: RepairContext) -> List[Finding]:
    """States that block any write, on the volumes a fix would touch (Windows root, BCD volume)."""
    layout = ctx.layout
    if layout is None or layout.root is None:
        return []
    keys = {(layout.root.disk, layout.root.partition)}
    if layout.bcd is not None:
        keys.add((layout.bcd.disk, layout.bcd.partition))
    out = []
    for v in layout.volumes:
        if (v.disk, v.partition) not in keys:
            continue
        where = f"{layout.disk_paths[v.disk]} partition {v.partition}"
        for state, fid, title in UNSAFE_VOLUME_STATES:
            if v.state != state:
                continue
            ev = getattr(v, "ntfs", None)
            if ev is not None and ev.state.needs_reset:
                from rescue.safety.ntfs_reset import flag_for, flag_note

                out.append(Finding(fid, title, FOUND, f"{where}: {v.note or state}", fixable=True,
                                   fix_option=flag_for(ev), fix_note=flag_note(ev)))
            else:
                out.append(Finding(fid, title, FOUND, f"{where}: {v.note or state}", blocker=True))
    return out


def run_checks(ctx: RepairContext, scenario: Scenario) -> List[Finding]:
    """Every check of `scenario`, in order. A source that cannot be read becomes one finding for
    the source (shown once per command, however many checks needed it); any other error of a
    check is that check's "cannot tell"."""
    shown = ctx.memo(SHOWN_SOURCES, set)
    out: List[Finding] = []
    for check in scenario.checks:
        try:
            finding = check.run(ctx)
        except UsageError:
            raise                       # the command line is wrong (a bad --pattern): exit 2, not "cannot tell"
        except SourceError as exc:
            if exc.finding.id in shown:
                continue
            shown.add(exc.finding.id)
            finding = exc.finding
        except RescueError as exc:
            finding = Finding(check.id, check.title, UNKNOWN, str(exc))
        out.append(finding.of(scenario.name))
    return out


def diagnose(ctx: RepairContext, scenarios: Sequence[Scenario]) -> Diagnosis:
    """Read-only: the disk-wide blockers, then every check of `scenarios` (one launch, shared reads)."""
    if ctx.on_disk:
        ctx.target.windows_root()
    findings: List[Finding] = volume_blockers(ctx)
    for scenario in scenarios:
        findings += run_checks(ctx, scenario)
    return Diagnosis(disks=ctx.disks, findings=tuple(findings), scenarios=tuple(s.name for s in scenarios))


def plan_fix(ctx: RepairContext, scenario: Scenario, diagnosis: Diagnosis) -> Plan:
    """One plan: the `--expand` prelude when asked, then each check's steps in check order (a
    check that has nothing to change says why in a skipped step)."""
    steps: List[Step] = []
    prelude = None
    if scenario.can_expand and ctx.options.get("expand"):
        prelude, skipped = plan_expand(ctx)
        if skipped is not None:
            steps.append(skipped)
    ctx.diagnosis = diagnosis
    ctx.prelude = prelude
    by_id = {f.id: f for f in diagnosis.findings}
    for check in scenario.checks:
        finding = by_id.get(check.id)
        if finding is None:         # its source could not be read: nothing to plan from
            continue
        steps.extend(check.planned(ctx, finding))
    return Plan(title=scenario.title, steps=tuple(steps), prelude=prelude)


def plan_expand(ctx: RepairContext) -> Tuple[Optional[Prelude], Optional[Step]]:
    """(Prelude, None) growing the Windows partition and NTFS into the staged disk's new size, or
    (None, skipped Step) when the partition already fills it. Refusals (a recovery partition behind
    C:, an MBR disk over 2 TiB, ...) raise: the operator asked for --expand, so the whole fix stops
    before writing anything."""
    from rescue.space.expand import apply_in_session, human, make_plan

    session, layout = ctx.target.disk_set()
    image = session.images[0]
    if not image.staging:
        raise RuntimeError("--expand needs disk 0 opened through a staging overlay")   # caller bug
    from rescue.safety.ntfs_reset import reset_allowed

    root = layout.require_root()
    plan = make_plan(session, layout, user_path=image.path, format_label=image.format_label,
                     old_disk_size=image.virtual_size,
                     log_reset=reset_allowed(ctx.target, root.disk, root.partition))
    if plan.nothing_to_do:
        return None, Step("space.expand", "Grow the OS disk",
                          skipped=f"the Windows partition already fills the {human(plan.new_disk_size)} disk")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    vol = plan.letter or "the Windows partition"
    title = (f"Grow {image.path} to {human(plan.new_disk_size)} and {vol} with it" if plan.grows_image
             else f"Grow {vol} to fill {image.path} ({human(plan.new_disk_size)})")
    return Prelude("space.expand", title, tuple(plan.steps()),
                   run=lambda: apply_in_session(session, plan, stamp=stamp),
                   data={"expand": plan.to_json()}), None


@contextlib.contextmanager
def staged_images(disks: Sequence[str], expand: Optional[str], *, allow_large: bool, dry_run: bool,
                  fmt: Optional[str]) -> Iterator[Tuple[Optional[list], Any]]:
    """(images for open_disks, Staging or None). With --expand, disk 0 is opened through a qcow2
    overlay already SIZE big, so the whole fix (grow, backups, edits) runs in one launch and reaches
    the image only when `Staging.commit()` is called after it succeeded (rescue.space.staging)."""
    if not expand:
        yield None, None
        return
    from rescue.disk.formats import check_not_in_use, check_writable, detect
    from rescue.space.expand import host_checks, target_size
    from rescue.space.staging import staged

    images = [detect(p, fmt) for p in disks]
    first = images[0]
    new_size = first.virtual_size if expand.strip().lower() == "fill" else \
        target_size(first.virtual_size, size=expand, add=None)
    host_checks(first, new_size, allow_large=allow_large)
    if not dry_run:
        check_writable(first)
        check_not_in_use(first)        # reaps an appliance a killed rescue run left holding the lock
    with staged(first, new_size, dry_run=dry_run) as stage:
        yield [stage.working_image, *images[1:]], stage


def diagnosis_json(diag: Diagnosis, scenarios: Sequence[Scenario]) -> dict:
    """A diagnosis for machines (README "rescue diagnose --json"), with one entry per scenario
    checked: what it found and the command that fixes it."""
    from rescue.repairs.findings import fix_command

    doc = diag.to_json()
    doc["scenarios"] = []
    for s in scenarios:
        mine = diag.of_scenario(s.name)
        doc["scenarios"].append({"name": s.name, "summary": s.summary,
                                 "found": [f.id for f in mine if f.status == FOUND],
                                 "fix_command": None if diag.blockers else fix_command(s.name, diag.disks, mine,
                                                                                     diag.wide_options())})
    return doc


@dataclass(frozen=True)
class FixOutcome:
    """Everything one `rescue fix SCENARIO` run did, for the CLI to render (or put in JSON)."""

    scenario: Scenario
    before: Diagnosis
    plan: Plan
    result: Any                           # rescue.safety.apply.ApplyResult
    after: Optional[Diagnosis] = None     # None for a dry run or when nothing was to do
    commit: Any = None                    # rescue.space.staging commit result (with --expand)
    next_steps: Tuple[str, ...] = ()

    def to_json(self) -> dict:
        scenarios = (self.scenario,)
        plan_json = getattr(self.result, "plan_json", None)
        return {"scenario": self.scenario.name, "before": diagnosis_json(self.before, scenarios),
                "plan": plan_json(self.plan) if plan_json else self.plan.to_json(),
                "result": self.result.to_json(),
                "after": diagnosis_json(self.after, scenarios) if self.after else None,
                "backup": self.result.backup_id, "commit": self.commit.to_json() if self.commit else None,
                "next_steps": list(self.next_steps)}


def run_fix(target: Target, scenario: Scenario, options: OptionValues, *, dry_run: bool,
            stage: Any = None) -> FixOutcome:
    """The fix of one scenario on one opened disk set (or hive file). With `stage` (--expand), the
    session is closed and the staged overlay committed into the image once everything checked out."""
    from rescue.safety.apply import execute

    reporter = target.reporter
    ctx = RepairContext(target, options, reporter=reporter)
    ctx.fixing = scenario.name
    before = diagnose(ctx, (scenario,))
    if before.blockers:
        reporter.show(target, DiagnosisView(before, f"Before: {scenario.title}"))
        first = before.blockers[0]
        raise UnsafeStateError(f"Refusing to fix: {first.evidence}.",
                               hint="Nothing was written. Clear that state first (see the diagnosis).")
    reporter.show(target, DiagnosisView(before, "Before"))
    plan = plan_fix(ctx, scenario, before)
    result = execute(target, plan, dry_run=dry_run, reporter=reporter,
                     discard_hive_logs=bool(options.get("discard_hive_logs")))
    if dry_run or result.nothing_to_do:
        return FixOutcome(scenario, before, plan, result)
    prior = {}
    if ctx.on_disk:
        from rescue.layout_scan import refresh_usage

        # The engine dropped the host copies of every file it changed (keeping the ones it read
        # back as identical to what it wrote); nothing else changed, so the rest stay valid.
        target.layout = refresh_usage(*target.disk_set())
        # The cleanup categories were walked earlier in this launch; only the files the engine
        # deleted (and read back as gone) changed there.
        scan = space_scan(ctx)
        if scan is not None:
            win = target.windows_root()
            prior["scan"] = (scan, {f.path for f in result.files if (f.disk, f.partition) == (win.disk, win.partition)})
    after = diagnose(RepairContext(target, options, reporter=reporter, prior=prior), (scenario,))
    grown = result.prelude is not None
    steps = tuple(scenario.next_steps(ctx, grown))
    committed = None
    if stage is not None:
        target.close()
        target.disk_set()[0].close()
        # Only now, with the launch over and everything verified in the overlay, does the image
        # grow and receive the changes (then read back).
        committed = stage.commit()
    return FixOutcome(scenario, before, plan, result, after, committed, steps)
