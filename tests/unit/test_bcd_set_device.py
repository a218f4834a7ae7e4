"""`rescue bcd set ... device VALUE`: the device spellings bcdedit accepts that can be known offline,
written as the bytes bcdedit writes (the real stores' values, BCD-REFERENCE.md §6)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rescue.bcd import constants as C
from rescue.bcd.devices import DeviceContext, decode_device
from rescue.bcd.edit import boot_device, locate_device, parse_device, plan_set
from rescue.bcd.model import BcdStore
from rescue.errors import NotFoundError, UsageError
from rescue.samples.bcd_store import LOADER_GUID, build_bcd_hive
from rescue.samples.disks import default_ids
from rescue.safety.plan import FileRef

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from bcd_cases import disk_records  # noqa: E402
from test_bcd_devices import BOOT, LOCATE  # noqa: E402


def _devices(gen: str) -> DeviceContext:
    disks, layout = disk_records(gen)
    return DeviceContext(disks, layout.letters, layout.disk_paths)


def test_boot_and_locate_are_the_real_stores_bytes():
    assert boot_device() == BOOT
    assert locate_device(C.PATH) == LOCATE                      # windeploy loader device
    assert parse_device("locate", C.DEVICE) == LOCATE
    assert decode_device(parse_device("LOCATE", C.OSDEVICE)).locate_element == C.SYSTEMROOT
    assert parse_device("boot", C.DEVICE) == BOOT


@pytest.mark.parametrize("gen", ["gen2", "gen1"])
def test_partition_by_letter_and_by_number(gen):
    ids = default_ids(gen)
    win = 3 if gen == "gen2" else 2
    devices = _devices(gen)
    assert parse_device("partition=C:", C.OSDEVICE, devices) == ids.os_device()
    assert parse_device("partition=c:", C.OSDEVICE, devices) == ids.os_device()
    assert parse_device(f"partition=0:{win}", C.DEVICE, devices) == ids.os_device()
    assert parse_device("partition=os.vhd:1", C.DEVICE, devices, ["os.vhd"]) == ids.system_device()


def test_refusals():
    devices = _devices("gen2")
    with pytest.raises(NotFoundError, match="No volume of the attached disks is F:"):
        parse_device("partition=F:", C.DEVICE, devices)
    with pytest.raises(NotFoundError, match="no partition 9 on disk 0"):
        parse_device("partition=0:9", C.DEVICE, devices)
    with pytest.raises(UsageError, match="needs the disk, not a BCD file"):
        parse_device("partition=C:", C.DEVICE, None)
    with pytest.raises(UsageError, match="not a device rescue can set offline"):
        parse_device("ramdisk=[C:]\\x.wim", C.DEVICE, devices)


def test_plan_set_device(tmp_path):
    ids = default_ids("gen2")
    store = BcdStore.open(build_bcd_hive(tmp_path / "BCD"))
    ref = FileRef(str(tmp_path / "BCD"))
    step = plan_set(store, ref, "{default}", "osdevice", ["partition=C:"], _devices("gen2"))
    assert step.changes == () and step.skipped == f"{LOADER_GUID} osdevice is already partition=C:"
    step = plan_set(store, ref, "{default}", "device", ["boot"], _devices("gen2"))
    (change,) = step.changes
    assert (change.key, change.data, change.before_data) == (
        f"Objects\\{LOADER_GUID}\\Elements\\11000001", BOOT, ids.os_device())
