"""Validation cases of `safe-mode` (VM stuck in Safe Mode): safeboot on the default loader."""

from __future__ import annotations

import pytest

from bcd_cases import bcd
from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK
from rescue.samples.bcd_store import LOADER_GUID

LD = f"Objects\\{LOADER_GUID}"
S = "safe-mode"


def _deleted(*codes: str) -> tuple:
    return tuple(f"bcd.safeboot: delete key {LD}\\Elements\\{c} and everything below it" for c in codes)


CASES = [
    Case("safe-mode", "Gen2, safeboot Network + alternate shell",
         bcd(S, safeboot=1, safeboot_alternateshell=True), FOUND,
         "{default} (Windows Server): safeboot Network, safebootalternateshell Yes: Windows starts in Safe Mode with "
         "Networking (Command Prompt as the shell), where Remote Desktop and the Azure guest agent do not run",
         plan=_deleted("25000080", "26000081"), fixable=True),
    Case("safe-mode", "Gen1, safeboot Minimal", bcd(S, "gen1", safeboot=0), FOUND,
         "{default} (Windows Server): safeboot Minimal: Windows starts in Safe Mode, where Remote Desktop and the "
         "Azure guest agent do not run", plan=_deleted("25000080"), fixable=True),
    Case("safe-mode", "safeboot DsRepair", bcd(S, safeboot=2), FOUND,
         "{default} (Windows Server): safeboot DsRepair: Windows starts in Directory Services Repair mode, where "
         "Remote Desktop and the Azure guest agent do not run", plan=_deleted("25000080"), fixable=True),
    Case("safe-mode", "healthy", bcd(S), OK, "{default} (Windows Server) has no safeboot: Windows starts normally",
         plan=("bcd.safeboot skipped: no safeboot setting",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
