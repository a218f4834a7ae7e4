"""Stop error 0xC0000017 STATUS_NO_MEMORY: diagnose every cause the article names, plan its fix.

Azure's article (../shared/seed, mapped step by step in PROCEDURE.md):
  2  free space under 300 MB → Disk Cleanup / expand the OS disk / defragment
  3  bad-memory list in the BCD {badmemory} object → `bcdedit /deletevalue {badmemory} badmemorylist`
     (builds 19042+ keep predicted-bad pages in SYSTEM\\...\\Control\\WHEA\\BadPages instead: checked too)
  4  page file not on the temporary drive → delete that pagefile.sys, restore the default setting
  5  EMS: `bcdedit /ems {default} ON`, `/emssettings EMSPORT:1 EMSBAUDRATE:115200`
  5b dump volume free space > RAM
  5c CrashDumpEnabled=1, DumpFile=%SystemRoot%\\MEMORY.DMP, NMICrashDump=1 in ControlSet001/002
Each layer (rescue.bcd, rescue.registry, rescue.space) checks and plans its own steps; this module
only collects their findings into one Diagnosis and their steps into one Plan, so `rescue fix` needs
one appliance launch and backs up each hive once.
"""

from __future__ import annotations

from dataclasses import dataclass

from rescue.errors import RescueError
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Diagnosis, Finding
from rescue.safety.plan import Plan, Step

EMS_PORT = 1          # article step 5: EMSPORT:1 (COM1, the Azure serial console)
EMS_BAUDRATE = 115200


@dataclass(frozen=True)
class FixOptions:
    ram_bytes: int | None = None         # --ram: the VM's memory, for the dump-space check
    dump_file: str | None = None         # --dump-file F:\MEMORY.DMP (default %SystemRoot%\MEMORY.DMP)
    temp_drive: str = "D:"               # Azure's temporary drive
    cleanup: bool = False                # --cleanup: run the Disk Cleanup categories
    discard_hive_logs: bool = False
    expand: bool = False                 # --expand SIZE: disk 0 is opened through a staging overlay
                                         # already SIZE big (rescue.space.staging); grow C: into it


def _bcd(target, opts: FixOptions):
    """(store, ref) of the BCD the firmware uses, or (None, reason)."""
    from rescue.bcd.model import BcdStore
    from rescue.cli.bcd_cmd import host_copy, store_ref

    layout = target.layout
    if layout is None or layout.bcd is None:
        return None, None, "no BCD store found on the given disk(s)"
    ref = store_ref(target, None)
    return BcdStore.open(host_copy(target, ref, opts.discard_hive_logs), name=ref.path), ref, None


def _unsafe_findings(target) -> list[Finding]:
    """States that block any write, on the volumes the fix would touch (Windows root, BCD volume)."""
    layout = target.layout
    keys = {(layout.root.disk, layout.root.partition)}
    if layout.bcd is not None:
        keys.add((layout.bcd.disk, layout.bcd.partition))
    out = []
    for v in layout.volumes:
        if (v.disk, v.partition) not in keys:
            continue
        where = f"{layout.disk_paths[v.disk]} partition {v.partition}"
        for state, fid, title in (("bitlocker", "unsafe-bitlocker", "volume not BitLocker-locked"),
                                  ("hibernated", "unsafe-hibernated", "volume not hibernated (Fast Startup)"),
                                  ("unclean", "unsafe-unclean-ntfs", "NTFS shut down cleanly")):
            if v.state == state:
                out.append(Finding(fid, title, FOUND, f"{where}: {v.note or state}", blocker=True))
    return out


def _bcd_findings(store, why: str | None) -> list[Finding]:
    from rescue.bcd.summary import summarize

    if store is None:
        return [Finding("bcd-badmemory", "no bad-memory list in the BCD", UNKNOWN, why or "no BCD"),
                Finding("ems-off", "EMS (serial console) on for the Windows boot loader", UNKNOWN, why or "no BCD")]
    s = summarize(store)
    out = []
    if s.has_badmemory:
        pfns = ", ".join(f"0x{p:x}" for p in s.badmemory_pages[:8]) + (" …" if len(s.badmemory_pages) > 8 else "")
        out.append(Finding("bcd-badmemory", "no bad-memory list in the BCD", FOUND,
                           f"badmemorylist in {', '.join(s.badmemory_holders)} marks {len(s.badmemory_pages)} "
                           f"page(s) unusable: {pfns}", fixable=True))
    else:
        out.append(Finding("bcd-badmemory", "no bad-memory list in the BCD", OK,
                           "{badmemory} has no badmemorylist" if s.badmemory_object else "no {badmemory} object"))
    problems = []
    if s.ems_default_loader is not True:
        problems.append(f"ems of {{default}} ({s.default_description or s.default_id}) is "
                        f"{'off' if s.ems_default_loader is False else 'not set'}")
    if s.ems_port != EMS_PORT or s.ems_baudrate != EMS_BAUDRATE:
        problems.append(f"EMS port {s.ems_port if s.ems_port is not None else 'unset'}, baud rate "
                        f"{s.ems_baudrate if s.ems_baudrate is not None else 'unset'} (article: 1, 115200)")
    out.append(Finding("ems-off", "EMS (serial console) on for the Windows boot loader",
                       FOUND if problems else OK,
                       "; ".join(problems) if problems else f"ems on, port {s.ems_port}, {s.ems_baudrate} baud",
                       fixable=bool(problems)))
    return out


def _space_findings(target, *, for_cleanup: bool = False, prior=None) -> tuple[list[Finding], object]:
    from rescue.space.findings import assess_windows_volume

    # check_readonly costs an attribute read per file: only when the scan becomes a cleanup plan.
    findings, scan, _frag = assess_windows_volume(target.session, target.layout, check_readonly=for_cleanup,
                                                  prior=prior)
    return findings, scan


def diagnose(target, opts: FixOptions, *, prior_scan=None) -> tuple[Diagnosis, dict]:
    """Every check, read-only, through the command's one session. Returns the diagnosis and the
    facts the planner reuses (so nothing is read twice). `prior_scan`: (the cleanup scan of an
    earlier diagnosis in this launch, Windows paths deleted since): reused, not walked again."""
    from rescue.registry.summary import summarize as registry_summary

    layout = target.layout
    layout.require_root()
    findings: list[Finding] = _unsafe_findings(target)
    blocked = bool(findings)
    facts: dict = {}
    try:
        space, scan = _space_findings(target, for_cleanup=opts.cleanup, prior=prior_scan)
        facts["scan"] = scan
    except RescueError as exc:
        space = [Finding("space-low", "OS volume has at least 300 MB free", UNKNOWN, str(exc))]
    findings += space
    try:
        store, ref, why = _bcd(target, opts)
        facts["bcd"] = (store, ref)
        findings += _bcd_findings(store, why)
    except RescueError as exc:
        findings.append(_hive_finding("BCD", exc))
    try:
        reg = registry_summary(target, temp_drive=opts.temp_drive, ram_bytes=opts.ram_bytes,
                               dump_file=opts.dump_file, discard_hive_logs=opts.discard_hive_logs)
        facts["registry"] = reg
        findings += list(reg.findings)
    except RescueError as exc:
        findings.append(_hive_finding("SYSTEM", exc))
    del blocked
    return Diagnosis(disks=layout.disk_paths, findings=tuple(findings)), facts


def _hive_finding(name: str, exc: RescueError) -> Finding:
    from rescue.errors import UnsafeStateError

    if isinstance(exc, UnsafeStateError):
        return Finding(f"unsafe-{name.lower()}-hive", f"{name} hive consistent", FOUND, str(exc), blocker=True)
    return Finding(f"{name.lower()}-unreadable", f"{name} readable", UNKNOWN, str(exc))


def plan_fix(target, diagnosis: Diagnosis, facts: dict, opts: FixOptions) -> Plan:
    """One plan for every article step that applies; steps that do not apply say why."""
    from rescue.bcd.edit import plan_clear_badmemory, plan_ems_on, plan_emssettings
    from rescue.registry.crashdump import DEFAULT_DUMP_FILE, plan_crashdump_enable
    from rescue.registry.findings import plan_clear_whea_badpages
    from rescue.registry.pagefile import plan_pagefile_reset

    steps: list[Step] = []
    found = {f.id for f in diagnosis.found}

    # Step 2: free space. Growing the disk runs first (a prelude: it makes the room the backup and
    # the edits may need); cleanup only when asked (it deletes files without a backup, by design).
    prelude = None
    if opts.expand:
        prelude, skipped = _plan_expand(target)
        if skipped is not None:
            steps.append(skipped)
    scan = facts.get("scan")
    if opts.cleanup and scan is not None:
        from rescue.space.cleanup import build_plan

        steps.extend(build_plan(scan).steps)
    elif "space-low" in found and prelude is None:
        steps.append(Step("space.cleanup", "Disk Cleanup categories",
                          skipped="OS volume under 300 MB free: add --cleanup to remove what Disk Cleanup "
                                  "removes, or --expand SIZE to grow the disk"))
    # Step 3: bad-memory list.
    store, ref = facts.get("bcd", (None, None))
    if store is not None:
        steps.append(plan_clear_badmemory(store, ref))
    # Step 4: page file.
    reg = facts.get("registry")
    if reg is not None:
        from rescue.hive import Hive

        # Plan from the very copy the diagnosis read (pending hive logs replayed), never a second one.
        system = Hive(reg.system_copy)
        if "pagefile-not-on-temp-drive" in found:
            steps.append(plan_pagefile_reset(system, reg.system, reg.found_pagefiles,
                                             location=f"{opts.temp_drive}\\pagefile.sys 0 0",
                                             temp_drive=opts.temp_drive))
        else:
            steps.append(Step("registry.pagefile", "Page file on the temporary drive",
                              skipped=f"the page file is already on {opts.temp_drive} (or no setting to change)"))
        if "whea-bad-pages" in found:
            steps.append(plan_clear_whea_badpages(system, reg.system))
    # Step 5: EMS.
    if store is not None:
        steps.append(plan_ems_on(store, ref))
        steps.append(plan_emssettings(store, ref, EMS_PORT, EMS_BAUDRATE))
    # Step 5c: crash dumps + NMI in every control set.
    if reg is not None:
        steps.append(plan_crashdump_enable(system, reg.system, dump_file=opts.dump_file or DEFAULT_DUMP_FILE))
    return Plan(title="Fix stop error 0xC0000017 (STATUS_NO_MEMORY)", steps=tuple(steps), prelude=prelude)


def _plan_expand(target):
    """(Prelude, None) growing the Windows partition and NTFS into the staged disk's new size, or
    (None, skipped Step) when the partition already fills it. Refusals (a recovery partition behind
    C:, an MBR disk over 2 TiB, ...) raise: the operator asked for --expand, so the whole fix stops
    before writing anything."""
    import time

    from rescue.safety.plan import Prelude
    from rescue.space.expand import apply_in_session, human, make_plan

    session = target.session
    image = session.images[0]
    if not image.staging:
        raise RuntimeError("--expand needs disk 0 opened through a staging overlay")   # caller bug
    plan = make_plan(session, target.layout, user_path=image.path, format_label=image.format_label,
                     old_disk_size=image.virtual_size)
    if plan.nothing_to_do:
        return None, Step("space.expand", "Grow the OS disk",
                          skipped=f"the Windows partition already fills the {human(plan.new_disk_size)} disk")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    vol = plan.letter or "the Windows partition"
    title = (f"Grow {image.path} to {human(plan.new_disk_size)} and {vol} with it" if plan.grows_image
             else f"Grow {vol} to fill {image.path} ({human(plan.new_disk_size)})")
    return Prelude("space.expand", title, tuple(plan.steps()),
                   run=lambda: apply_in_session(session, plan, stamp=stamp),
                   data={"expand": plan.to_json()}), None


def next_steps(layout, *, grown: bool = False) -> list[str]:
    """What the operator does once the disk is repaired (article step 6)."""
    disk = layout.disk_paths[0]
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
