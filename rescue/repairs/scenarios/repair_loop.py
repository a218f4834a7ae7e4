"""A VM in an Automatic Repair / Startup Repair loop ("Preparing Automatic Repair", "Windows
Error Recovery"): the boot manager starts the recovery environment after a failed boot.

Sources: Microsoft, "Windows VM shows 'Preparing Automatic Repair' / Startup Repair loop" and
"Prepare a Windows VHD to upload to Azure" (`bcdedit /set {default} bootstatuspolicy
IgnoreAllFailures`, `bcdedit /set {default} recoveryenabled Off`); Azure repair-script-library
`win-ignoreAllFailures.ps1`. On Azure nobody can answer the recovery menu, so a VM whose last boot
or shutdown failed loops through Automatic Repair instead of trying Windows again (and the loop
hides the real error).

Check `repair-loop`: the default loader's bootstatuspolicy (0x250000E0) is IgnoreAllFailures and
recoveryenabled (0x16000009) is No, as Azure's image preparation sets them. Fix: set both.
"""

from __future__ import annotations

from rescue.bcd import constants as C
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.scenarios import _bcd
from rescue.safety.plan import Step

TITLE = "the default loader boots normally after a failure (bootstatuspolicy, recoveryenabled)"


def _check(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import label
    from rescue.bcd.edit import BOOTSTATUSPOLICY, IGNORE_ALL_FAILURES, RECOVERYENABLED

    store = _bcd.store(ctx)
    loader = _bcd.default_loader(ctx)
    policy, recovery = loader.value(BOOTSTATUSPOLICY), loader.value(RECOVERYENABLED)
    seen = (f"{label(store, loader)}: bootstatuspolicy "
            f"{_bcd.shown(policy, C.element_enums(BOOTSTATUSPOLICY, loader.type))}, recoveryenabled {_bcd.shown(recovery)}")
    if policy == IGNORE_ALL_FAILURES and recovery is False:
        return Finding("repair-loop", TITLE, OK, seen)
    return Finding("repair-loop", TITLE, FOUND,
                   f"{seen}: after a failed boot or shutdown the boot manager starts Automatic Repair or the "
                   "recovery menu, which nobody can answer on a VM without a console", fixable=True)


def _plan(ctx: RepairContext, finding: Finding):
    from rescue.bcd.edit import plan_ignore_failures

    if finding.status != FOUND:
        return Step("bcd.ignore-failures", "Boot status policy and recovery",
                    skipped="bootstatuspolicy is already IgnoreAllFailures and recoveryenabled No")
    src = sources.bcd(ctx)
    return plan_ignore_failures(src.store, src.ref, _bcd.default_loader(ctx))


SCENARIO = register(Scenario(
    name="repair-loop",
    aliases=("automatic-repair", "startup-repair", "preparing-automatic-repair"),
    summary="Automatic Repair / Startup Repair loop: bootstatuspolicy IgnoreAllFailures, recoveryenabled No",
    title="Stop the Automatic Repair loop (bootstatuspolicy IgnoreAllFailures, recoveryenabled No)",
    source="Microsoft: Prepare a Windows VHD to upload to Azure (boot status policy); Azure "
           "repair-script-library win-ignoreAllFailures",
    checks=(Check("repair-loop", TITLE, _check, _plan),),
    next_steps=_bcd.next_steps,
))
