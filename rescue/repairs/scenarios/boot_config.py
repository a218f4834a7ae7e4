"""Boot errors 0xC000000E, 0xC000000F, 0xC0000225, 0xC0000034, 0xC0000098 when the BCD is at
fault: the boot manager cannot find its configuration, or the entry it starts points elsewhere.

Sources: Microsoft, "Troubleshoot Windows boot error 0xC000000E" / "0xC000000F" / "0xC0000034" /
"0xC0000225 Status not found" (Azure virtual machines) and "Repair the Boot Configuration Data" in
those articles; Azure repair-script-library `win-fix-bcd.ps1` (targeted tier). With a repair VM the
articles run, against the attached disk's store:
  bcdedit /store X:\\boot\\bcd /set {bootmgr} device partition=<system partition>
  bcdedit /store X:\\boot\\bcd /set {bootmgr} integrityservices enable
  bcdedit /store X:\\boot\\bcd /set {default} device partition=<Windows partition>
  bcdedit /store X:\\boot\\bcd /set {default} osdevice partition=<Windows partition>
  bcdedit /store X:\\boot\\bcd /set {default} integrityservices enable
  bcdedit /store X:\\boot\\bcd /set {default} recoveryenabled Off          (--ignore-failures)
  bcdedit /store X:\\boot\\bcd /set {default} bootstatuspolicy IgnoreAllFailures   (--ignore-failures)
Checks, in that order:
  boot-config-store         the store the firmware uses exists, parses and has a loader (else
                            `rescue fix rebuild-bcd`: nothing here can be corrected in place)
  boot-config-bootmgr       {bootmgr} exists (created as bcdboot writes it when missing), its device
                            is the partition holding the store, its path bootmgfw.efi on Gen2
  boot-config-default       default and displayorder name a Windows Boot Loader that exists
  boot-config-loader-device the default loader's device and osdevice are the Windows partition
                            (written from the disk's GPT GUIDs or MBR signature + offset)
  boot-config-loader-path   path winload.efi (Gen2) / winload.exe (Gen1), systemroot \\Windows
  boot-config-integrity     integrityservices not Disable on {bootmgr} and the loader
  boot-config-ignore-failures  with --ignore-failures: bootstatuspolicy IgnoreAllFailures and
                            recoveryenabled No (what `rescue fix repair-loop` does alone)
Only what is wrong is written; every other element (EMS, timeouts, custom settings) stays.
"""

from __future__ import annotations

import shlex

from rescue.bcd import constants as C
from rescue.repairs import sources
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.repairs.scenarios import _bcd
from rescue.repairs.sources import SourceError
from rescue.safety.plan import Step

NAME = "boot-config"


def _rebuild(ctx: RepairContext) -> str:
    disks = " ".join(shlex.quote(d) for d in ctx.disks) or "DISK"
    return f"`rescue fix rebuild-bcd {disks}` makes a new store from the Windows installation (bcdboot)"


def _target(ctx: RepairContext):
    from rescue.bcd.bootconfig import target_loader

    return target_loader(_bcd.store(ctx), _bcd.facts(ctx))


def _skip(action: str, title: str, why: str) -> Step:
    return Step(action, title, skipped=why)


# --- the store ------------------------------------------------------------------------------------
T_STORE = "the BCD store the firmware uses exists and parses"


def _check_store(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import loaders

    try:
        src = sources.bcd(ctx)
    except SourceError as exc:
        if exc.finding.blocker:
            raise                       # a dirty store is a disk-wide blocker, shown as such
        sources.explained(ctx, exc)
        return Finding("boot-config-store", T_STORE, FOUND, f"{exc.cause.message.rstrip('.')}; {_rebuild(ctx)}")
    found = loaders(src.store)
    if not found:
        return Finding("boot-config-store", T_STORE, FOUND,
                       f"{src.store.name} has no Windows Boot Loader: nothing to start; {_rebuild(ctx)}")
    return Finding("boot-config-store", T_STORE, OK,
                   f"{src.store.name}: {len(src.store.objects)} objects, {len(found)} Windows Boot Loader(s)")


# --- {bootmgr} --------------------------------------------------------------------------------------
T_BOOTMGR = "{bootmgr} exists, on the partition that holds the store"


def _check_bootmgr(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import bootmgr_problems, label

    store, facts = _bcd.store(ctx), _bcd.facts(ctx)
    if store.bootmgr is None:
        loader, why = _target(ctx)
        ev = "the store has no {bootmgr} object: the boot manager has no configuration to follow"
        if loader is None or facts is None:
            return Finding("boot-config-bootmgr", T_BOOTMGR, FOUND,
                           f"{ev}; {why if loader is None else 'give the disk, not the BCD file, to recreate it'}")
        return Finding("boot-config-bootmgr", T_BOOTMGR, FOUND,
                       f"{ev}; it can be recreated to start {label(store, loader)} ({why})", fixable=True)
    if facts is None:
        return Finding("boot-config-bootmgr", T_BOOTMGR, UNKNOWN,
                       "{bootmgr} exists; a BCD file alone does not say which partition should hold it: give the disk")
    problems = bootmgr_problems(store, facts, facts.generation)
    if problems:
        parts = [f"{C.element_name(code, store.bootmgr.type)} is {have} (should be {want})"
                 for code, have, want in problems]
        return Finding("boot-config-bootmgr", T_BOOTMGR, FOUND, "{bootmgr} " + "; ".join(parts), fixable=True)
    path = store.bootmgr.value(C.PATH)
    return Finding("boot-config-bootmgr", T_BOOTMGR, OK,
                   f"{{bootmgr}} device is {facts.show(store.bootmgr.value(C.DEVICE))}"
                   + (f", path {path}" if path else ""))


def _plan_bootmgr(ctx: RepairContext, finding: Finding):
    from rescue.bcd.bootconfig import plan_bootmgr

    title = "Windows Boot Manager ({bootmgr})"
    if finding.status != FOUND:
        return _skip("bcd.bootmgr", title, "{bootmgr} is right" if finding.status == OK else finding.evidence)
    if not finding.fixable:
        return _skip("bcd.bootmgr", title, finding.evidence)
    src = sources.bcd(ctx)
    loader, _ = _target(ctx)
    return plan_bootmgr(src.store, src.ref, _bcd.facts(ctx), loader)


# --- default and displayorder --------------------------------------------------------------------------
T_DEFAULT = "default and displayorder name a Windows Boot Loader that exists"


def _check_default(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import default_problems, label

    store = _bcd.store(ctx)
    loader, why = _target(ctx)
    if store.bootmgr is None:
        return Finding("boot-config-default", T_DEFAULT, FOUND,
                       "no {bootmgr}, so nothing names a default (set when {bootmgr} is recreated)",
                       fixable=loader is not None)
    problems = default_problems(store)
    if not problems:
        n = len(store.bootmgr.value(C.DISPLAYORDER, ()) or ())
        return Finding("boot-config-default", T_DEFAULT, OK,
                       f"default {label(store, loader)}; displayorder {n} entr{'y' if n == 1 else 'ies'}, all exist")
    if loader is None:
        return Finding("boot-config-default", T_DEFAULT, FOUND, f"{'; '.join(problems)}; {why}")
    return Finding("boot-config-default", T_DEFAULT, FOUND,
                   f"{'; '.join(problems)}; the entry to start: {label(store, loader)} ({why})", fixable=True)


def _plan_default(ctx: RepairContext, finding: Finding):
    from rescue.bcd.bootconfig import plan_default

    title = "Default entry and display order"
    store = _bcd.store(ctx)
    if finding.status != FOUND:
        return _skip("bcd.default", title, "default and displayorder are right")
    if not finding.fixable:
        return _skip("bcd.default", title, finding.evidence)
    loader, _ = _target(ctx)
    if store.bootmgr is None:
        return _skip("bcd.default", title, f"{{bootmgr}} is recreated with default {loader.identifier}")
    src = sources.bcd(ctx)
    return plan_default(src.store, src.ref, loader)


# --- the loader ----------------------------------------------------------------------------------
T_DEVICE = "the default loader's device and osdevice are the Windows partition"


def _loader_or_unknown(ctx: RepairContext, check_id: str, title: str):
    loader, why = _target(ctx)
    if loader is None:
        return None, Finding(check_id, title, UNKNOWN, f"no loader to check: {why}")
    return loader, None


def _check_device(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import label

    loader, unknown = _loader_or_unknown(ctx, "boot-config-loader-device", T_DEVICE)
    if unknown:
        return unknown
    store, facts = _bcd.store(ctx), _bcd.facts(ctx)
    if facts is None:
        return Finding("boot-config-loader-device", T_DEVICE, UNKNOWN,
                       "a BCD file alone does not say which partition holds Windows: give the disk")
    dev, osdev = loader.value(C.DEVICE), loader.value(C.OSDEVICE)
    name = label(store, loader)
    if facts.is_partition(dev, facts.windows) and facts.is_partition(osdev, facts.windows):
        return Finding("boot-config-loader-device", T_DEVICE, OK,
                       f"{name}: device and osdevice are partition={facts.windows.label}")
    return Finding("boot-config-loader-device", T_DEVICE, FOUND,
                   f"{name}: device {facts.show(dev)}, osdevice {facts.show(osdev)}; Windows is on "
                   f"{facts.windows.label}", fixable=True)


def _plan_device(ctx: RepairContext, finding: Finding):
    from rescue.bcd.bootconfig import plan_loader_devices

    if finding.status != FOUND:
        return _skip("bcd.loader-device", "Loader device and osdevice",
                     "device and osdevice are right" if finding.status == OK else finding.evidence)
    src = sources.bcd(ctx)
    loader, _ = _target(ctx)
    return plan_loader_devices(src.store, src.ref, loader, _bcd.facts(ctx))


T_PATH = "the default loader's path is winload and its systemroot \\Windows"


def _check_path(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import label, loader_path_problems

    loader, unknown = _loader_or_unknown(ctx, "boot-config-loader-path", T_PATH)
    if unknown:
        return unknown
    store, facts = _bcd.store(ctx), _bcd.facts(ctx)
    if facts is None:
        return Finding("boot-config-loader-path", T_PATH, UNKNOWN,
                       "a BCD file alone does not say whether the VM is Gen1 (winload.exe) or Gen2 (winload.efi)")
    name = label(store, loader)
    problems = loader_path_problems(loader, facts.generation)
    if not problems:
        return Finding("boot-config-loader-path", T_PATH, OK,
                       f"{name}: path {loader.value(C.PATH)}, systemroot {loader.value(C.SYSTEMROOT)}")
    parts = [f"{C.element_name(code, loader.type)} {have or 'not set'} (should be {want})" for code, have, want in problems]
    return Finding("boot-config-loader-path", T_PATH, FOUND, f"{name}: {'; '.join(parts)}", fixable=True)


def _plan_path(ctx: RepairContext, finding: Finding):
    from rescue.bcd.bootconfig import plan_loader_paths

    if finding.status != FOUND:
        return _skip("bcd.loader-path", "Loader path and systemroot",
                     "path and systemroot are right" if finding.status == OK else finding.evidence)
    src = sources.bcd(ctx)
    loader, _ = _target(ctx)
    return plan_loader_paths(src.store, src.ref, loader, _bcd.facts(ctx).generation)


# --- integrity services ---------------------------------------------------------------------------------
T_INTEGRITY = "code integrity services not disabled (integrityservices)"


def _integrity_objects(ctx: RepairContext):
    loader, _ = _target(ctx)
    return [o for o in (_bcd.store(ctx).bootmgr, loader) if o is not None]


def _check_integrity(ctx: RepairContext) -> Finding:
    from rescue.bcd.bootconfig import INTEGRITYSERVICES, integrity_disabled

    store = _bcd.store(ctx)
    objs = _integrity_objects(ctx)
    enums = {0: "Default", 1: "Enable", 2: "Disable"}
    seen = "; ".join(f"{store.display_id(o.identifier)} {_bcd.shown(o.value(INTEGRITYSERVICES), enums)}"
                     for o in objs)
    bad = integrity_disabled(store, objs)
    if bad:
        return Finding("boot-config-integrity", T_INTEGRITY, FOUND, f"integrityservices: {seen}", fixable=True)
    unset = any(o.value(INTEGRITYSERVICES) is None for o in objs)
    return Finding("boot-config-integrity", T_INTEGRITY, OK,
                   f"integrityservices: {seen}" + (" (not set means enabled)" if unset else ""))


def _plan_integrity(ctx: RepairContext, finding: Finding):
    from rescue.bcd.bootconfig import plan_integrity

    if finding.status != FOUND:
        return _skip("bcd.integrityservices", "Code integrity services", "integrityservices is not disabled")
    src = sources.bcd(ctx)
    return plan_integrity(src.store, src.ref, _integrity_objects(ctx))


# --- --ignore-failures ----------------------------------------------------------------------------
T_IGNORE = "with --ignore-failures: bootstatuspolicy IgnoreAllFailures, recoveryenabled No"


def _check_ignore(ctx: RepairContext) -> Finding:
    from rescue.bcd import edit as E
    from rescue.bcd.bootconfig import label

    loader, unknown = _loader_or_unknown(ctx, "boot-config-ignore-failures", T_IGNORE)
    if unknown:
        return unknown
    store = _bcd.store(ctx)
    policy, recovery = loader.value(E.BOOTSTATUSPOLICY), loader.value(E.RECOVERYENABLED)
    seen = (f"{label(store, loader)}: bootstatuspolicy "
            f"{_bcd.shown(policy, C.element_enums(E.BOOTSTATUSPOLICY, loader.type))}, recoveryenabled {_bcd.shown(recovery)}")
    if policy == E.IGNORE_ALL_FAILURES and recovery is False:
        return Finding("boot-config-ignore-failures", T_IGNORE, OK, seen)
    if ctx.options.get("ignore_failures"):
        return Finding("boot-config-ignore-failures", T_IGNORE, FOUND, seen, fixable=True,
                       fix_option="--ignore-failures")
    return Finding("boot-config-ignore-failures", T_IGNORE, OK,
                   f"{seen} (left as is without --ignore-failures)")


def _plan_ignore(ctx: RepairContext, finding: Finding):
    from rescue.bcd.edit import plan_ignore_failures

    title = "Boot status policy and recovery"
    if finding.status != FOUND:
        return _skip("bcd.ignore-failures", title,
                     "not asked (--ignore-failures)" if "without --ignore-failures" in finding.evidence
                     else "nothing to change")
    src = sources.bcd(ctx)
    loader, _ = _target(ctx)
    return plan_ignore_failures(src.store, src.ref, loader)


SCENARIO = register(Scenario(
    name=NAME,
    aliases=("0xC000000E", "0xC000000F", "0xC0000225", "0xC0000034", "0xC0000098"),
    summary="Boot errors 0xC000000E/0xC000000F/0xC0000225/0xC0000034/0xC0000098 from the BCD: {bootmgr}, "
            "default entry, loader device/osdevice/path",
    title="Repair the boot configuration data (BCD)",
    source="Microsoft: Troubleshoot Windows boot errors 0xC000000E / 0xC000000F / 0xC0000034 / 0xC0000225 "
           "(Azure VMs), \"Repair the Boot Configuration Data\"",
    options=(
        Option("ignore_failures", "--ignore-failures",
               "Also set bootstatuspolicy IgnoreAllFailures and recoveryenabled No on the loader.",
               kind=OptionKind.FLAG, default=False, diagnose=False),
    ),
    checks=(
        Check("boot-config-store", T_STORE, _check_store),
        Check("boot-config-bootmgr", T_BOOTMGR, _check_bootmgr, _plan_bootmgr),
        Check("boot-config-default", T_DEFAULT, _check_default, _plan_default),
        Check("boot-config-loader-device", T_DEVICE, _check_device, _plan_device),
        Check("boot-config-loader-path", T_PATH, _check_path, _plan_path),
        Check("boot-config-integrity", T_INTEGRITY, _check_integrity, _plan_integrity),
        Check("boot-config-ignore-failures", T_IGNORE, _check_ignore, _plan_ignore, options=("ignore_failures",)),
    ),
    next_steps=_bcd.next_steps,
))
