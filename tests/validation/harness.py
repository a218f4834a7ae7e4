"""Validation cases for scenario checks (the regipy way): for each registered check, a sample with
the problem and one without, and the exact finding and exact planned change expected of each.

A scenario's cases live in tests/validation/test_<scenario module>.py as `CASES`; every module's
cases run through `run_case`, and tests/validation/test_meta.py fails when a registered check has no
FOUND case or no OK case. No appliance: the sources a check reads are built on the host (hives
with hivex through rescue.samples, space scans as records) and given to the context directly.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from rescue.repairs import sources
from rescue.repairs.base import OptionValues, get, scenarios
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import Status
from rescue.safety.plan import Step
from rescue.target import HostFileTarget


@dataclass(frozen=True)
class Case:
    check: str                                  # the check id
    label: str                                  # what the sample is, e.g. "badmemorylist of 3 pages"
    build: Callable[[Path], RepairContext]      # makes the sample in a temp folder, returns the context
    status: Status
    evidence: str                               # exact; "{tmp}" stands for the case's temp folder
    plan: Optional[Tuple[str, ...]] = ()        # exact plan lines (plan_lines), None: the check plans nothing
    fixable: Optional[bool] = None              # checked when given

    @property
    def id(self) -> str:
        return f"{self.check}[{self.label}]"


def plan_lines(steps: Sequence[Step]) -> Tuple[str, ...]:
    """One line per change ("ACTION: what"), or per skipped step ("ACTION skipped: why")."""
    out = []
    for step in steps:
        if not step.changes:
            out.append(f"{step.action} skipped: {step.skipped}")
        for c in step.changes:
            out.append(f"{step.action}: {c.describe()}")
    return tuple(out)


def context(folder: Path, *, scenario: str, options: Optional[Dict[str, Any]] = None,
            system: Optional[Path] = None, software: Optional[Path] = None, bcd: Optional[Path] = None,
            hives: Optional[Dict[str, Path]] = None, layout: Any = None) -> RepairContext:
    """A context on host files: its target is the first file given; each hive and the BCD are
    given to the context as the sources the checks read."""
    s = get(scenario)
    values = {o.name: o.default for o in s.options}
    values.update({"discard_hive_logs": False, "expand": False})
    values.update(options or {})
    all_hives = dict(hives or {})
    if system is not None:
        all_hives["SYSTEM"] = system
    if software is not None:
        all_hives["SOFTWARE"] = software
    files = [*all_hives.values(), *([bcd] if bcd is not None else [])]
    if not files:
        anchor = folder / "anchor"
        from rescue.samples.hives import build_system_hive

        files = [build_system_hive(anchor)]
    target = HostFileTarget(str(files[0]))
    if layout is not None:
        target.layout = layout          # the disk's layout record, as discovery would give it
    ctx = RepairContext(target, OptionValues(values))
    for name, path in all_hives.items():
        sources.preset_hive(ctx, name, path)
    if bcd is not None:
        sources.preset_bcd(ctx, bcd)
    return ctx


def windows_layout(*, c_free: int, data_free: Optional[int] = None):
    """A layout record of one Windows disk (C: on partition 3) and, with `data_free`, a data disk
    E: (for checks that compare volumes, such as the dump space)."""
    from rescue.layout import Volume, WindowsInstall, WindowsLayout

    win = WindowsInstall(0, 3, "Windows Server 2019 Datacenter", "10.0", 17763, 1)
    vols = [Volume(0, 3, "ntfs", "Windows", 127 << 30, c_free, "C:", "windows", "ok")]
    paths = ["os.vhd"]
    if data_free is not None:
        vols.append(Volume(1, 1, "ntfs", "Data", 512 << 30, data_free, "E:", "data", "ok"))
        paths.append("data.vhd")
    return WindowsLayout(tuple(paths), ("vhd",) * len(paths), ("gpt",) * len(paths), "gen2", tuple(vols),
                         (win,), win, None)


def run_case(case: Case, folder: Path) -> None:
    from rescue.repairs.findings import Diagnosis
    from rescue.repairs.runner import run_checks

    scenario, check = next((s, c) for s in scenarios() for c in s.checks if c.id == case.check)
    ctx = case.build(folder)
    try:
        # As the runner plans: from the diagnosis of every check of the scenario.
        ctx.diagnosis = Diagnosis(ctx.disks, tuple(run_checks(ctx, scenario)))
        finding = check.run(ctx)
        evidence = case.evidence.replace("{tmp}", str(folder))
        assert (finding.status, finding.evidence) == (case.status, evidence), \
            f"{case.id}: got {finding.status.value}: {finding.evidence!r}"
        if case.fixable is not None:
            assert finding.fixable == case.fixable, f"{case.id}: fixable {finding.fixable}"
        lines = plan_lines(check.planned(ctx, finding)) if check.plan is not None else None
        if case.plan is None:
            assert not lines, f"{case.id}: expected no plan, got {lines}"
        else:
            assert lines == case.plan, f"{case.id}: plan {lines}"
    finally:
        ctx.target.close()


def all_cases() -> Tuple[Case, ...]:
    """Every CASES list of the test_*.py modules in this folder."""
    here = Path(__file__).parent
    out = []
    for info in pkgutil.iter_modules([str(here)]):
        if info.name.startswith("test_") and info.name != "test_meta":
            module = importlib.import_module(info.name)
            out.extend(getattr(module, "CASES", ()))
    return tuple(out)
