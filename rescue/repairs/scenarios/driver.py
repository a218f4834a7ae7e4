"""A driver that stops the boot: 0xC00000BA, code-integrity failures, "after installing software".

Sources: Microsoft, "Azure VM fails to start with stop error 0xC00000BA" / "Troubleshoot boot
failures after installing software or drivers" (Azure VMs: disable the driver the screenshot or the
memory dump names by setting its service's Start to 4 in the offline SYSTEM hive, then boot), and
Azure/repair-script-library src/windows/win-fix-third-party-drivers.ps1 (third-party Boot/System
start drivers, Start=4 on the active control set only so Last Known Good stays an escape route,
a driver whose binary is missing treated the same way, boot-critical drivers never disabled).

  driver-image-missing   a boot- or system-start driver of the current control set whose image
                         file is not on the Windows volume (Windows stops with 0x7B / 0xC000035A,
                         or loops). Fix: Start=4 for the third-party ones; Windows' own drivers are
                         reported (their file must be restored, not the driver disabled).
  driver-disable         `--name NAME`: the driver the stop error names still loads. Fix: Start=4
                         (the previous value kept in the backup; `rescue undo` or
                         `rescue services enable` brings it back). Without --name it lists the
                         third-party boot/system-start drivers, never an error.
Drivers are classified third-party by name and place (rescue.registry.services), not by signature.
"""

from __future__ import annotations

from typing import List, Sequence

from rescue.repairs.base import Check, Option, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.repairs.services_source import file_present, system_services
from rescue.safety.plan import Step

DISABLED = 4


def _describe(s, ctx: RepairContext) -> str:
    present = file_present(ctx, s.file)
    where = s.file or s.image_path or "?"
    state = {True: "present", False: "missing", None: "presence unknown"}[present]
    who = "third-party" if not s.inbox else "Windows"
    return f"{s.name} ({s.start_text}, {s.group or 'no group'}, {who}, {where} {state})"


def early_drivers(ctx: RepairContext):
    """Boot- and system-start drivers of the current control set, in hive order."""
    src = system_services(ctx)
    return src, [s for s in src.services.values() if s.loads_early]


# --- driver-image-missing -------------------------------------------------------------------------------
def _missing(ctx: RepairContext):
    src, drivers = early_drivers(ctx)
    return src, [s for s in drivers if file_present(ctx, s.file) is False]


def _check_missing(ctx: RepairContext) -> Finding:
    from rescue.registry.services import BOOT_CRITICAL

    src, missing = _missing(ctx)
    title = "every boot/system-start driver's file exists"
    if missing:
        fixable = any(not s.inbox and s.name.lower() not in BOOT_CRITICAL for s in missing)
        return Finding("driver-image-missing", title, FOUND,
                       f"{src.where}: " + "; ".join(_describe(s, ctx) for s in missing), fixable=fixable)
    _src, drivers = early_drivers(ctx)
    known = [s for s in drivers if file_present(ctx, s.file) is not None]
    if drivers and not known:
        return Finding("driver-image-missing", title, UNKNOWN,
                       f"{src.where}: no Windows volume to look for the driver files on")
    return Finding("driver-image-missing", title, OK,
                   f"{src.where}: the files of all {len(known)} boot/system-start drivers exist")


def _disable_step(ctx: RepairContext, services: Sequence, action: str, title: str, reason: str) -> Step:
    from rescue.hive import Hive
    from rescue.registry.service_edits import set_start

    src = system_services(ctx)
    hive = Hive(src.path)
    try:
        changes = tuple(c for s in services if (c := set_start(hive, src.ref, src.control_set.key, s.name,
                                                                DISABLED, reason.format(name=s.name))) is not None)
    finally:
        hive.close()
    notes = tuple(f"{s.name} was Start {s.start_text}; the backup keeps it (rescue undo)" for s in services)
    filters = [f"{f.class_name} {f.value}" for f in src.filters for s in services
               if s.name.lower() in (d.lower() for d in f.drivers)]
    if filters:
        notes += (f"also named in {', '.join(filters)}: run `rescue fix inaccessible-boot-device` too, or the "
                  "disk/volume stack will not start without it",)
    return Step(action, title, changes, notes=notes)


def _plan_missing(ctx: RepairContext, finding: Finding):
    from rescue.registry.services import BOOT_CRITICAL

    src, missing = _missing(ctx)
    if not missing:
        return Step("driver.missing", "Drivers whose file is missing", skipped="every driver's file exists")
    steps: List[Step] = []
    third = [s for s in missing if not s.inbox and s.name.lower() not in BOOT_CRITICAL]
    if third:
        steps.append(_disable_step(ctx, third, "driver.missing", f"Disable drivers whose file is missing "
                                   f"({src.control_set.key})", "{name}'s image file is missing"))
    own = [s for s in missing if s not in third]
    if own:
        steps.append(Step("driver.missing-windows", "Windows drivers whose file is missing",
                          skipped=f"{', '.join(s.file or s.name for s in own)}: Windows' own driver(s), not disabled: "
                                  "copy the file from a VM of the same Windows build and update level, or run "
                                  "`sfc /scannow /offbootdir=X:\\ /offwindir=X:\\Windows` from a repair VM"))
    return tuple(steps)


# --- driver-disable ---------------------------------------------------------------------------------------
def _check_disable(ctx: RepairContext) -> Finding:
    title = "the driver named with --name does not load"
    name = ctx.options.get("driver_name")
    src, drivers = early_drivers(ctx)
    if not name:
        third = [s for s in drivers if not s.inbox]
        if not third:
            return Finding("driver-disable", title, OK,
                           f"{src.where}: no third-party boot- or system-start drivers")
        return Finding("driver-disable", title, OK,
                       f"{src.where}: {len(third)} third-party boot/system-start driver(s): "
                       + "; ".join(_describe(s, ctx) for s in third)
                       + "; disable the one the stop error names with `rescue fix driver DISK --name NAME`")
    s = src.service(name)
    if s is None:
        return Finding("driver-disable", title, UNKNOWN, f"{src.where}: no service named {name}")
    if s.start == DISABLED:
        return Finding("driver-disable", title, OK, f"{src.where}: {s.name} is already disabled (Start 4)")
    return Finding("driver-disable", title, FOUND, f"{src.where}: {_describe(s, ctx)}", fixable=True,
                   fix_option=f"--name {s.name}")


def _plan_disable(ctx: RepairContext, finding: Finding):
    from rescue.registry.services import BOOT_CRITICAL

    name = ctx.options.get("driver_name")
    if not name:
        return None
    src = system_services(ctx)
    s = src.service(name)
    if s is None or s.start == DISABLED:
        return Step("driver.disable", f"Disable {name}", skipped=finding.evidence.split(": ", 1)[-1])
    if s.name.lower() in BOOT_CRITICAL:
        return Step("driver.disable", f"Disable {s.name}",
                    skipped=f"{s.name} is on the path to the disk or the network: disabling it would stop "
                            "the boot (0x7B) or cut the VM off; restore its file or roll back the update instead")
    return _disable_step(ctx, (s,), "driver.disable", f"Disable {s.name} ({src.control_set.key})",
                         "asked to disable {name} (--name)")


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return (
        "Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore` when you used "
        "`az vm repair create`).",
        "Start the VM; once it boots, update or uninstall the software that owns the disabled driver, then "
        "enable it again if it is still needed (`rescue services enable DISK NAME` offline, or sc.exe config).",
        "The other control set (Last Known Good) still loads the driver: it stays an escape route.",
    )


SCENARIO = register(Scenario(
    name="driver",
    aliases=("0xC00000BA", "code-integrity", "third-party-driver"),
    summary="A boot/system-start driver stops the boot: disable it (Start=4); drivers whose file is missing",
    title="Disable the driver that stops the boot",
    source="Microsoft: Azure VM stop error 0xC00000BA / boot failure after installing software; "
           "repair-script-library win-fix-third-party-drivers.ps1",
    options=(
        Option("driver_name", "--name", "The driver (service name) to disable, as the stop error or the dump names it.",
               metavar="NAME", diagnose=False),
    ),
    checks=(
        Check("driver-image-missing", "every boot/system-start driver's file exists", _check_missing, _plan_missing),
        Check("driver-disable", "the driver named with --name does not load", _check_disable, _plan_disable,
              options=("driver_name",)),
    ),
    next_steps=next_steps,
))
