"""Stop error 0x7B INACCESSIBLE_BOOT_DEVICE: the registry causes that keep Windows from its disk.

Sources: Microsoft, "Troubleshoot Windows stop error 0x0000007B INACCESSIBLE_BOOT_DEVICE" (Azure
VMs), and Azure/repair-script-library src/windows/win-fix-inaccessible-boot-device.ps1 (causes 1-3)
with src/windows/win-enable-nvme-boot-driver.ps1 (stornvme boot start, so the VM can be resized to
an NVMe size). All three checks read the control set Windows boots (Select\\Current) and say which:

  boot-driver-start          the boot storage stack (acpi, pci, vdrvroot, vmbus, storvsc, stornvme,
                             disk, partmgr, volmgr, volsnap, mountmgr) has a service key each, with
                             a Start value Windows accepts for it (BOOT_STACK: the values Windows
                             ships, and the script's allowed values). Fix: Start set back to the
                             shipped value. A missing key is reported, not rebuilt: its other values
                             are image specific.
  boot-driver-startoverride  a StartOverride subkey on one of those drivers that holds a value the
                             driver must not start with (3 demand, 4 disabled): Windows 8+ obeys it
                             over Start. Fix: the StartOverride subkey is deleted.
  storage-class-filters      UpperFilters/LowerFilters of the disk drive, storage volume, storage
                             controller, volume shadow copy and IDE controller classes naming a
                             driver with no service key or whose .sys is missing (what an uninstalled
                             backup or encryption agent leaves). Fix: those names removed, the rest
                             kept in order; the value deleted when nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.services_source import STORAGE_CLASSES, file_present, system_services
from rescue.safety.plan import Step


@dataclass(frozen=True)
class BootDriver:
    name: str
    start: int                      # what Windows ships (and the fix writes)
    allowed: Tuple[int, ...]        # Start values a healthy image may carry


# Windows 10 / Server 2019 ship every one boot start (realdata SYSTEM_B); the allowed sets are the
# repair script's. stornvme: boot start, as Microsoft's NVMe-readiness script sets it.
BOOT_STACK = (
    BootDriver("acpi", 0, (0,)), BootDriver("pci", 0, (0,)), BootDriver("vdrvroot", 0, (0, 1, 3)),
    BootDriver("vmbus", 0, (0,)), BootDriver("storvsc", 0, (0,)), BootDriver("stornvme", 0, (0,)),
    BootDriver("disk", 0, (0,)), BootDriver("partmgr", 0, (0, 1)), BootDriver("volmgr", 0, (0,)),
    BootDriver("volsnap", 0, (0, 1, 3)), BootDriver("mountmgr", 0, (0,)),
)
_NAMES = {d.name: d for d in BOOT_STACK}


def _start(n) -> str:
    from rescue.registry.services import start_name

    return f"{n} ({start_name(n)})" if n is not None else "absent"


# --- boot-driver-start -------------------------------------------------------------------------------
def _start_problems(ctx: RepairContext):
    src = system_services(ctx)
    wrong, missing = [], []
    for d in BOOT_STACK:
        s = src.service(d.name)
        if s is None:
            missing.append(d)
        elif s.start not in d.allowed:
            wrong.append((d, s))
    return src, wrong, missing


def _check_start(ctx: RepairContext) -> Finding:
    src, wrong, missing = _start_problems(ctx)
    parts = [f"{s.name} Start {_start(s.start)}, must be {_start(d.start)}" for d, s in wrong]
    parts += [f"no Services\\{d.name} key (restore it from a VM of the same Windows build; rescue does not "
              "rebuild it)" for d in missing]
    title = "boot storage drivers start at boot"
    if parts:
        return Finding("boot-driver-start", title, FOUND, f"{src.where}: " + "; ".join(parts), fixable=bool(wrong))
    return Finding("boot-driver-start", title, OK,
                   f"{src.where}: {', '.join(d.name for d in BOOT_STACK)} start at boot")


def _plan_start(ctx: RepairContext, finding: Finding):
    from rescue.hive import Hive
    from rescue.registry.service_edits import set_start

    src, wrong, _missing = _start_problems(ctx)
    if not wrong:
        return Step("boot.driver-start", "Boot storage drivers start at boot",
                    skipped="every boot storage driver present already has a boot Start value")
    hive = Hive(src.path)
    try:
        changes = tuple(c for d, s in wrong if (c := set_start(
            hive, src.ref, src.control_set.key, s.name, d.start,
            f"{s.name} must load at boot for Windows to reach its disk (0x7B)")) is not None)
    finally:
        hive.close()
    return Step("boot.driver-start", f"Boot storage drivers start at boot ({src.control_set.key})", changes)


# --- boot-driver-startoverride -----------------------------------------------------------------------
def _overrides(ctx: RepairContext):
    src = system_services(ctx)
    out = []
    for d in BOOT_STACK:
        s = src.service(d.name)
        if s is None or not s.start_override:
            continue
        bad = [(k, v) for k, v in s.start_override if v not in d.allowed]
        if bad:
            out.append((s, bad))
    return src, out


def _check_override(ctx: RepairContext) -> Finding:
    src, found = _overrides(ctx)
    title = "no StartOverride keeps a boot storage driver from loading"
    if found:
        text = "; ".join(f"{s.name}\\StartOverride " + ", ".join(f"{k}={_start(v)}" for k, v in bad)
                         for s, bad in found)
        return Finding("boot-driver-startoverride", title, FOUND, f"{src.where}: {text} (overrides Start 0)",
                       fixable=True)
    return Finding("boot-driver-startoverride", title, OK, f"{src.where}: no StartOverride on the boot storage drivers")


def _plan_override(ctx: RepairContext, finding: Finding):
    from rescue.hive import Hive
    from rescue.registry.service_edits import delete_start_override

    src, found = _overrides(ctx)
    if not found:
        return Step("boot.startoverride", "StartOverride removed", skipped="no StartOverride to remove")
    hive = Hive(src.path)
    try:
        changes = tuple(c for s, _ in found if (c := delete_start_override(
            hive, src.ref, src.control_set.key, s.name,
            f"StartOverride keeps {s.name} from loading at boot")) is not None)
    finally:
        hive.close()
    return Step("boot.startoverride", f"StartOverride removed ({src.control_set.key})", changes)


# --- storage-class-filters -----------------------------------------------------------------------------
def _dangling(ctx: RepairContext):
    """[(ClassFilter, [(driver, why)], kept)] for every filter list naming a driver that cannot load."""
    src = system_services(ctx)
    out = []
    for f in src.filters:
        bad: List[Tuple[str, str]] = []
        for name in f.drivers:
            s = src.service(name)
            if s is None:
                bad.append((name, "no service key"))
            elif file_present(ctx, s.file) is False:
                bad.append((name, f"{s.file} missing"))
        if bad:
            drop = {n.lower() for n, _ in bad}
            out.append((f, bad, tuple(n for n in f.drivers if n.lower() not in drop)))
    return src, out


def _check_filters(ctx: RepairContext) -> Finding:
    src, found = _dangling(ctx)
    title = "storage class filters name drivers that load"
    if found:
        text = "; ".join(f"{f.class_name} {f.value} names " + ", ".join(f"{n} ({why})" for n, why in bad)
                         for f, bad, _ in found)
        return Finding("storage-class-filters", title, FOUND, f"{src.where}: {text}", fixable=True)
    classes = ", ".join(name for _, name in STORAGE_CLASSES)
    return Finding("storage-class-filters", title, OK,
                   f"{src.where}: every UpperFilters/LowerFilters driver of {classes} has a service and its file")


def _plan_filters(ctx: RepairContext, finding: Finding):
    from rescue.hive import Hive
    from rescue.registry.service_edits import set_filters

    src, found = _dangling(ctx)
    if not found:
        return Step("boot.class-filters", "Storage class filters", skipped="no filter names a missing driver")
    hive = Hive(src.path)
    try:
        changes = []
        for f, bad, keep in found:
            key = f"{src.control_set.key}\\Control\\Class\\{f.guid}"
            c = set_filters(hive, src.ref, key, f.value, keep,
                            f"{', '.join(n for n, _ in bad)} cannot load: the {f.class_name} stack would not start")
            if c is not None:
                changes.append(c)
    finally:
        hive.close()
    return Step("boot.class-filters", f"Filters naming missing drivers removed ({src.control_set.key})", tuple(changes))


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return (
        "Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore` when you used "
        "`az vm repair create`).",
        "Start the VM and watch boot diagnostics / the serial console.",
        "If a third-party driver was named in the filters, reinstall or remove its software from inside "
        "Windows once it boots.",
    )


SCENARIO = register(Scenario(
    name="inaccessible-boot-device",
    aliases=("0x7B", "0x0000007B", "INACCESSIBLE_BOOT_DEVICE"),
    summary="Stop error 0x7B: boot storage drivers not at boot start, StartOverride, filters naming missing drivers",
    title="Fix stop error 0x7B (INACCESSIBLE_BOOT_DEVICE)",
    source="Microsoft: Troubleshoot stop error 0x7B INACCESSIBLE_BOOT_DEVICE (Azure VMs); repair-script-library "
           "win-fix-inaccessible-boot-device.ps1, win-enable-nvme-boot-driver.ps1",
    checks=(
        Check("boot-driver-start", "boot storage drivers start at boot", _check_start, _plan_start),
        Check("boot-driver-startoverride", "no StartOverride keeps a boot storage driver from loading",
              _check_override, _plan_override),
        Check("storage-class-filters", "storage class filters name drivers that load", _check_filters,
              _plan_filters),
    ),
    next_steps=next_steps,
))
