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
  service-image-missing  an automatic-start (Start 2) Win32 service or driver whose file is missing:
                         the ImagePath resolved as the Service Control Manager starts it
                         (rescue.registry.image_path) and, for svchost-hosted services, the
                         Parameters\\ServiceDll. Microsoft's "after installing software" procedure
                         and the script look at these too. A missing auto-start binary stops the boot
                         only through ErrorControl (Microsoft Learn, CreateServiceW dwErrorControl):
                         severe (2) and critical (3) make Windows restart into the last known good
                         control set (critical: fail there too), so only those are FOUND; ignore (0)
                         and normal (1) ones are listed (SCM logs event 7000 and goes on). Fix: Start=4
                         for the third-party boot-stopping ones; Windows' own (image under \\Windows)
                         and boot-critical ones are reported with the sfc advice.
  driver-disable         `--name NAME`: the driver the stop error names still loads. Fix: Start=4
                         (the previous value kept in the backup; `rescue undo` or
                         `rescue services enable` brings it back). Without --name it lists the
                         third-party boot/system-start drivers, never an error.
Drivers are classified third-party by name and place (rescue.registry.services), not by signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

from rescue.registry.image_path import ServiceImage
from rescue.registry.services import Service
from rescue.repairs.base import Check, Option, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.repairs.services_source import SystemServices, file_present, image_present, system_services
from rescue.safety.plan import Step

DISABLED = 4
SFC_ADVICE = ("copy the file from a VM of the same Windows build and update level, or run "
              "`sfc /scannow /offbootdir=X:\\ /offwindir=X:\\Windows` from a repair VM")


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
                                  + SFC_ADVICE))
    return tuple(steps)


# --- service-image-missing -----------------------------------------------------------------------------
SEVERE = 2          # ErrorControl 2 severe / 3 critical: a failed start sends the boot back to LKG
STOPS_BOOT = ("ErrorControl severe/critical: Windows restarts into the last known good control set, and a "
              "critical one fails the boot there too")
GOES_ON = "ErrorControl ignore/normal: the Service Control Manager logs event 7000 and goes on"


@dataclass(frozen=True)
class MissingService:
    """An automatic-start service or driver and the files of it that are not on the volume."""

    service: Service
    missing: Tuple[ServiceImage, ...]       # its image (every name SCM tries absent) and/or ServiceDll

    @property
    def stops_boot(self) -> bool:
        return (self.service.error_control or 0) >= SEVERE

    @property
    def disableable(self) -> bool:
        from rescue.registry.services import BOOT_CRITICAL

        return not self.service.inbox and self.service.name.lower() not in BOOT_CRITICAL


def _file_text(f: ServiceImage, what: str) -> str:
    text = f"{what} {f.stored} -> {f.path} missing"
    if f.ambiguous:
        text += f" (unquoted path with spaces: {', '.join(f.candidates[:-1])} missing too)"
    return text


def _describe_missing(m: MissingService) -> str:
    s = m.service
    who = "third-party" if not s.inbox else "Windows"
    files = "; ".join(_file_text(f, "ServiceDll" if f is s.service_dll else "ImagePath") for f in m.missing)
    return f"{s.name} ({s.start_text}, {s.type_text}, {s.error_control_text}, {who}, {files})"


def automatic_services(ctx: RepairContext) -> Tuple[SystemServices, List[Service]]:
    """Automatic-start (Start 2) Win32 services and drivers of the current control set, in hive order."""
    src = system_services(ctx)
    return src, [s for s in src.services.values() if s.starts_automatically]


def _service_files(ctx: RepairContext) -> Tuple[SystemServices, List[MissingService],
                                                List[Tuple[Service, ServiceImage]], int]:
    """(source, missing, unchecked, checked): every automatic-start service sorted by what can be
    told of its files."""
    src, services = automatic_services(ctx)
    missing: List[MissingService] = []
    unchecked: List[Tuple[Service, ServiceImage]] = []
    checked = 0
    for s in services:
        states = [(f, image_present(ctx, f)) for f in s.files]
        gone = tuple(f for f, p in states if p is False)
        if gone:
            missing.append(MissingService(s, gone))
        elif all(p is True for _, p in states):
            checked += 1
        else:
            unchecked += [(s, f) for f, p in states if p is None]
    return src, missing, unchecked, checked


def _check_services(ctx: RepairContext) -> Finding:
    fid, title = "service-image-missing", "every automatic-start service's file exists"
    src, missing, unchecked, checked = _service_files(ctx)
    stopping = [m for m in missing if m.stops_boot]
    quiet = [m for m in missing if not m.stops_boot]
    if not missing and not checked and any(f.unchecked is None for _, f in unchecked):
        return Finding(fid, title, UNKNOWN, f"{src.where}: no Windows volume to look for the services' files on")
    tail = ""
    if quiet:
        tail += f"; missing but not boot-stopping ({GOES_ON}): " + "; ".join(_describe_missing(m) for m in quiet)
    for svc, f in unchecked:
        tail += f"; {svc.name} ({f.stored}): {f.unchecked or 'presence unknown'}"
    if stopping:
        return Finding(fid, title, FOUND,
                       f"{src.where}: {len(stopping)} automatic-start service(s) whose file is missing stop the "
                       f"boot ({STOPS_BOOT}): " + "; ".join(_describe_missing(m) for m in stopping) + tail,
                       fixable=any(m.disableable for m in stopping))
    if quiet:
        return Finding(fid, title, OK, f"{src.where}: no automatic-start service whose file is missing stops "
                                       f"the boot{tail}")
    return Finding(fid, title, OK, f"{src.where}: the files of all {checked} automatic-start services and "
                                   f"drivers exist{tail}")


def _plan_services(ctx: RepairContext, finding: Finding) -> Union[Step, Tuple[Step, ...]]:
    src, missing, _unchecked, _checked = _service_files(ctx)
    stopping = [m for m in missing if m.stops_boot]
    if finding.status == UNKNOWN:
        return Step("service.missing", "Automatic-start services whose file is missing",
                    skipped=finding.evidence.split(": ", 1)[-1])
    if not stopping:
        why = "no automatic-start service whose file is missing stops the boot"
        quiet = [m.service.name for m in missing]
        if quiet:
            why += (f" ({', '.join(quiet)} only log event 7000; `rescue services disable DISK NAME` quiets one "
                    "if wanted)")
        return Step("service.missing", "Automatic-start services whose file is missing", skipped=why)
    steps: List[Step] = []
    third = [m.service for m in stopping if m.disableable]
    if third:
        steps.append(_disable_step(ctx, third, "service.missing", f"Disable automatic-start services whose file "
                                   f"is missing ({src.control_set.key})", "{name}'s image file is missing"))
    own = [m for m in stopping if not m.disableable]
    if own:
        files = ", ".join(f.path or f.stored for m in own for f in m.missing)
        steps.append(Step("service.missing-windows", "Windows services whose file is missing",
                          skipped=f"{files}: Windows' own service(s) (or on the path to the disk or the network), "
                                  f"not disabled: {SFC_ADVICE}; for software installed under \\Windows, "
                                  "reinstall it"))
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
        Check("service-image-missing", "every automatic-start service's file exists", _check_services,
              _plan_services),
        Check("driver-disable", "the driver named with --name does not load", _check_disable, _plan_disable,
              options=("driver_name",)),
    ),
    next_steps=next_steps,
))
