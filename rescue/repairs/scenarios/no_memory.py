"""Stop error 0xC0000017 STATUS_NO_MEMORY: every cause the article names, checked and fixed.

Source: Microsoft, "Troubleshoot Windows stop error 0xC0000017 STATUS_NO_MEMORY" (Azure virtual
machines; steps mapped in PROCEDURE.md):
  2  free space under 300 MB → Disk Cleanup / expand the OS disk / defragment
  3  bad-memory list in the BCD {badmemory} object → `bcdedit /deletevalue {badmemory} badmemorylist`
     (builds 19042+ keep predicted-bad pages in SYSTEM\\...\\Control\\WHEA\\BadPages instead: checked too)
  4  page file not on the temporary drive → delete that pagefile.sys, restore the default setting
  5  EMS: `bcdedit /ems {default} ON`, `/emssettings EMSPORT:1 EMSBAUDRATE:115200`
  5b dump volume free space > RAM
  5c CrashDumpEnabled=1, DumpFile=%SystemRoot%\\MEMORY.DMP, NMICrashDump=1 in ControlSet001/002
Each layer (rescue.bcd, rescue.registry, rescue.space) checks and plans its own steps; the checks
here pick their findings from the shared sources, so the BCD and SYSTEM are read once.
"""

from __future__ import annotations

from typing import Sequence

from rescue.repairs import sources
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.safety.plan import Step

EMS_PORT = 1          # article step 5: EMSPORT:1 (COM1, the Azure serial console)
EMS_BAUDRATE = 115200


# --- step 2: free space ----------------------------------------------------------------------------
def _space(check_id: str):
    def check(ctx: RepairContext) -> Finding:
        src = sources.space(ctx, for_cleanup=bool(ctx.options.get("cleanup")))
        return next(f for f in src.findings if f.id == check_id)
    return check


def _plan_cleanup(ctx: RepairContext, finding: Finding):
    """--cleanup: Disk Cleanup's categories (it deletes files without a backup, by design, so only
    when asked). Without it, a low-space volume says which option helps."""
    if ctx.options.get("cleanup"):
        from rescue.space.cleanup import build_plan

        scan = sources.space(ctx, for_cleanup=True).scan
        return build_plan(scan).steps
    low = ctx.finding("space-low")
    if low is not None and low.status == FOUND and ctx.prelude is None:
        return Step("space.cleanup", "Disk Cleanup categories",
                    skipped="OS volume under 300 MB free: add --cleanup to remove what Disk Cleanup "
                            "removes, or --expand SIZE to grow the disk")
    return None


# --- step 3 and 5: the BCD -------------------------------------------------------------------------
def _check_badmemory(ctx: RepairContext) -> Finding:
    from rescue.bcd.summary import summarize

    s = summarize(sources.bcd(ctx).store)
    title = "no bad-memory list in the BCD"
    if s.has_badmemory:
        pfns = ", ".join(f"0x{p:x}" for p in s.badmemory_pages[:8]) + (" …" if len(s.badmemory_pages) > 8 else "")
        return Finding("bcd-badmemory", title, FOUND,
                       f"badmemorylist in {', '.join(s.badmemory_holders)} marks {len(s.badmemory_pages)} "
                       f"page(s) unusable: {pfns}", fixable=True)
    return Finding("bcd-badmemory", title, OK,
                   "{badmemory} has no badmemorylist" if s.badmemory_object else "no {badmemory} object")


def _plan_badmemory(ctx: RepairContext, finding: Finding) -> Step:
    from rescue.bcd.edit import plan_clear_badmemory

    src = sources.bcd(ctx)
    return plan_clear_badmemory(src.store, src.ref)


def _check_ems(ctx: RepairContext) -> Finding:
    from rescue.bcd.summary import summarize

    s = summarize(sources.bcd(ctx).store)
    problems = []
    if s.ems_default_loader is not True:
        problems.append(f"ems of {{default}} ({s.default_description or s.default_id}) is "
                        f"{'off' if s.ems_default_loader is False else 'not set'}")
    if s.ems_port != EMS_PORT or s.ems_baudrate != EMS_BAUDRATE:
        problems.append(f"EMS port {s.ems_port if s.ems_port is not None else 'unset'}, baud rate "
                        f"{s.ems_baudrate if s.ems_baudrate is not None else 'unset'} (article: 1, 115200)")
    return Finding("ems-off", "EMS (serial console) on for the Windows boot loader", FOUND if problems else OK,
                   "; ".join(problems) if problems else f"ems on, port {s.ems_port}, {s.ems_baudrate} baud",
                   fixable=bool(problems))


def _plan_ems(ctx: RepairContext, finding: Finding):
    from rescue.bcd.edit import plan_ems_on, plan_emssettings

    src = sources.bcd(ctx)
    return (plan_ems_on(src.store, src.ref), plan_emssettings(src.store, src.ref, EMS_PORT, EMS_BAUDRATE))


# --- steps 4, 5b, 5c: the SYSTEM hive ---------------------------------------------------------------
def _registry(check_id: str):
    def check(ctx: RepairContext) -> Finding:
        return next(f for f in sources.registry(ctx).findings if f.id == check_id)
    return check


def _system(ctx: RepairContext):
    from rescue.hive import Hive

    # Plan from the very copy the diagnosis read (pending hive logs replayed), never a second one.
    reg = sources.registry(ctx)
    return reg, Hive(reg.system_copy)


def _plan_pagefile(ctx: RepairContext, finding: Finding) -> Step:
    from rescue.registry.pagefile import plan_pagefile_reset

    temp = ctx.options.temp_drive
    if finding.status != FOUND:
        return Step("registry.pagefile", "Page file on the temporary drive",
                    skipped=f"the page file is already on {temp} (or no setting to change)")
    reg, system = _system(ctx)
    return plan_pagefile_reset(system, reg.system, reg.found_pagefiles, location=f"{temp}\\pagefile.sys 0 0",
                               temp_drive=temp)


def _plan_whea(ctx: RepairContext, finding: Finding):
    from rescue.registry.findings import plan_clear_whea_badpages

    if finding.status != FOUND:
        return None
    reg, system = _system(ctx)
    return plan_clear_whea_badpages(system, reg.system)


def _plan_crashdump(ctx: RepairContext, finding: Finding) -> Step:
    """CrashDumpEnabled, DumpFile and NMICrashDump in every control set, in one step (the NMI
    finding is fixed by the same step)."""
    from rescue.registry.crashdump import DEFAULT_DUMP_FILE, plan_crashdump_enable

    reg, system = _system(ctx)
    return plan_crashdump_enable(system, reg.system, dump_file=ctx.options.dump_file or DEFAULT_DUMP_FILE)


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    """What the operator does once the disk is repaired (article step 6)."""
    disk = ctx.disks[0] if ctx.disks else "the disk"
    steps = [
        "Detach the repaired disk from this machine (do not boot it here).",
        f"Make it the VM's OS disk again: on Azure `az vm repair restore -g RG -n VM` (if you used "
        f"`az vm repair create`) or `az vm update -g RG -n VM --os-disk <disk id>`; for a downloaded "
        f"{disk}, upload it as a fixed VHD (`qemu-img convert -O vpc -o subformat=fixed,force_size`) "
        "and create the disk from it.",
        "Start the VM and watch the serial console (EMS is on: Azure portal → Serial console).",
        "If it boots, run `defrag C: /u /x /g` inside Windows when the fragmentation report asked for it.",
    ]
    if grown:
        # ntfsresize marks the volume it grew for a consistency check at the next Windows boot.
        steps.insert(3, "At that first boot Windows checks the grown C: (chkdsk, scheduled by ntfsresize); "
                        "let it finish, it can take a few minutes.")
    return steps


SCENARIO = register(Scenario(
    name="no-memory",
    aliases=("0xC0000017", "STATUS_NO_MEMORY", "ramdisk"),
    summary="Stop error 0xC0000017: not enough memory to create a ramdisk device (space, bad-memory "
            "list, page file, EMS, crash dumps)",
    title="Fix stop error 0xC0000017 (STATUS_NO_MEMORY)",
    source="Microsoft: Troubleshoot Windows stop error 0xC0000017 STATUS_NO_MEMORY (Azure VMs)",
    can_expand=True,
    options=(
        Option("ram_bytes", "--ram", "The VM's memory (e.g. 16G), for the dump-space check.",
               kind=OptionKind.SIZE, metavar="SIZE"),
        Option("dump_file", "--dump-file", r"Where the memory dump goes, e.g. F:\MEMORY.DMP on a data disk.",
               metavar="PATH"),
        Option("temp_drive", "--temp-drive", "The temporary drive the page file belongs on (Azure: D:).",
               default="D:", metavar="DRIVE"),
        Option("cleanup", "--cleanup", "Also remove what Disk Cleanup removes (not backed up).",
               kind=OptionKind.FLAG, default=False, diagnose=False),
    ),
    checks=(
        Check("space-low", "OS volume has at least 300 MB free", _space("space-low"), options=("cleanup",)),
        Check("space-cleanup", "Files Disk Cleanup would remove", _space("space-cleanup"), _plan_cleanup,
              options=("cleanup",)),
        Check("space-expand", "OS disk large enough", _space("space-expand"), options=("expand",)),
        Check("space-fragmentation", "Free space not badly fragmented", _space("space-fragmentation")),
        Check("bcd-badmemory", "no bad-memory list in the BCD", _check_badmemory, _plan_badmemory),
        Check("ems-off", "EMS (serial console) on for the Windows boot loader", _check_ems, _plan_ems),
        Check("pagefile-not-on-temp-drive", "page file on the temporary drive",
              _registry("pagefile-not-on-temp-drive"), _plan_pagefile, options=("temp_drive",)),
        Check("crashdump-disabled", "crash dumps enabled", _registry("crashdump-disabled"), _plan_crashdump,
              options=("dump_file",)),
        Check("nmi-crashdump-off", "NMI crash dump on", _registry("nmi-crashdump-off")),
        Check("dump-volume-too-small", "dump volume has room for a complete dump (RAM)",
              _registry("dump-volume-too-small"), options=("ram_bytes", "dump_file")),
        Check("whea-bad-pages", "no predicted-bad memory pages in the registry (WHEA BadPages)",
              _registry("whea-bad-pages"), _plan_whea),
    ),
    next_steps=next_steps,
))
