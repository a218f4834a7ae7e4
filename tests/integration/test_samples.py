"""The sample disks are what rescue/samples/__init__.py says they are.

One appliance launch (read-only, on the cached images themselves) checks the partition tables as
DiskSession reports them, the ESP / System Reserved contents, the Windows files, C:'s free space and
that MountedDevices names the partitions the disks really have. The other checks read the image
files on the host (formats, conversions, the BitLocker stamp, the bad inputs). Building the samples
(first use, cached) costs one more launch.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from rescue import samples
from rescue.disk.formats import detect
from rescue.disk.session import DiskSession
from rescue.errors import InputError
from rescue.hive import Hive, read_header
from rescue.layout import parse_mounted_devices
from rescue.samples import bcd_store as B
from rescue.samples import hives as H
from rescue.samples.disks import (BASIC_DATA_TYPE, BITLOCKER_OEM_ID, ESP_TYPE, MSR_TYPE, ids_for,
                                  real_system_b)

pytestmark = pytest.mark.appliance
MiB = 1 << 20
CFG = "/Windows/System32/config"


def _path(name: str) -> str:
    return str(samples.sample_path(name))


def test_gen1_and_gen2_samples_through_one_read_only_session():
    # Few disks on purpose: DiskSession.disks() probes every filesystem of every attached disk,
    # minutes under TCG on a busy host. (The hibernated sample's ntfs-3g verdict is asserted by the
    # builder itself, in the build session.)
    names = ["gen1-broken.raw", "gen2-broken.raw", "data-disk.raw"]
    images = [detect(_path(n)) for n in names]
    g1, g2, data = ids_for("gen1-broken"), ids_for("gen2-broken"), ids_for("data-disk")
    with DiskSession(images, accel="tcg") as s, tempfile.TemporaryDirectory() as tmp:
        d1, d2, dd = s.disks()[:3]

        # Gen1: MBR with Windows' disk signature, active System Reserved NTFS, then C:.
        assert (d1.table, d1.mbr_signature) == ("mbr", g1.mbr_signature)
        sr, c1 = d1.partitions
        assert (sr.start, sr.size, sr.bootable, sr.mbr_type, sr.fstype, sr.label) == (
            MiB, 100 * MiB, True, 0x07, "ntfs", "System Reserved")
        assert (c1.start, c1.size, c1.bootable, c1.fstype, c1.label) == (101 * MiB, 256 * MiB, False, "ntfs", "Windows")
        mp = s.mount(sr)
        assert s.is_file(mp + "/Boot/BCD") and s.is_file(mp + "/bootmgr")
        s.download(mp + "/Boot/BCD", Path(tmp) / "bcd1")
        bcd1 = Hive(Path(tmp) / "bcd1")
        assert bcd1.get(f"Objects\\{B.LOADER_GUID}\\Elements\\21000001", "Element").data == \
            H.mbr_partition_device(d1.mbr_signature, c1.start)

        # Gen2: GPT with the disk GUID and partition GUIDs the hives name; ESP FAT32, MSR, C:.
        assert (d2.table, d2.gpt_guid) == ("gpt", g2.disk_guid.upper())
        esp, msr, c2 = d2.partitions
        assert (esp.start, esp.size, esp.gpt_type, esp.gpt_guid, esp.fstype) == (
            MiB, 100 * MiB, ESP_TYPE, g2.esp_guid.upper(), "vfat")
        assert (msr.start, msr.size, msr.gpt_type, msr.fstype) == (101 * MiB, 16 * MiB, MSR_TYPE, None)
        assert (c2.start, c2.gpt_type, c2.gpt_guid, c2.fstype, c2.label) == (
            117 * MiB, BASIC_DATA_TYPE, g2.os_guid.upper(), "ntfs", "Windows")
        mp = s.mount(esp)
        for f in ("BCD", "BCD.LOG1", "bootmgfw.efi", "memtest.efi"):
            assert s.is_file(f"{mp}/EFI/Microsoft/Boot/{f}"), f
        s.download(mp + "/EFI/Microsoft/Boot/BCD", Path(tmp) / "bcd2")
        bcd2 = Hive(Path(tmp) / "bcd2")
        dev = bcd2.get(f"Objects\\{B.LOADER_GUID}\\Elements\\21000001", "Element").data
        assert dev[32:48] == uuid.UUID(c2.gpt_guid).bytes_le and dev[56:72] == uuid.UUID(d2.gpt_guid).bytes_le
        badmem = bcd2.get("Objects\\{5189b25c-5558-4bf2-bca4-289b11bd29e2}\\Elements\\1700000a", "Element").data
        assert badmem == b"".join(struct.pack("<Q", p) for p in samples.BROKEN_PFNS)

        # C: of both: hives (clean, empty logs), boot files, the page file on C:, under 300 MB free.
        for c, loader in ((c1, "winload.exe"), (c2, "winload.efi")):
            mp = s.mount(c)
            for f in ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT"):
                assert s.is_file(f"{mp}{CFG}/{f}"), f
            assert s.file_size(f"{mp}{CFG}/SYSTEM.LOG1") == 0 == s.file_size(f"{mp}{CFG}/SYSTEM.LOG2")
            assert s.is_file(f"{mp}/Windows/System32/{loader}")
            assert s.file_size(mp + "/pagefile.sys") == 16 * MiB
            assert s.is_file(mp + "/Users/azureuser/NTUSER.DAT")
            free = s.usage(mp).free_bytes
            assert 150 * 10**6 < free < 300 * 10**6, free

        # MountedDevices, matched against the partitions DiskSession found: C: is the OS partition
        # of that very disk, E: the data disk's NTFS partition, D: (temporary disk) not attached.
        for disk, c in ((d1, c1), (d2, c2)):
            local = Path(tmp) / f"SYSTEM-{disk.index}"
            s.download(s.mount(c) + f"{CFG}/SYSTEM", local)
            h = Hive(local)
            assert not read_header(local).dirty
            vals = [(v.name, v.data) for v in h.values(h.node("MountedDevices"))]
            letters = {m.letter: (m.disk, m.partition) for m in parse_mounted_devices(vals, s.disks())}
            assert letters["C:"] == (disk.index, c.number)
            assert letters["E:"] == (2, 2)
            assert letters["D:"] == (None, None)
        assert dd.partitions[1].gpt_guid == data.data_guid.upper() and dd.partitions[1].label == "Data"


def test_formats_and_special_files_on_the_host():
    raw = _path("gen2-broken.raw")
    for fmt, qemu in (("vhd", "vpc"), ("vhdx", "vhdx"), ("qcow2", "qcow2")):
        img = detect(_path(f"gen2-broken.{fmt}"))
        assert img.format == qemu and img.virtual_size == 1024 * MiB, fmt
        # Lossless: the converted image holds the raw image's bytes.
        subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", qemu, raw, img.path], check=True)
    assert detect(_path("gen1-broken.vhd")).subformat == "dynamic"
    with pytest.raises(InputError, match="truncated"):
        detect(_path("truncated.vhd"))
    with pytest.raises(InputError):
        detect(_path("not-a-disk.vhd"))
    empty = Path(_path("empty.raw"))
    assert empty.stat().st_size == 64 * MiB and empty.read_bytes()[:1024] == bytes(1024)


def test_bitlocker_and_dirty_hive_samples_on_the_host():
    start = 117 * MiB
    with open(_path("bitlocker.raw"), "rb") as fh:
        fh.seek(start + 3)
        assert fh.read(8) == BITLOCKER_OEM_ID
    # The dirty-hive disk's C: GUID is the one its SYSTEM's MountedDevices names.
    ids = ids_for("dirty-hive")
    table = subprocess.run(["sfdisk", "--json", _path("dirty-hive.raw")], check=True, capture_output=True, text=True)
    assert ids.os_guid.upper() in table.stdout.upper()
    if real_system_b() is None:
        pytest.skip("realdata SYSTEM_B absent: the dirty-hive sample uses a synthetic log")
    assert ids.os_guid == "09931f21-7faf-44a9-81d8-1e73c14b9eaf"


def test_catalogue_names_resolve():
    assert "gen2-broken.vhd" in samples.names() and "truncated.vhd" in samples.names()
    with pytest.raises(KeyError, match="unknown sample"):
        samples.sample_path("gen3-broken.vhd")
