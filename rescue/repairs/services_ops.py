"""`rescue services list|disable|enable`: the drivers Windows loads before anything else, and the
one edit an article asks for (Start=4 on the driver a stop error names, or back).

Reads the control set Windows boots (Select\\Current) through the same shared source as the
inaccessible-boot-device and driver scenarios; file presence from one listing per folder. Writes
are plans for the safety engine (backup, read-back, undo), never direct edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from rescue.errors import NotFoundError, UsageError
from rescue.registry.services import Service
from rescue.repairs.context import RepairContext
from rescue.repairs.services_source import SystemServices, image_present, system_services
from rescue.safety.plan import Plan, Step

DISABLED = 4


@dataclass(frozen=True)
class DriverEntry:
    service: Service
    present: Optional[bool]         # image file(s) on the Windows volume (None: cannot tell)
    missing: Tuple[str, ...] = ()   # the files looked for and not found (Win32: image and ServiceDll)

    def to_json(self) -> dict:
        out = self.service.to_json(self.present)
        s = self.service
        out.update({"type_text": s.type_text, "error_control_text": s.error_control_text,
                    "image": s.image.to_json() if s.image else None,
                    "service_dll": s.service_dll.to_json() if s.service_dll else None,
                    "missing_files": list(self.missing)})
        return out


@dataclass(frozen=True)
class DriverList:
    control_set: str                # "ControlSet001 (Select\\Current)"
    everything: bool                # Windows' own drivers included
    drivers: Tuple[DriverEntry, ...]
    automatic: bool = False         # automatic-start (Start 2) services and drivers included

    def to_json(self) -> dict:
        return {"control_set": self.control_set, "all": self.everything, "automatic": self.automatic,
                "drivers": [d.to_json() for d in self.drivers]}


def _entry(ctx: RepairContext, s: Service) -> DriverEntry:
    """Presence of every file the service needs: False when one is missing (for an unquoted Win32
    path: when none of the names SCM tries exists), None when one cannot be told."""
    states = [(f, image_present(ctx, f)) for f in s.files]
    missing = tuple(f.path or f.stored for f, p in states if p is False)
    if missing:
        return DriverEntry(s, False, missing)
    return DriverEntry(s, True if states and all(p is True for _, p in states) else None)


def list_drivers(ctx: RepairContext, *, everything: bool = False, automatic: bool = False) -> DriverList:
    """Boot- and system-start drivers, and with `automatic` the automatic-start services and
    drivers too (third-party only unless `everything`), boot start first."""
    src = system_services(ctx)
    chosen = [s for s in src.services.values()
              if (s.loads_early or (automatic and s.starts_automatically)) and (everything or not s.inbox)]
    chosen.sort(key=lambda s: (s.start, s.name.lower()))
    return DriverList(src.where, everything, tuple(_entry(ctx, s) for s in chosen), automatic)


def _service(ctx: RepairContext, name: str) -> Tuple[SystemServices, Service]:
    src = system_services(ctx)
    s = src.service(name)
    if s is None:
        raise NotFoundError(f"{src.where} has no service named {name}.",
                            hint="`rescue services list DISK --all` shows the boot and system start drivers.")
    return src, s


def plan_disable(ctx: RepairContext, name: str) -> Plan:
    from rescue.hive import Hive
    from rescue.registry.service_edits import set_start
    from rescue.registry.services import BOOT_CRITICAL

    src, s = _service(ctx, name)
    title = f"Disable {s.name} ({src.control_set.key})"
    if s.name.lower() in BOOT_CRITICAL:
        raise UsageError(f"{s.name} is on the path to the disk or the network; disabling it would stop the boot "
                         "(0x7B) or cut the VM off. Nothing was written.",
                         hint="Restore its file, or boot the last known good set (rescue fix last-known-good).")
    if s.start == DISABLED:
        return Plan(title, (Step("services.disable", title, skipped=f"{s.name} is already disabled (Start 4)"),))
    hive = Hive(src.path)
    try:
        change = set_start(hive, src.ref, src.control_set.key, s.name, DISABLED, f"disable {s.name}")
    finally:
        hive.close()
    assert change is not None           # Start is not 4 (checked above)
    return Plan(title, (Step("services.disable", title, (change,),
                             notes=(f"{s.name} was Start {s.start_text}; the backup keeps it (rescue undo)",)),))


def previous_start(ctx: RepairContext, name: str) -> Optional[Tuple[int, str]]:
    """(Start, where) of the same service in another control set, when it is not disabled there:
    what Windows had before the driver was disabled in the current set only."""
    from rescue.hive import Hive
    from rescue.registry.services import ControlSetRef, read_service

    src = system_services(ctx)
    hive = Hive(src.path)
    try:
        for key in hive.child_names(""):
            if not key.lower().startswith("controlset") or key.lower() == src.control_set.key.lower():
                continue
            try:
                other = ControlSetRef(int(key[len("ControlSet"):]))
            except ValueError:
                continue
            s = read_service(hive, other, name)
            if s is not None and s.start is not None and s.start != DISABLED:
                return s.start, other.key
    finally:
        hive.close()
    return None


def plan_enable(ctx: RepairContext, name: str, start: Optional[int]) -> Plan:
    from rescue.hive import Hive
    from rescue.registry.service_edits import set_start
    from rescue.registry.services import start_name

    src, s = _service(ctx, name)
    title = f"Enable {s.name} ({src.control_set.key})"
    notes: Tuple[str, ...] = ()
    if start is None:
        found = previous_start(ctx, s.name)
        if found is None:
            if s.start != DISABLED:
                return Plan(title, (Step("services.enable", title, skipped=f"{s.name} is not disabled (Start {s.start_text})"),))
            raise UsageError(f"No other control set says how {s.name} started before it was disabled.",
                             hint="Give it: --start boot|system|automatic|demand.")
        start, where = found
        notes = (f"Start {start_name(start)} ({start}), as in {where}",)
    if s.start == start:
        return Plan(title, (Step("services.enable", title, skipped=f"{s.name} already has Start {s.start_text}"),))
    hive = Hive(src.path)
    try:
        change = set_start(hive, src.ref, src.control_set.key, s.name, start, f"enable {s.name}")
    finally:
        hive.close()
    if change is None:
        return Plan(title, (Step("services.enable", title, skipped=f"{s.name} already has Start {start}"),))
    return Plan(title, (Step("services.enable", title, (change,), notes=notes),))
