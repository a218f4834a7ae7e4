"""Samples for the BCD scenarios' validation cases: a store built with rescue.samples.build_bcd_hive
and the disk it sits on (partition tables as the session reads them, the layout discovery makes),
so checks judge devices exactly as on an attached disk, without the appliance."""

from __future__ import annotations

from pathlib import Path

from harness import context
from rescue.bcd.bootconfig import disk_facts
from rescue.disk.records import DiskInfo, Partition
from rescue.layout import BcdLocation, LetterMapping, Volume, WindowsInstall, WindowsLayout
from rescue.repairs.scenarios._bcd import FACTS_KEY
from rescue.samples.bcd_store import build_bcd_hive
from rescue.samples.disks import default_ids

MiB = 1 << 20


def disk_records(generation: str, ids=None):
    """(partition tables, layout) of the disk `ids` (default: default_ids(generation)) names: Gen2
    ESP p1 + MSR p2 + C: p3 on GPT, Gen1 System Reserved p1 + C: p2 on MBR."""
    ids = ids or default_ids(generation)
    if generation == "gen2":
        parts = (Partition(0, 1, "/dev/sda1", MiB, 100 * MiB, gpt_guid=ids.esp_guid.upper(), fstype="vfat"),
                 Partition(0, 2, "/dev/sda2", 101 * MiB, 16 * MiB, gpt_guid="0f0e0d0c-0b0a-4909-8807-060504030201"),
                 Partition(0, 3, "/dev/sda3", 117 * MiB, 900 * MiB, gpt_guid=ids.os_guid.upper(), fstype="ntfs"))
        disk = DiskInfo(0, None, "/dev/sda", 1024 * MiB, "gpt", None, ids.disk_guid.upper(), parts)
        root, bcd = (0, 3), BcdLocation(0, 1, "\\EFI\\Microsoft\\Boot\\BCD")
    else:
        parts = (Partition(0, 1, "/dev/sda1", ids.system_offset, 100 * MiB, mbr_type=7, bootable=True, fstype="ntfs"),
                 Partition(0, 2, "/dev/sda2", ids.os_offset, 900 * MiB, mbr_type=7, fstype="ntfs"))
        disk = DiskInfo(0, None, "/dev/sda", 1024 * MiB, "mbr", ids.mbr_signature, None, parts)
        root, bcd = (0, 2), BcdLocation(0, 1, "\\Boot\\BCD")
    win = WindowsInstall(*root, "Windows Server 2019 Datacenter", "10.0", 17763, 1)
    vols = (Volume(0, root[1], "ntfs", "Windows", 900 * MiB, 600 * MiB, "C:", "windows", "ok"),)
    layout = WindowsLayout(("os.vhd",), ("vhd",), ("gpt" if generation == "gen2" else "mbr",), generation, vols,
                           (win,), win, bcd, (LetterMapping("C:", 0, root[1], ""),))
    return (disk,), layout


def bcd(scenario: str, generation: str = "gen2", *, on_disk: bool = True, disk_gen: str | None = None,
        options=None, **opts):
    """A case builder: the sample store with `opts` (build_bcd_hive), on its disk (of generation
    `disk_gen`, default the store's) unless `on_disk` is False (then the checks see only the BCD file, as
    `rescue diagnose BCD`)."""
    def build(d: Path):
        ctx = context(d, scenario=scenario, options=options,
                      bcd=build_bcd_hive(d / "BCD", generation=generation, **opts))
        if on_disk:
            disks, layout = disk_records(disk_gen or generation)
            ctx.preset(FACTS_KEY, disk_facts(disks, layout))
        return ctx
    return build


def with_element(build, guid: str, code: int, reg_type: int, data: bytes):
    """A builder whose store then gets element `code` of object `guid` set to (reg_type, data) with
    the hive writer (a value build_bcd_hive has no option for, e.g. integrityservices Disable)."""
    from rescue.bcd.constants import key_name
    from rescue.hive import Hive
    from rescue.repairs import sources

    def make(d: Path):
        ctx = build(d)
        path = Path(sources.bcd(ctx).ref.path)
        with Hive(path, write=True) as h:
            h.set(f"Objects\\{guid}\\Elements\\{key_name(code)}", "Element", reg_type, data)
            h.commit()
        sources.preset_bcd(ctx, path)
        return ctx
    return make


def without_object(build, guid: str):
    """A builder whose store then loses object `guid` (e.g. its only Windows Boot Loader)."""
    from rescue.hive import Hive
    from rescue.repairs import sources

    def make(d: Path):
        ctx = build(d)
        path = Path(sources.bcd(ctx).ref.path)
        with Hive(path, write=True) as h:
            h.delete_key(f"Objects\\{guid}")
            h.commit()
        sources.preset_bcd(ctx, path)
        return ctx
    return make
