"""Validation cases of `boot-config` (boot errors 0xC000000E/0xC000000F/0xC0000225/0xC0000034 from
the BCD): each check on a store with the fault and one without, judged against the disk records the
store sits on (tests/validation/bcd_cases.py), with the exact finding and the exact planned change.
Device values are the 88-byte partition devices bcdedit writes for `partition=X:` (built
independently by rescue.samples.hives from the same identities)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bcd_cases import bcd, with_element, without_object
from harness import Case, context, run_case
from rescue.bcd import constants as C
from rescue.hive import values as V
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.samples import disks as SD
from rescue.samples.bcd_store import LOADER_GUID
from rescue.samples.hives import build_system_hive, gpt_partition_device

S = "boot-config"
BM = f"Objects\\{C.GUID_BOOTMGR}"
LD = f"Objects\\{LOADER_GUID}"
IDS2, IDS1 = SD.default_ids("gen2"), SD.default_ids("gen1")
DELETED = SD.DELETED_LOADER_GUID
OTHER_ESP = "5b7c1d2e-3f40-4a51-8c62-7d8e9fa0b1c2"
# What rescue must write: C: and the system partition of the disk records (bcd_cases.disk_records).
C2, C1 = IDS2.os_device().hex(), IDS1.os_device().hex()
ESP2, SR1 = IDS2.system_device().hex(), IDS1.system_device().hex()
OTHER2_GPT = ("GPT disk 1e262306-0cb4-48b6-ae83-62a2908b2747, partition 32ad97f1-f370-4e75-9700-f3323f62c867")
OTHER1_MBR = "MBR signature 71c136c7, offset 105906176"
WS = f"{LOADER_GUID} (Windows Server)"


def _not_a_store(d):
    return context(d, scenario=S, system=build_system_hive(d / "SYSTEM"))


def _created_bootmgr(device_hex: str, *, gen2: bool) -> tuple:
    """The plan lines that create {bootmgr} as bcdboot writes it."""
    el = f"bcd.bootmgr: set {BM}\\Elements"
    return (f"bcd.bootmgr: set {BM}\\Description\\Type = 269484034 (REG_DWORD)",
            f"{el}\\11000001\\Element = '{device_hex}' (REG_BINARY)",
            *((f"{el}\\12000002\\Element = '\\\\EFI\\\\Microsoft\\\\Boot\\\\bootmgfw.efi' (REG_SZ)",) if gen2 else ()),
            f"{el}\\12000004\\Element = 'Windows Boot Manager' (REG_SZ)",
            f"{el}\\12000005\\Element = 'en-US' (REG_SZ)",
            f"{el}\\14000006\\Element = ['{C.GUID_GLOBALSETTINGS}'] (REG_MULTI_SZ)",
            f"{el}\\23000003\\Element = '{LOADER_GUID}' (REG_SZ)",
            f"{el}\\24000001\\Element = ['{LOADER_GUID}'] (REG_MULTI_SZ)",
            f"{el}\\24000010\\Element = ['{C.GUID_MEMDIAG}'] (REG_MULTI_SZ)",
            f"{el}\\25000004\\Element = '1e00000000000000' (REG_BINARY)")


def _devices(device_hex: str) -> tuple:
    return tuple(f"bcd.loader-device: set {LD}\\Elements\\{code}\\Element = '{device_hex}' (REG_BINARY)"
                 for code in ("11000001", "21000001"))


MISSING_BOOTMGR = ("the store has no {bootmgr} object: the boot manager has no configuration to follow; it can be "
                   f"recreated to start {WS} (the only loader whose osdevice is C:)")
IGNORE_PLAN = (f"bcd.ignore-failures: set {LD}\\Elements\\250000e0\\Element = '0100000000000000' (REG_BINARY)",
               f"bcd.ignore-failures: set {LD}\\Elements\\16000009\\Element = '00' (REG_BINARY)")

CASES = [
    # --- the store the firmware uses ---
    Case("boot-config-store", "a SYSTEM hive, not a BCD", _not_a_store, FOUND,
         "{tmp}/SYSTEM is a registry hive but not a BCD store (it has no Objects key); give the BCD file "
         "(\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD) or the disk itself; `rescue fix rebuild-bcd {tmp}/SYSTEM` "
         "makes a new store from the Windows installation (bcdboot)", plan=None, fixable=False),
    Case("boot-config-store", "no Windows Boot Loader", without_object(bcd(S), LOADER_GUID), FOUND,
         "{tmp}/BCD has no Windows Boot Loader: nothing to start; `rescue fix rebuild-bcd {tmp}/BCD` makes a new "
         "store from the Windows installation (bcdboot)", plan=None, fixable=False),
    Case("boot-config-store", "healthy Gen2 store", bcd(S), OK,
         "{tmp}/BCD: 12 objects, 1 Windows Boot Loader(s)", plan=None),
    # --- {bootmgr} ---
    Case("boot-config-bootmgr", "Gen2, no {bootmgr}", bcd(S, bootmgr=False), FOUND, MISSING_BOOTMGR,
         plan=_created_bootmgr(ESP2, gen2=True), fixable=True),
    Case("boot-config-bootmgr", "Gen1, no {bootmgr}", bcd(S, "gen1", bootmgr=False), FOUND, MISSING_BOOTMGR,
         plan=_created_bootmgr(SR1, gen2=False), fixable=True),
    Case("boot-config-bootmgr", "no {bootmgr}, BCD file only", bcd(S, bootmgr=False, on_disk=False), FOUND,
         "the store has no {bootmgr} object: the boot manager has no configuration to follow; give the disk, not "
         "the BCD file, to recreate it",
         plan=("bcd.bootmgr skipped: the store has no {bootmgr} object: the boot manager has no configuration to "
               "follow; give the disk, not the BCD file, to recreate it",), fixable=False),
    Case("boot-config-bootmgr", "Gen2, {bootmgr} on another ESP",
         bcd(S, disk=replace(IDS2, esp_guid=OTHER_ESP)), FOUND,
         f"{{bootmgr}} device is partition=(GPT disk {IDS2.disk_guid}, partition {OTHER_ESP}) [not on the attached "
         "disks] (should be partition=disk 0 partition 1)",
         plan=(f"bcd.bootmgr: set {BM}\\Elements\\11000001\\Element = '{ESP2}' (REG_BINARY)",), fixable=True),
    Case("boot-config-bootmgr", "healthy Gen2", bcd(S), OK,
         "{bootmgr} device is partition=disk 0 partition 1, path \\EFI\\Microsoft\\Boot\\bootmgfw.efi",
         plan=("bcd.bootmgr skipped: {bootmgr} is right",)),
    Case("boot-config-bootmgr", "healthy Gen1 (no path)", bcd(S, "gen1"), OK,
         "{bootmgr} device is partition=disk 0 partition 1", plan=("bcd.bootmgr skipped: {bootmgr} is right",)),
    Case("boot-config-bootmgr", "BCD file only", bcd(S, on_disk=False), UNKNOWN,
         "{bootmgr} exists; a BCD file alone does not say which partition should hold it: give the disk",
         plan=("bcd.bootmgr skipped: {bootmgr} exists; a BCD file alone does not say which partition should hold "
               "it: give the disk",)),
    # --- default and displayorder ---
    Case("boot-config-default", "default names a deleted entry", bcd(S, default_guid=DELETED), FOUND,
         f"default names {DELETED}, which does not exist; displayorder names {DELETED}, which does not exist; the "
         f"entry to start: {WS} (the only loader whose osdevice is C:)",
         plan=(f"bcd.default: set {BM}\\Elements\\23000003\\Element = '{LOADER_GUID}' (REG_SZ)",
               f"bcd.default: set {BM}\\Elements\\24000001\\Element = ['{LOADER_GUID}'] (REG_MULTI_SZ)"),
         fixable=True),
    Case("boot-config-default", "no {bootmgr}", bcd(S, bootmgr=False), FOUND,
         "no {bootmgr}, so nothing names a default (set when {bootmgr} is recreated)",
         plan=(f"bcd.default skipped: {{bootmgr}} is recreated with default {LOADER_GUID}",), fixable=True),
    Case("boot-config-default", "healthy", bcd(S), OK,
         "default {default} (Windows Server); displayorder 1 entry, all exist",
         plan=("bcd.default skipped: default and displayorder are right",)),
    # --- the loader's device and osdevice ---
    Case("boot-config-loader-device", "Gen2, on another disk",
         bcd(S, loader_device=SD.other_disk_device("gen2-boot-config")), FOUND,
         f"{{default}} (Windows Server): device partition=({OTHER2_GPT}) [not on the attached disks], osdevice "
         f"partition=({OTHER2_GPT}) [not on the attached disks]; Windows is on C:", plan=_devices(C2), fixable=True),
    Case("boot-config-loader-device", "Gen1, another disk signature",
         bcd(S, "gen1", loader_device=SD.other_disk_device("gen1-boot-config")), FOUND,
         f"{{default}} (Windows Server): device partition=({OTHER1_MBR}) [not on the attached disks], osdevice "
         f"partition=({OTHER1_MBR}) [not on the attached disks]; Windows is on C:", plan=_devices(C1), fixable=True),
    Case("boot-config-loader-device", "Gen2, device on the ESP",
         bcd(S, loader_device=IDS2.system_device()), FOUND,
         "{default} (Windows Server): device partition=disk 0 partition 1, osdevice partition=disk 0 partition 1; "
         "Windows is on C:", plan=_devices(C2), fixable=True),
    Case("boot-config-loader-device", "healthy", bcd(S), OK,
         "{default} (Windows Server): device and osdevice are partition=C:",
         plan=("bcd.loader-device skipped: device and osdevice are right",)),
    Case("boot-config-loader-device", "BCD file only", bcd(S, on_disk=False), UNKNOWN,
         "a BCD file alone does not say which partition holds Windows: give the disk",
         plan=("bcd.loader-device skipped: a BCD file alone does not say which partition holds Windows: give the "
               "disk",)),
    # --- the loader's path and systemroot ---
    Case("boot-config-loader-path", "winload.efi on a Gen1 disk", bcd(S, "gen2", disk_gen="gen1"), FOUND,
         "{default} (Windows Server): path \\Windows\\system32\\winload.efi (should be \\Windows\\system32\\winload.exe)",
         plan=(f"bcd.loader-path: set {LD}\\Elements\\12000002\\Element = '\\\\Windows\\\\system32\\\\winload.exe' "
               "(REG_SZ)",), fixable=True),
    Case("boot-config-loader-path", "systemroot \\WINNT",
         with_element(bcd(S), LOADER_GUID, C.SYSTEMROOT, V.REG_SZ, V.encode_sz("\\WINNT")), FOUND,
         "{default} (Windows Server): systemroot \\WINNT (should be \\Windows)",
         plan=(f"bcd.loader-path: set {LD}\\Elements\\22000002\\Element = '\\\\Windows' (REG_SZ)",), fixable=True),
    Case("boot-config-loader-path", "healthy Gen1", bcd(S, "gen1"), OK,
         "{default} (Windows Server): path \\Windows\\system32\\winload.exe, systemroot \\Windows",
         plan=("bcd.loader-path skipped: path and systemroot are right",)),
    # --- integrity services ---
    Case("boot-config-integrity", "loader integrityservices Disable",
         with_element(bcd(S), LOADER_GUID, 0x1500004B, V.REG_BINARY, (2).to_bytes(8, "little")), FOUND,
         "integrityservices: {bootmgr} Enable; {default} Disable",
         plan=(f"bcd.integrityservices: set {LD}\\Elements\\1500004b\\Element = '0100000000000000' (REG_BINARY)",),
         fixable=True),
    Case("boot-config-integrity", "Azure-prepared (Enable)", bcd(S), OK,
         "integrityservices: {bootmgr} Enable; {default} Enable",
         plan=("bcd.integrityservices skipped: integrityservices is not disabled",)),
    Case("boot-config-integrity", "not set (bcdboot)", bcd(S, azure_prepared=False), OK,
         "integrityservices: {bootmgr} not set; {default} not set (not set means enabled)",
         plan=("bcd.integrityservices skipped: integrityservices is not disabled",)),
    # --- --ignore-failures ---
    Case("boot-config-ignore-failures", "recovery on, --ignore-failures",
         bcd(S, ignore_failures=False, options={"ignore_failures": True}), FOUND,
         "{default} (Windows Server): bootstatuspolicy not set, recoveryenabled Yes", plan=IGNORE_PLAN, fixable=True),
    Case("boot-config-ignore-failures", "recovery on, not asked", bcd(S, ignore_failures=False), OK,
         "{default} (Windows Server): bootstatuspolicy not set, recoveryenabled Yes (left as is without "
         "--ignore-failures)", plan=("bcd.ignore-failures skipped: not asked (--ignore-failures)",)),
    Case("boot-config-ignore-failures", "already IgnoreAllFailures", bcd(S, options={"ignore_failures": True}), OK,
         "{default} (Windows Server): bootstatuspolicy IgnoreAllFailures, recoveryenabled No",
         plan=("bcd.ignore-failures skipped: nothing to change",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)


def test_triage_says_an_unreadable_store_once(tmp_path):
    """The store check turns "the BCD cannot be read" into its own finding (FOUND, rebuild it): the
    triage of every scenario must not repeat it as a generic "BCD readable: cannot tell" line."""
    from rescue.repairs.base import scenarios
    from rescue.repairs.runner import diagnose

    diag = diagnose(_not_a_store(tmp_path), scenarios())
    ids = [f.id for f in diag.findings]
    assert "boot-config-store" in ids and "bcd-unreadable" not in ids
    # Without the store check (another scenario alone), the generic line is still the answer.
    other = tmp_path / "other"
    other.mkdir()
    alone = diagnose(_not_a_store(other), [s for s in scenarios() if s.name == "no-memory"])
    assert [f.id for f in alone.findings if f.id.endswith("unreadable")] == ["bcd-unreadable"]
