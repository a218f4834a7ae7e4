"""A VM stuck booting into Safe Mode (no Remote Desktop): safeboot set on the default loader.

Sources: Microsoft, "Cannot connect to a VM because the VM boots into Safe Mode" (Azure virtual
machines): with a repair VM, `bcdedit /store F:\\boot\\bcd /deletevalue {default} safeboot` (and
`safebootalternateshell` when msconfig's "Alternate shell" was ticked); Azure repair-script-library
`win-toggle-safe-mode.ps1` (`/deletevalue {default} safeboot`). Safe Mode starts a minimal set of
drivers and services: Remote Desktop and the Azure guest agent do not run, so the VM is unreachable
while it runs fine.

Check `safe-mode`: the default loader has `safeboot` (0x25000080: Minimal, Network, DsRepair) or
`safebootalternateshell` (0x26000081) Yes. Fix: delete both elements, as bcdedit /deletevalue does.
The reverse, for troubleshooting: `rescue bcd set DISK {default} safeboot minimal|network|dsrepair`.
"""

from __future__ import annotations

from rescue.bcd import constants as C
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.scenarios import _bcd
from rescue.safety.plan import Step

TITLE = "the default loader does not start Safe Mode (safeboot)"
MODES = {0: "Safe Mode", 1: "Safe Mode with Networking", 2: "Directory Services Repair mode"}


def _check(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import label
    from rescue.bcd.edit import SAFEBOOT, SAFEBOOTALTERNATESHELL

    store = _bcd.store(ctx)
    loader = _bcd.default_loader(ctx)
    sb, alt = loader.element(SAFEBOOT), loader.element(SAFEBOOTALTERNATESHELL)
    name = label(store, loader)
    if sb is None and (alt is None or alt.value is False):
        return Finding("safe-mode", TITLE, OK, f"{name} has no safeboot: Windows starts normally")
    mode_value = sb.value if sb is not None else None
    parts = [f"safeboot {_bcd.shown(mode_value, C.element_enums(SAFEBOOT, loader.type)) if sb is not None else 'not set'}"]
    if alt is not None:
        parts.append(f"safebootalternateshell {_bcd.shown(alt.value)}")
    if sb is None:
        effect = "safebootalternateshell alone has no effect at the next boot, but Windows keeps it"
    else:
        mode = MODES.get(mode_value, "Safe Mode") if isinstance(mode_value, int) else "Safe Mode"
        shell = " (Command Prompt as the shell)" if alt is not None and alt.value else ""
        effect = f"Windows starts in {mode}{shell}, where Remote Desktop and the Azure guest agent do not run"
    return Finding("safe-mode", TITLE, FOUND, f"{name}: {', '.join(parts)}: {effect}", fixable=True)


def _plan(ctx: RepairContext, finding: Finding):
    from rescue.bcd.edit import plan_clear_safeboot

    if finding.status != FOUND:
        return Step("bcd.safeboot", "Safe Mode", skipped="no safeboot setting")
    src = sources.bcd(ctx)
    return plan_clear_safeboot(src.store, src.ref, _bcd.default_loader(ctx))


SCENARIO = register(Scenario(
    name="safe-mode",
    aliases=("safeboot", "safemode"),
    summary="VM stuck booting into Safe Mode, no RDP: delete safeboot from the default loader",
    title="Leave Safe Mode (delete safeboot from the default loader)",
    source="Microsoft: Cannot connect to a VM because the VM boots into Safe Mode (Azure VMs)",
    checks=(Check("safe-mode", TITLE, _check, _plan),),
    next_steps=_bcd.next_steps,
))
