"""Host-side MBR/GPT parsing, checked against tables written by sfdisk (a real partitioner)."""

import subprocess
import uuid

import pytest

from rescue.disk import ptable


def sfdisk(path, script):
    subprocess.run(["sfdisk", "-q", str(path)], input=script, text=True, check=True, capture_output=True)


def head(path):
    with open(path, "rb") as fh:
        return fh.read(ptable.HEAD_BYTES)


@pytest.fixture
def disk(tmp_path):
    p = tmp_path / "disk.raw"
    with open(p, "wb") as fh:
        fh.truncate(256 * 1024 * 1024)
    return p


def test_mbr_with_active_system_reserved(disk):
    sfdisk(disk, "label: dos\nlabel-id: 0xddba6bbb\nstart=2048, size=204800, type=7, bootable\n"
                 "start=206848, type=7\n")
    t = ptable.parse(head(disk))
    assert (t.table, t.mbr_signature, t.needs_fallback) == ("mbr", 0xDDBA6BBB, False)
    assert [(p.number, p.start, p.mbr_type, p.bootable) for p in t.partitions] == [
        (1, 1 << 20, 7, True), (2, 206848 * 512, 7, False)]
    assert t.partitions[1].size == (256 * 2048 - 206848) * 512


def test_gpt_types_guids_names(disk):
    esp, c = uuid.uuid4(), uuid.uuid4()
    dg = uuid.uuid4()
    sfdisk(disk, f"label: gpt\nlabel-id: {dg}\n"
                 f"start=2048, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid={esp}, name=\"EFI system partition\"\n"
                 f"start=206848, size=32768, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\n"
                 f"start=239616, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid={c}\n")
    t = ptable.parse(head(disk))
    assert (t.table, t.gpt_guid) == ("gpt", str(dg).upper())
    assert [p.number for p in t.partitions] == [1, 2, 3]
    assert t.partitions[0].gpt_type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    assert t.partitions[0].gpt_guid == str(esp).upper() and t.partitions[0].name == "EFI system partition"
    assert t.partitions[2].gpt_guid == str(c).upper() and t.partitions[2].start == 239616 * 512


def test_extended_partitions_go_to_parted(disk):
    sfdisk(disk, "label: dos\nstart=2048, size=102400, type=7\nstart=104448, type=5\nstart=106496, size=20480, type=7\n")
    assert ptable.parse(head(disk)).needs_fallback


def test_no_table(disk):
    assert ptable.parse(head(disk)).table is None
