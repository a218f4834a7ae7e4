"""Rebuild the boot configuration: what `bcdboot C:\\Windows /s S:` does, offline.

Sources: Microsoft, "BCDBoot command-line options" (a new store initialised from
%WINDIR%\\System32\\Config\\BCD-Template; boot files copied from the Windows image to the system
partition) and the Azure articles that run it from a repair VM when the store is missing or
damaged ("Troubleshoot Windows boot error: Boot configuration data file is missing required
information" / 0xc000000f / 0xc0000034: `bcdboot <Windows>:\\windows /s <System Reserved>:` on
Gen1 and `... /s <system>: /f UEFI` on Gen2), and, for Gen1, their step "verify and set the active
partition" (diskpart `active`), which Azure's "Boot error: BOOTMGR is missing" and "An operating
system wasn't found" articles give on its own: the BIOS boot code starts the partition whose boot
indicator is 0x80, so the partition holding bootmgr must be the active one.

Checks:
  bcd-store        the store the firmware reads is there and parses; FOUND when missing or
                   corrupt → a new store from the disk's own BCD-Template (rescue.bcd.rebuild):
                   {bootmgr}, one Windows Boot Loader + its resume object for the Windows found,
                   {memdiag}, the settings objects; the old store and its logs go to the backup.
  boot-files       the boot manager is on the system partition (bootmgfw.efi / bootmgr); the copy
                   of \\Windows\\Boot bcdboot makes is planned whenever the store is rebuilt too.
  active-partition Gen1: the partition holding bootmgr is marked active (the BIOS boots only the
                   active partition); FOUND when it is not → its boot indicator set to 0x80 and
                   any other cleared, in the MBR's bytes only (rescue.safety.plan.
                   SetActivePartition: the 512-byte sector 0 kept in the backup, undo writes it
                   back byte for byte). Never on a GPT disk (its protective MBR stays as it is).
`--rebuild` rebuilds a store that parses (as running bcdboot on a working system does).
"""

from __future__ import annotations

from rescue.bcd.bootfacts import BootFacts, StoreStatus, boot_file_copies, read_boot_facts
from rescue.disk.ptable import ACTIVE, NotAnMbrError, boot_indicators, with_active
from rescue.errors import RescueError, UsageError
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.safety.plan import SetActivePartition, Step, WriteFile

FACTS = "bootfacts"
FILES = "bootfiles"


def facts(ctx: RepairContext) -> BootFacts:
    """The disk's boot facts, read once per command (validation cases preset them)."""
    def load() -> BootFacts:
        if not ctx.on_disk or ctx.layout is None:
            raise UsageError("rebuild-bcd works on a disk (it needs the system partition and \\Windows\\Boot), "
                             "not on a hive file.")
        return read_boot_facts(ctx.target, ctx.layout, discard_hive_logs=bool(ctx.options.get("discard_hive_logs")))

    return ctx.memo(FACTS, load)


def _rebuilding(ctx: RepairContext, f: BootFacts) -> bool:
    return f.store_status in (StoreStatus.MISSING, StoreStatus.CORRUPT) or bool(ctx.options.get("rebuild"))


# --- the store -----------------------------------------------------------------------------------
def _check_store(ctx: RepairContext) -> Finding:
    title = "BCD store present and readable"
    try:
        f = facts(ctx)
    except RescueError as exc:          # e.g. a hive file as the target: cannot tell
        return Finding("bcd-store", title, UNKNOWN, exc.message)
    if f.store_status is StoreStatus.PRESENT:
        return Finding("bcd-store", title, OK, f"{f.store_label} parses", fixable=bool(ctx.options.get("rebuild")))
    if f.store_status is StoreStatus.UNSAFE:
        return Finding("bcd-store", title, UNKNOWN, f.store_problem)
    evidence = f.store_problem
    if f.problem:
        return Finding("bcd-store", title, FOUND, f"{evidence}; cannot rebuild it: {f.problem}")
    return Finding("bcd-store", title, FOUND, f"{evidence} (the firmware has no boot configuration to read)",
                   fixable=True)


def _plan_store(ctx: RepairContext, finding: Finding):
    if finding.status is UNKNOWN:
        return None
    f = facts(ctx)
    if not _rebuilding(ctx, f):
        return Step("bcd.rebuild", "New BCD store from BCD-Template",
                    skipped="the store parses (give --rebuild to make a new one anyway)")
    bt, store = f.boot_target, f.store
    if f.problem or bt is None or store is None:
        return Step("bcd.rebuild", "New BCD store from BCD-Template",
                    skipped=f"cannot rebuild: {f.problem or 'the partitions are unknown'}")
    data, objects = _new_store(ctx, f)
    reason = ("bcdboot: a new system store from \\Windows\\System32\\config\\BCD-Template "
              "(the old one is kept in the backup)")
    changes = [WriteFile(store, data, reason=reason)]
    # The old store's logs belong to the old hive: emptied (kept in the backup), so nothing can
    # ever replay them over the new store.
    changes += [WriteFile(log, b"", reason="transaction log of the replaced store") for log in f.logs]
    notes = (f"objects: {', '.join(objects)}",
             f"default loader {bt.loader_guid} \"{bt.description}\" (resume {bt.resume_guid})")
    return Step("bcd.rebuild", f"New BCD store on {f.system_label} from BCD-Template (bcdboot)",
                tuple(changes), notes=notes)


def _new_store(ctx: RepairContext, f: BootFacts) -> tuple[bytes, list[str]]:
    from rescue.bcd import constants as C
    from rescue.bcd.rebuild import read_template, system_store_objects, write_store

    def build():
        objects = system_store_objects(read_template(f.template), f.boot_target)
        path = ctx.target.workdir / "rebuilt-BCD"
        write_store(path, objects, f.generation)
        names = [C.ALIAS_OF_GUID.get(o.guid, o.guid) for o in objects]
        return path.read_bytes(), names

    return ctx.memo("rebuilt-store", build)


# --- the boot files ------------------------------------------------------------------------------
def _check_files(ctx: RepairContext) -> Finding:
    title = "boot manager on the system partition"
    try:
        f = facts(ctx)
    except RescueError as exc:          # e.g. a hive file as the target: cannot tell
        return Finding("boot-files", title, UNKNOWN, exc.message)
    if f.boot_manager is None:
        return Finding("boot-files", title, UNKNOWN, f.problem or "no system partition")
    where = f"{f.system_label}: {f.boot_manager.path}"
    if f.boot_manager_present:
        return Finding("boot-files", title, OK, f"{where} present")
    if f.problem:
        return Finding("boot-files", title, FOUND, f"{where} is missing; cannot copy it: {f.problem}")
    return Finding("boot-files", title, FOUND, f"{where} is missing (the firmware has nothing to start)",
                   fixable=True)


def _plan_files(ctx: RepairContext, finding: Finding):
    if finding.status is UNKNOWN:
        return None
    f = facts(ctx)
    if finding.status is not FOUND and not _rebuilding(ctx, f):
        return None
    title = f"Boot files from \\Windows\\Boot to {f.system_label} (bcdboot)"
    if f.problem:
        return Step("bcd.bootfiles", title, skipped=f"cannot copy: {f.problem}")
    # Read through the disk set only when not given (validation cases preset the copies).
    files, why = ctx.memo(FILES, lambda: boot_file_copies(ctx.target, ctx.target.disk_set()[1], f))
    if why:
        return Step("bcd.bootfiles", title, skipped=f"cannot copy: {why}")
    todo = [b for b in files if not b.same]
    if not todo:
        return Step("bcd.bootfiles", title, skipped="every boot file is already there, byte for byte")
    changes = tuple(WriteFile(b.dest, ctx.target.read_bytes(b.source),
                              reason=f"bcdboot copies {b.source.path}") for b in todo)
    return Step("bcd.bootfiles", title, changes)


# --- Gen1: the active partition ------------------------------------------------------------------
def _check_active(ctx: RepairContext) -> Finding:
    title = "system partition marked active (Gen1)"
    try:
        f = facts(ctx)
    except RescueError as exc:          # e.g. a hive file as the target: cannot tell
        return Finding("active-partition", title, UNKNOWN, exc.message)
    if f.generation != "gen1" or f.system is None:
        return Finding("active-partition", title, OK,
                       "Gen2 (UEFI): the firmware boots the EFI system partition, no active flag"
                       if f.generation == "gen2" else "no MBR system partition")
    if f.system.active:
        return Finding("active-partition", title, OK, f"{f.system_label} is active")
    disk = f.disk_label or f.system_label.rsplit(' partition', 1)[0]
    others = [n for n, flag in enumerate(boot_indicators(f.mbr_sector), 1) if flag == ACTIVE] \
        if len(f.mbr_sector) == 512 else []
    boots = f"partition {others[0]} is active on {disk}: the BIOS boots it" if others else \
        f"no partition is active on {disk}: the BIOS boots none"
    try:
        with_active(f.mbr_sector, f.system.partition)
        fixable = True
    except NotAnMbrError:               # the plan says why (and how to do it by hand)
        fixable = False
    return Finding("active-partition", title, FOUND,
                   f"{boots} (bootmgr belongs on {f.system_label}, found as {f.system.how})", fixable=fixable)


def _plan_active(ctx: RepairContext, finding: Finding):
    if finding.status is not FOUND:
        return None
    f = facts(ctx)
    title = f"Mark {f.system_label} active"
    if f.system is None:                # a FOUND finding had a system partition; the facts are memoized
        return Step("mbr.active", title, skipped="no MBR system partition")
    try:
        change = SetActivePartition.of(f.system.disk, f.system.partition, f.mbr_sector, disk_label=f.disk_label,
                                       reason="the BIOS starts the active partition's boot sector, which loads bootmgr")
    except RescueError as exc:
        how = f"`{f.activate_command}`" if f.activate_command else "diskpart: select the partition, `active`"
        return Step("mbr.active", title, skipped=f"{exc.message.rstrip('.')}; mark it active by hand ({how})")
    return Step("mbr.active", title, (change,))


SCENARIO = register(Scenario(
    name="rebuild-bcd",
    summary="BCD store missing or corrupt: a new one from BCD-Template and the boot files, as bcdboot does",
    title="Rebuild the boot configuration (bcdboot, offline)",
    aliases=("bcdboot",),
    source="Microsoft, BCDBoot command-line options; Azure: boot configuration data missing (bcdboot /s /f UEFI), "
           "BOOTMGR is missing (verify and set the active partition)",
    options=(Option("rebuild", "--rebuild", "make a new store even if the current one parses",
                    kind=OptionKind.FLAG, default=False, diagnose=False),),
    checks=(
        Check("bcd-store", "BCD store present and readable", _check_store, _plan_store, options=("rebuild",)),
        Check("boot-files", "boot manager on the system partition", _check_files, _plan_files,
              options=("rebuild",)),
        Check("active-partition", "system partition marked active (Gen1)", _check_active, _plan_active),
    ),
    next_steps=lambda ctx, grown: (
        "Boot the VM. The new store has no Windows Recovery entry: once Windows runs, `reagentc /enable` "
        "adds it back.",),
))
