"""Validation cases of `repair-loop` (Automatic Repair / Startup Repair loop)."""

from __future__ import annotations

import pytest

from bcd_cases import bcd
from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK
from rescue.samples.bcd_store import LOADER_GUID

LD = f"Objects\\{LOADER_GUID}"
S = "repair-loop"
FIX = (f"bcd.ignore-failures: set {LD}\\Elements\\250000e0\\Element = '0100000000000000' (REG_BINARY)",
       f"bcd.ignore-failures: set {LD}\\Elements\\16000009\\Element = '00' (REG_BINARY)")
LOOP = ("after a failed boot or shutdown the boot manager starts Automatic Repair or the recovery menu, which nobody "
        "can answer on a VM without a console")

CASES = [
    Case("repair-loop", "recoveryenabled Yes, no bootstatuspolicy", bcd(S, ignore_failures=False), FOUND,
         f"{{default}} (Windows Server): bootstatuspolicy not set, recoveryenabled Yes: {LOOP}", plan=FIX, fixable=True),
    Case("repair-loop", "Gen1, as bcdboot writes it", bcd(S, "gen1", azure_prepared=False), FOUND,
         f"{{default}} (Windows Server): bootstatuspolicy not set, recoveryenabled not set: {LOOP}", plan=FIX,
         fixable=True),
    Case("repair-loop", "Azure-prepared", bcd(S), OK,
         "{default} (Windows Server): bootstatuspolicy IgnoreAllFailures, recoveryenabled No",
         plan=("bcd.ignore-failures skipped: bootstatuspolicy is already IgnoreAllFailures and recoveryenabled No",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
