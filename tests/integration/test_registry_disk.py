"""Registry commands on sample disks through the real appliance (six launches in all).

Gen2 (VHD) broken sample + the data disk holding a page file: `pagefile reset` plans the deletion of
both page files (C: on the OS disk, E: on the data disk) and sets
PagingFiles to "D:\\pagefile.sys 0 0" (REG_MULTI_SZ) in ControlSet001 and 002; `undo` brings the
settings back (the page files are not kept by design: Windows recreates them).
Gen1 (VHDX) broken sample + data disk: `crashdump enable --ram 16G` warns that C: (256 MiB) cannot
hold a 16 GiB dump and names the data disk; afterwards the three values are exact in 001 and 002.
"""

from __future__ import annotations

import json

import pytest

from rescue.cli.main import run

pytestmark = pytest.mark.appliance

MULTI_DEFAULT = "D:\\pagefile.sys 0 0"


@pytest.fixture
def disk(sample_disk):
    return sample_disk


def _json(capsys, argv) -> dict:
    capsys.readouterr()
    code = run(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _paging(data: dict) -> dict[int, tuple[list[str], str]]:
    return {cs["control_set"]: ([p["raw"] for p in cs["paging_files"]], cs["paging_files_type"])
            for cs in data["pagefile"]["control_sets"]}


def _changes(data) -> list[dict]:
    """Every plan change in the engine's JSON (whatever wraps it): dicts with a "kind"."""
    found = []
    if isinstance(data, dict):
        if "kind" in data and "file" in data:
            found.append(data)
        for v in data.values():
            found += _changes(v)
    elif isinstance(data, list):
        for v in data:
            found += _changes(v)
    return found


def _strings(data) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def test_gen2_pagefile_reset_show_undo(disk, capsys):
    os_disk, data_disk = str(disk("gen2-broken.vhd")), str(disk("data-disk-pagefile.vhd"))

    plan = _json(capsys, ["pagefile", "reset", os_disk, data_disk, "--yes", "--json"])
    changes = _changes(plan)
    sets = sorted((c["key"], c["after"]["value"][0]) for c in changes if c["kind"] == "set-value")
    assert sets == [(f"ControlSet00{n}\\Control\\Session Manager\\Memory Management", MULTI_DEFAULT) for n in (1, 2)]
    assert all(c["type"] == "REG_MULTI_SZ" and c["before"]["value"] == ["C:\\pagefile.sys 0 0"]
               for c in changes if c["kind"] == "set-value")
    deleted = sorted((c["file"]["disk"], c["size"], c["backup"]) for c in changes if c["kind"] == "delete-file")
    assert deleted == [(0, 16 << 20, False), (1, 8 << 20, False)]          # OS disk C: and data disk E:

    after = _json(capsys, ["pagefile", "show", os_disk, data_disk, "--json"])
    assert _paging(after) == {1: ([MULTI_DEFAULT], "REG_MULTI_SZ"), 2: ([MULTI_DEFAULT], "REG_MULTI_SZ")}
    assert after["pagefiles_found"] == []
    assert after["findings"][0]["status"] == "ok"
    assert {x["drive"]: x["temp_drive"] for x in after["pagefile_locations"]}["D:"] is True

    capsys.readouterr()
    assert run(["undo", os_disk, "--yes"]) == 0
    undone = _json(capsys, ["pagefile", "show", os_disk, data_disk, "--json"])
    before = ["C:\\pagefile.sys 0 0"]
    assert _paging(undone) == {1: (before, "REG_MULTI_SZ"), 2: (before, "REG_MULTI_SZ")}   # settings back in both sets
    assert undone["pagefiles_found"] == []        # page files are not kept (Windows recreates them)
    (f,) = undone["findings"]
    assert (f["id"], f["status"]) == ("pagefile-not-on-temp-drive", "found")
    (c,) = [x for x in undone["pagefile_locations"] if x["drive"] == "C:"]
    assert c["disk"] == os_disk and c["role"] == "windows"


def test_gen1_crashdump_enable_with_small_volume(disk, capsys):
    os_disk, data_disk = str(disk("gen1-broken.vhdx")), str(disk("data-disk.vhd"))
    plan = _json(capsys, ["crashdump", "enable", os_disk, data_disk, "--ram", "16G", "--yes", "--json"])
    notes = [n for n in _strings(plan) if n.startswith("dump space:")]
    assert len(notes) == 1 and "less than the VM's RAM (16.0 GiB)" in notes[0]
    assert f"the data volume with the most free space is E: on {data_disk} partition" in notes[0]
    sets = sorted((c["key"], c["name"], c["type"]) for c in _changes(plan) if c["kind"] == "set-value")
    assert sets == sorted((f"ControlSet00{n}\\Control\\CrashControl", name, t) for n in (1, 2)
                          for name, t in (("CrashDumpEnabled", "REG_DWORD"), ("NMICrashDump", "REG_DWORD")))

    shown = _json(capsys, ["crashdump", "show", os_disk, data_disk, "--json", "--ram", "16G"])
    sets = {c["control_set"]: c for c in shown["crashdump"]["control_sets"]}
    assert set(sets) == {1, 2}
    for c in sets.values():
        assert (c["crash_dump_enabled"], c["crash_dump_enabled_type"]) == (1, "REG_DWORD")
        assert (c["dump_file"], c["dump_file_type"]) == ("%SystemRoot%\\MEMORY.DMP", "REG_EXPAND_SZ")
        assert (c["nmi_crash_dump"], c["nmi_crash_dump_type"]) == (1, "REG_DWORD")
    assert shown["dump_space"]["fits"] is False and shown["dump_space"]["best_data_volume"]["letter"] == "E:"
    statuses = {f["id"]: f["status"] for f in shown["findings"]}
    assert statuses["crashdump-disabled"] == "ok" and statuses["nmi-crashdump-off"] == "ok"
    assert statuses["dump-volume-too-small"] == "found"
