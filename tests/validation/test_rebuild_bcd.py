"""Validation cases of `rebuild-bcd`: each check on boot facts with the cause and without, with the
exact finding and the exact planned change. The facts (store state, system partition, template,
boot files) are what rescue.bcd.bootfacts reads from a disk; here they are built on the host."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness import Case, context, run_case
from rescue.bcd.bootfacts import BootFacts, BootFile, StoreStatus
from rescue.bcd.rebuild import BootTarget, partition_device
from rescue.layout import SystemPartition
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.safety.plan import FileRef
from rescue.samples.bcd_store import build_bcd_template

S = "rebuild-bcd"
DISK = "2b0f0d38-8c55-4d4b-a8f0-3f3c0a3f61e1"
ESP = "6a4e3f0c-1f3e-4a55-9d3e-0d6f0ef0c0a1"
OS = "c3e6f0b2-5e0e-4bb1-8a8c-1d2f3e4a5b6c"


def _target(gen: str) -> BootTarget:
    if gen == "gen2":
        return BootTarget("gen2", partition_device(style="gpt", partition_guid=ESP, disk_guid=DISK),
                          partition_device(style="gpt", partition_guid=OS, disk_guid=DISK), "Windows Server")
    return BootTarget("gen1", partition_device(style="mbr", mbr_signature=0x1234ABCD, offset=1 << 20),
                      partition_device(style="mbr", mbr_signature=0x1234ABCD, offset=101 << 20), "Windows Server")


def _boot_files(d: Path, gen: str, missing: tuple[str, ...]) -> tuple[BootFile, ...]:
    """Source files on the host (read by the plan), destinations named on partition 1."""
    names = (("bootmgfw.efi", "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"), ("memtest.efi", "\\EFI\\Microsoft\\Boot\\memtest.efi"),
             ("bootmgfw.efi", "\\EFI\\Boot\\bootx64.efi")) if gen == "gen2" else \
        (("bootmgr", "\\bootmgr"), ("memtest.exe", "\\Boot\\memtest.exe"))
    out = []
    for name, dest in names:
        src = d / "Boot" / name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(b"MZ" + name.encode() * 10)
        out.append(BootFile(FileRef(str(src)), FileRef(dest, 0, 1), src.stat().st_size, dest not in missing))
    return tuple(out)


def mbr(*flags: int, gpt: bool = False) -> bytes:
    """A disk's sector 0: boot code, signature 0x1234ABCD, System Reserved (1) and Windows (2)
    primary NTFS entries with the given boot indicators (CHS fields non-zero, to see they stay)."""
    sector = bytearray(b"\xfa\x33\xc0" + bytes(437)) + (0x1234ABCD).to_bytes(4, "little") + bytes(2)
    entries = [(0xEE, 1, 0xFFFFFFFF)] if gpt else [(0x07, 2048, 204800), (0x07, 206848, 4 << 20)]
    for i, (ptype, lba, count) in enumerate(entries):
        flag = flags[i] if i < len(flags) else 0
        sector += struct.pack("<B3sB3sII", flag, b"\x20\x21\x00", ptype, b"\xfe\xff\xff", lba, count)
    sector += bytes(16 * (4 - len(entries))) + b"\x55\xaa"
    assert len(sector) == 512
    return bytes(sector)


def _facts(*, gen: str = "gen2", status: StoreStatus = StoreStatus.MISSING, template: bool = True,
           missing_files: tuple[str, ...] = (), manager: bool = True, active: bool = True,
           logs: tuple[str, ...] = (), options: dict | None = None, sector: bytes | None = None):
    def build(d: Path):
        ctx = context(d, scenario=S, options=options)
        store = "\\EFI\\Microsoft\\Boot\\BCD" if gen == "gen2" else "\\Boot\\BCD"
        label = "os.vhd partition 1"
        why = {StoreStatus.MISSING: f"{store} is missing on {label}",
               StoreStatus.CORRUPT: f"{store} cannot be read as a BCD store: it is not a registry hive",
               StoreStatus.PRESENT: "", StoreStatus.UNSAFE: f"{store} is dirty and its logs cannot be replayed"}[status]
        how = "esp" if gen == "gen2" else ("active" if active else "system-reserved")
        facts = BootFacts(
            generation=gen, system=SystemPartition(0, 1, how, active and gen == "gen1"),
            store=FileRef(store, 0, 1), store_status=status, store_problem=why,
            logs=tuple(FileRef(store + s, 0, 1) for s in logs),
            template=build_bcd_template(d / "BCD-Template") if template else None,
            boot_target=_target(gen) if template else None,
            problem=None if template else "\\Windows\\System32\\config\\BCD-Template is missing on the Windows volume "
                                          "(os.vhd partition 3)",
            boot_manager=FileRef("\\EFI\\Microsoft\\Boot\\bootmgfw.efi" if gen == "gen2" else "\\bootmgr", 0, 1),
            boot_manager_present=manager, system_label=label, store_label=f"{label}: {store}",
            activate_command="guestfish --format=vpc -a os.vhd run : part-set-bootable /dev/sda 1 true",
            mbr_sector=(sector if sector is not None else mbr(0x80 if active else 0)) if gen == "gen1" else b"",
            disk_label="os.vhd")
        ctx.preset("bootfacts", facts)
        if template:
            ctx.preset("bootfiles", (_boot_files(d, gen, missing_files), None))
        return ctx
    return build


GEN2_STORE = "bcd.rebuild: write file \\EFI\\Microsoft\\Boot\\BCD (28,672 bytes)"
GEN1_STORE = "bcd.rebuild: write file \\Boot\\BCD (24,576 bytes)"

CASES = [
    Case("bcd-store", "gen2 store missing", _facts(), FOUND,
         "\\EFI\\Microsoft\\Boot\\BCD is missing on os.vhd partition 1 (the firmware has no boot configuration to read)",
         (GEN2_STORE,), fixable=True),
    Case("bcd-store", "gen1 store corrupt, logs kept", _facts(gen="gen1", status=StoreStatus.CORRUPT, logs=(".LOG1",)),
         FOUND, "\\Boot\\BCD cannot be read as a BCD store: it is not a registry hive (the firmware has no boot "
                "configuration to read)",
         (GEN1_STORE, "bcd.rebuild: write file \\Boot\\BCD.LOG1 (0 bytes)"), fixable=True),
    Case("bcd-store", "store missing, no BCD-Template", _facts(template=False), FOUND,
         "\\EFI\\Microsoft\\Boot\\BCD is missing on os.vhd partition 1; cannot rebuild it: "
         "\\Windows\\System32\\config\\BCD-Template is missing on the Windows volume (os.vhd partition 3)",
         ("bcd.rebuild skipped: cannot rebuild: \\Windows\\System32\\config\\BCD-Template is missing on the Windows "
          "volume (os.vhd partition 3)",), fixable=False),
    Case("bcd-store", "store parses", _facts(status=StoreStatus.PRESENT), OK,
         "os.vhd partition 1: \\EFI\\Microsoft\\Boot\\BCD parses",
         ("bcd.rebuild skipped: the store parses (give --rebuild to make a new one anyway)",), fixable=False),
    Case("bcd-store", "store parses, --rebuild", _facts(status=StoreStatus.PRESENT, options={"rebuild": True}), OK,
         "os.vhd partition 1: \\EFI\\Microsoft\\Boot\\BCD parses", (GEN2_STORE,), fixable=True),
    Case("bcd-store", "dirty store whose logs do not replay", _facts(status=StoreStatus.UNSAFE), UNKNOWN,
         "\\EFI\\Microsoft\\Boot\\BCD is dirty and its logs cannot be replayed", None),
    Case("boot-files", "gen2 boot manager missing", _facts(status=StoreStatus.PRESENT, manager=False,
                                                            missing_files=("\\EFI\\Microsoft\\Boot\\bootmgfw.efi",)),
         FOUND, "os.vhd partition 1: \\EFI\\Microsoft\\Boot\\bootmgfw.efi is missing (the firmware has nothing to start)",
         ("bcd.bootfiles: write file \\EFI\\Microsoft\\Boot\\bootmgfw.efi (122 bytes)",), fixable=True),
    Case("boot-files", "gen1 store rebuilt: bcdboot copies what differs", _facts(gen="gen1", missing_files=("\\Boot\\memtest.exe",)),
         OK, "os.vhd partition 1: \\bootmgr present",
         ("bcd.bootfiles: write file \\Boot\\memtest.exe (112 bytes)",), fixable=False),
    Case("boot-files", "everything there, store parses", _facts(status=StoreStatus.PRESENT), OK,
         "os.vhd partition 1: \\EFI\\Microsoft\\Boot\\bootmgfw.efi present", None),
    Case("boot-files", "store rebuilt, boot files identical", _facts(), OK,
         "os.vhd partition 1: \\EFI\\Microsoft\\Boot\\bootmgfw.efi present",
         ("bcd.bootfiles skipped: every boot file is already there, byte for byte",)),
    Case("active-partition", "gen1 system partition not active", _facts(gen="gen1", active=False), FOUND,
         "no partition is active on os.vhd: the BIOS boots none (bootmgr belongs on os.vhd partition 1, found as "
         "system-reserved)",
         ("mbr.active: set the MBR boot indicator of partition 1 to 0x80 (active)",), fixable=True),
    Case("active-partition", "gen1 Windows partition active, not the system partition",
         _facts(gen="gen1", active=False, sector=mbr(0, 0x80)), FOUND,
         "partition 2 is active on os.vhd: the BIOS boots it (bootmgr belongs on os.vhd partition 1, found as "
         "system-reserved)",
         ("mbr.active: set the MBR boot indicator of partition 1 to 0x80 (active), clear it on partition 2",),
         fixable=True),
    Case("active-partition", "gen1 sector 0 is a protective MBR: refused",
         _facts(gen="gen1", active=False, sector=mbr(gpt=True)), FOUND,
         "no partition is active on os.vhd: the BIOS boots none (bootmgr belongs on os.vhd partition 1, found as "
         "system-reserved)",
         ("mbr.active skipped: Cannot mark partition 1 of os.vhd active: the disk has a GPT: its protective MBR must "
          "not mark a partition active (UEFI firmware boots the EFI system partition); mark it active by hand "
          "(`guestfish --format=vpc -a os.vhd run : part-set-bootable /dev/sda 1 true`)",), fixable=False),
    Case("active-partition", "gen1 active", _facts(gen="gen1"), OK, "os.vhd partition 1 is active", None),
    Case("active-partition", "gen2", _facts(), OK,
         "Gen2 (UEFI): the firmware boots the EFI system partition, no active flag", None),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)


def _planned(folder: Path, build=None, check_id: str = "bcd-store"):
    from rescue.repairs.base import get
    from rescue.repairs.findings import Diagnosis
    from rescue.repairs.runner import run_checks

    folder.mkdir(parents=True, exist_ok=True)
    ctx = (build or _facts())(folder)
    scenario = get(S)
    try:
        ctx.diagnosis = Diagnosis(ctx.disks, tuple(run_checks(ctx, scenario)))
        check = next(c for c in scenario.checks if c.id == check_id)
        (step,) = check.planned(ctx, ctx.finding(check_id))
    finally:
        ctx.target.close()
    return step


def _planned_store(folder: Path):
    return _planned(folder)


def test_planned_store_is_the_rebuilt_one(tmp_path):
    """The bytes the plan writes are a store naming the new loader as default; planning twice (a dry
    run, then the run) gives the same bytes."""
    from rescue.bcd import constants as C
    from rescue.bcd.model import BcdStore

    step = _planned_store(tmp_path / "a")
    (write,) = step.changes
    out = tmp_path / "planned-BCD"
    out.write_bytes(write.data)
    store = BcdStore.open(out)
    target = _target("gen2")
    bootmgr = next(o for o in store.objects if o.alias == "{bootmgr}")
    assert bootmgr.value(C.BOOTMGR_DEFAULT) == target.loader_guid
    assert step.notes[1] == f"default loader {target.loader_guid} \"Windows Server\" (resume {target.resume_guid})"
    # Planning again (the dry run, then the run) makes the same store; only hivex's last-written
    # timestamps differ.
    again = tmp_path / "again-BCD"
    again.write_bytes(_planned_store(tmp_path / "b").changes[0].data)
    def content(path):
        return {(o.identifier, o.type): {(e.code, e.reg_type, e.raw) for e in o.elements}
                for o in BcdStore.open(path).objects}

    assert content(again) == content(out)


def test_planned_active_flag_changes_one_byte(tmp_path):
    """The planned sector differs from the disk's in the boot indicator of the system partition
    only (and the one it clears); everything else, CHS fields and disk signature included, stays."""
    from rescue.disk import ptable

    for before, changed in ((mbr(0, 0), [446]), (mbr(0, 0x80), [446, 462])):
        step = _planned(tmp_path / f"p{len(changed)}", _facts(gen="gen1", active=False, sector=before), "active-partition")
        (change,) = step.changes
        assert change.kind == "set-active-partition" and change.to_json()["kind"] == "set-active-partition"
        assert change.before == before and list(change.changed_offsets()) == changed
        assert ptable.boot_indicators(change.after) == (0x80, 0, 0, 0)
        assert change.after[:446] == before[:446] and change.after[510:] == b"\x55\xaa"


@pytest.mark.parametrize("path,fmt,block,want", [
    ("/dev/sdc", "raw", True, "sfdisk --activate /dev/sdc 1"),
    ("os.raw", "raw", False, "sfdisk --activate os.raw 1"),
    ("os.vhd", "vpc", False, "guestfish --format=vpc -a os.vhd run : part-set-bootable /dev/sda 1 true"),
])
def test_activate_command(path, fmt, block, want):
    from rescue.bcd.bootfacts import activate_command
    from rescue.disk.formats import DiskImage

    assert activate_command(DiskImage(path, fmt, 1 << 30, block), 1) == want
