"""Acceleration choice and its remembered verdict; MountedDevices decoding (no appliance)."""

import struct
import uuid

import pytest

from rescue.disk import accel
from rescue.disk.session import DiskInfo, Partition
from rescue.errors import UsageError
from rescue.layout import parse_mounted_devices


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESCUE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RESCUE_ACCEL", raising=False)
    return tmp_path


def test_explicit_choices(monkeypatch):
    assert accel.plan("tcg") == ["tcg"]
    assert accel.plan("kvm") == ["kvm"]
    monkeypatch.setenv("RESCUE_ACCEL", "tcg")
    assert accel.plan(None) == ["tcg"]
    with pytest.raises(UsageError):
        accel.plan("hax")


def test_auto_without_kvm_goes_straight_to_tcg(monkeypatch):
    monkeypatch.setattr(accel, "kvm_usable", lambda: False)
    assert accel.plan("auto") == ["tcg"]


def test_auto_remembers_a_hang(monkeypatch, cache):
    monkeypatch.setattr(accel, "kvm_usable", lambda: True)
    assert accel.plan("auto") == ["kvm", "tcg"]
    accel.remember("tcg", "kvm launch made no progress in 45 s")
    assert accel.plan("auto") == ["tcg"]
    assert (cache / "accel.json").exists()
    # an explicit choice still wins over the verdict
    assert accel.plan("kvm") == ["kvm"]
    accel.remember("kvm", "kvm launch finished")
    assert accel.plan("auto") == ["kvm", "tcg"]


def test_corrupt_verdict_file_is_ignored(cache, monkeypatch):
    monkeypatch.setattr(accel, "kvm_usable", lambda: True)
    (cache / "accel.json").write_text("{not json")
    assert accel.plan("auto") == ["kvm", "tcg"]


def _disk(index, table, partitions, sig=None):
    return DiskInfo(index=index, image=None, device=f"/dev/sd{'ab'[index]}", size=1 << 30, table=table,
                    mbr_signature=sig, gpt_guid=None, partitions=tuple(partitions))


def test_mounted_devices_mbr_and_gpt():
    g = uuid.uuid4()
    mbr = _disk(0, "mbr", [Partition(0, 1, "/dev/sda1", 1 << 20, 100 << 20),
                           Partition(0, 2, "/dev/sda2", 101 << 20, 900 << 20)], sig=0xDDBA6BBB)
    gpt = _disk(1, "gpt", [Partition(1, 1, "/dev/sdb1", 1 << 20, 100 << 20, gpt_guid=str(g).upper())])
    values = [
        ("\\DosDevices\\C:", struct.pack("<IQ", 0xDDBA6BBB, 101 << 20)),
        ("\\DosDevices\\E:", b"DMIO:ID:" + g.bytes_le),
        ("\\DosDevices\\F:", struct.pack("<IQ", 0x12345678, 1 << 20)),  # a disk that is not attached
        ("\\??\\Volume{0b5e1dc6-0000-0000-0000-100000000000}", struct.pack("<IQ", 0xDDBA6BBB, 1 << 20)),
    ]
    m = parse_mounted_devices(values, [mbr, gpt])
    assert [(x.letter, x.disk, x.partition) for x in m] == [("C:", 0, 2), ("E:", 1, 1), ("F:", None, None)]
