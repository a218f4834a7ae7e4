"""Where the system partition is when the store may be missing (rescue.layout_scan._find_system):
records as the disk session reports them, no appliance."""

from __future__ import annotations

import pytest

from rescue.disk.records import DiskInfo, Partition
from rescue.layout import BcdLocation, SystemPartition, WindowsInstall
from rescue.layout_scan import ESP, _find_system

MiB = 1 << 20
BASIC = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


def gpt_disk() -> DiskInfo:
    parts = (Partition(0, 1, "/dev/sda1", MiB, 100 * MiB, gpt_type=ESP),
             Partition(0, 2, "/dev/sda2", 101 * MiB, 16 * MiB, gpt_type="E3C9E316-0B5C-4DB8-817D-F92DF00215AE"),
             Partition(0, 3, "/dev/sda3", 117 * MiB, 900 * MiB, gpt_type=BASIC))
    return DiskInfo(0, None, "/dev/sda", 1 << 30, "gpt", None, "2b0f0d38-8c55-4d4b-a8f0-3f3c0a3f61e1", parts)


def mbr_disk(*, active: int | None, reserved: bool = True) -> DiskInfo:
    parts = []
    n = 1
    if reserved:
        parts.append(Partition(0, 1, "/dev/sda1", MiB, 100 * MiB, mbr_type=7, bootable=active == 1,
                               fstype="ntfs", label="System Reserved"))
        n = 2
    parts.append(Partition(0, n, f"/dev/sda{n}", 101 * MiB, 900 * MiB, mbr_type=7, bootable=active == n,
                           fstype="ntfs", label="Windows"))
    return DiskInfo(0, None, "/dev/sda", 1 << 30, "mbr", 0x1234ABCD, None, tuple(parts))


def win(partition: int) -> WindowsInstall:
    return WindowsInstall(0, partition, "Windows Server 2016 Datacenter", "10.0", 14393, 1)


@pytest.mark.parametrize("disk,bcd,root,want", [
    (gpt_disk(), None, win(3), SystemPartition(0, 1, "esp")),                                  # store missing
    (gpt_disk(), BcdLocation(0, 1, "\\EFI\\Microsoft\\Boot\\BCD"), win(3), SystemPartition(0, 1, "esp")),
    (mbr_disk(active=1), None, win(2), SystemPartition(0, 1, "active", True)),
    (mbr_disk(active=None), None, win(2), SystemPartition(0, 1, "system-reserved", False)),
    (mbr_disk(active=None, reserved=False), None, win(1), SystemPartition(0, 1, "windows", False)),
    (mbr_disk(active=1, reserved=False), BcdLocation(0, 1, "\\Boot\\BCD"), win(1), SystemPartition(0, 1, "active", True)),
    (mbr_disk(active=None), BcdLocation(0, 1, "\\Boot\\BCD"), win(2), SystemPartition(0, 1, "system-reserved", False)),
    (gpt_disk(), None, None, None),                                                             # no Windows: no guess
])
def test_system_partition(disk, bcd, root, want):
    assert _find_system([disk], bcd, root) == want
