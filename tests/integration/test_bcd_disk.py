"""`rescue bcd` on sample disks through the real appliance (three launches in total).

Gen1 (MBR, VHDX): the store is \\Boot\\BCD on the active partition and partition devices resolve to
the attached disk by MBR signature + byte offset. Gen2 (GPT, VHD): the store the firmware uses is
\\EFI\\Microsoft\\Boot\\BCD on the ESP (not the article's \\boot\\bcd), devices resolve by GPT GUIDs;
`ems {default} on` goes through the safety engine and reads back as Yes.
"""

from __future__ import annotations

import json

import pytest

from rescue.cli.main import run

pytestmark = pytest.mark.appliance

BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"


@pytest.fixture
def disk(sample_disk):
    return sample_disk


def _enum(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert run(["bcd", "enum", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _element(obj: dict, code: str):
    return next((e["value"] for e in obj["elements"] if e["code"] == code), None)


def test_gen1_enum_resolves_mbr_partitions(disk, capsys):
    image = disk("gen1-broken.vhdx")
    objs = _enum(capsys, str(image), "active")
    bootmgr, loader = objs[0], objs[1]
    assert bootmgr["identifier"] == BOOTMGR and loader["type"] == "0x10200003"
    dev = _element(bootmgr, "0x11000001")
    assert dev["kind"] == "partition" and dev["style"] == "mbr"
    assert dev["location"] is not None and dev["location"]["disk"] == str(image)
    osdev = _element(loader, "0x21000001")
    assert osdev["style"] == "mbr" and osdev["location"]["letter"] == "C:"


def test_gen2_ems_on_default_loader_through_the_safety_engine(disk, capsys):
    image = disk("gen2-broken.vhd")
    capsys.readouterr()
    assert run(["bcd", "ems", str(image), "{default}", "on", "--yes"]) == 0
    plan_output = capsys.readouterr()
    assert "Traceback" not in plan_output.err
    objs = _enum(capsys, str(image), "{default}")
    (loader,) = objs
    assert _element(loader, "0x260000b0") is True
    osdev = _element(loader, "0x21000001")
    assert osdev["style"] == "gpt" and osdev["location"]["letter"] == "C:"
