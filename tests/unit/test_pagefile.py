"""Page file settings (real SYSTEM hives, exact listings), where they point, and the reset planner
applied to hivex-built SYSTEM hives."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rescue.cli.main import run
from rescue.errors import CorruptHiveError, ExitCode, UsageError
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.layout import Volume, WindowsInstall, WindowsLayout
from rescue.registry.findings import registry_findings
from rescue.registry.pagefile import (AUTOMATIC, FIXED, SYSTEM_MANAGED, FoundPagefile, bytes_freed, effective_drives,
                                      locate, normalize_location, parse_paging_file, plan_pagefile_reset,
                                      read_pagefile_settings)
from rescue.registry.render import pagefile_lines
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.safety.plan import DeleteFile, FileRef, SetValue
from rescue.samples.hives import build_system_hive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402

MiB = 1 << 20

# Expected listings, from the facts in ../shared/realdata/README.md (PagingFiles, ExistingPageFiles,
# TempPageFile absent, ClearPageFileAtShutdown 0, control sets present, Select\Current).
_AUTO = ["  PagingFiles        REG_MULTI_SZ  ?:\\pagefile.sys",
         "    ?:\\pagefile.sys: automatic: Windows manages the page file size for all drives",
         "  ExistingPageFiles  REG_MULTI_SZ  \\??\\C:\\pagefile.sys",
         "  TempPageFile       not set",
         "  ClearPageFileAtShutdown 0"]
_XP = ["  PagingFiles        REG_MULTI_SZ  C:\\pagefile.sys 768 1536",
       "    C:\\pagefile.sys 768 1536: fixed size on C: (768 MB initial, 1536 MB maximum)",
       "  ExistingPageFiles  not set",
       "  TempPageFile       not set",
       "  ClearPageFileAtShutdown 0"]
CUR1 = "Current control set: ControlSet001 (Select\\Current = 1)"
REAL = {
    "system/regipy_win10_gpt_dirty_SYSTEM_B": [CUR1, "ControlSet001 (current)", *_AUTO],
    "system/regipy_win7_x86_SYSTEM": [CUR1, "ControlSet001 (current)", *_AUTO, "ControlSet002", *_AUTO],
    "system/winevtkb_xp_sp3_SYSTEM": [CUR1, "ControlSet001 (current)", *_XP, "ControlSet003", *_XP],
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_hive_listing(name):
    # The dirty SYSTEM_B is read as its base block says (read-only; log replay is the safety engine's).
    report = read_pagefile_settings(need(name))
    assert pagefile_lines(report) == REAL[name]


def test_real_hive_values():
    r = read_pagefile_settings(need("system/regipy_win7_x86_SYSTEM"))
    s = r.current_settings
    assert (r.current, [x.control_set for x in r.sets]) == (1, [1, 2])
    assert s.paging_files_type == V.REG_MULTI_SZ and len(s.paging_files_data) == 34
    assert s.paging_files[0].mode == AUTOMATIC and s.existing_drives == ("C:",)
    assert effective_drives(s) == ("C:",)
    xp = read_pagefile_settings(need("system/winevtkb_xp_sp3_SYSTEM")).current_settings
    assert (xp.paging_files[0].initial_mb, xp.paging_files[0].maximum_mb, xp.paging_files[0].mode) == (768, 1536, FIXED)
    assert xp.existing_page_files_type is None and effective_drives(xp) == ("C:",)


def test_corrupt_real_hive():
    with pytest.raises(CorruptHiveError, match="not a readable registry hive"):
        read_pagefile_settings(need("system/regipy_corrupted_SYSTEM"))


@pytest.mark.parametrize("item, path, drive, lo, hi, mode", [
    ("C:\\pagefile.sys 0 0", "C:\\pagefile.sys", "C:", 0, 0, SYSTEM_MANAGED),
    ("D:\\pagefile.sys", "D:\\pagefile.sys", "D:", None, None, SYSTEM_MANAGED),
    ("?:\\pagefile.sys", "?:\\pagefile.sys", "?:", None, None, AUTOMATIC),
    ("e:\\pagefile.sys 1024 4096", "e:\\pagefile.sys", "E:", 1024, 4096, FIXED),
    ("\\pagefile.sys", "\\pagefile.sys", None, None, None, SYSTEM_MANAGED),
])
def test_parse_paging_file(item, path, drive, lo, hi, mode):
    p = parse_paging_file(item)
    assert (p.path, p.drive, p.initial_mb, p.maximum_mb, p.mode) == (path, drive, lo, hi, mode)


@pytest.mark.parametrize("text, expected", [
    ("D:", "D:\\pagefile.sys 0 0"), ("d", "D:\\pagefile.sys 0 0"), ("D:\\", "D:\\pagefile.sys 0 0"),
    ("D:\\pagefile.sys", "D:\\pagefile.sys 0 0"), ("D:\\PAGEFILE.SYS 0 0", "D:\\pagefile.sys 0 0"),
    ("E:\\pagefile.sys 1024 4096", "E:\\pagefile.sys 1024 4096"), ("?:", "?:\\pagefile.sys"),
])
def test_normalize_location(text, expected):
    assert normalize_location(text) == expected


@pytest.mark.parametrize("bad", ["", "DD:", "D:\\swap.sys", "D:\\dir\\pagefile.sys", "D:\\pagefile.sys 10",
                                 "D:\\pagefile.sys 4096 1024"])
def test_normalize_location_rejects(bad):
    with pytest.raises(UsageError):
        normalize_location(bad)


# --- a real layout record: C: on the OS disk, E: on a data disk, D: (temporary drive) not attached --------
def make_layout(c_free=100 * MiB, e_free=900 * MiB) -> WindowsLayout:
    root = WindowsInstall(disk=0, partition=4, product="Windows Server 2019 Datacenter", version="10.0",
                          build=17763, control_set=1)
    vols = (Volume(0, 1, "vfat", None, 100 * MiB, 70 * MiB, None, "esp", "ok"),
            Volume(0, 4, "ntfs", None, 256 * MiB, c_free, "C:", "windows", "ok"),
            Volume(1, 2, "ntfs", "Data", 1024 * MiB, e_free, "E:", "data", "ok"))
    return WindowsLayout(disk_paths=("os.vhd", "data.vhd"), disk_formats=("vhd", "vhd"),
                         partition_tables=("gpt", "gpt"), generation="gen2", volumes=vols, windows=(root,),
                         root=root, bcd=None)


FOUND_C = FoundPagefile(FileRef("\\pagefile.sys", 0, 4), 16 * MiB, "C:", "os.vhd", "windows")
FOUND_E = FoundPagefile(FileRef("\\pagefile.sys", 1, 2), 8 * MiB, "E:", "data.vhd", "data")
FOUND_D = FoundPagefile(FileRef("\\pagefile.sys", 2, 1), 4 * MiB, "D:", "temp.vhd", "data")


def apply_hive_changes(path, step) -> None:
    h = Hive(path, write=True)
    for c in step.changes:
        if isinstance(c, SetValue):
            h.set(c.key, c.name, c.type, c.data)
    h.commit()


def test_plan_reset_every_control_set(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", current=2, control_sets=(1, 2, 3), pagefile_on="C:")
    ref = FileRef(str(p))
    step = plan_pagefile_reset(Hive(p), ref, (FOUND_C, FOUND_E, FOUND_D))
    sets = [c for c in step.changes if isinstance(c, SetValue)]
    files = [c for c in step.changes if isinstance(c, DeleteFile)]
    assert [c.key for c in sets] == [f"ControlSet00{n}\\Control\\Session Manager\\Memory Management" for n in (1, 2, 3)]
    for c in sets:
        assert (c.name, c.type, c.data) == ("PagingFiles", V.REG_MULTI_SZ,
                                            "D:\\pagefile.sys 0 0\0\0".encode("utf-16-le"))
        assert c.before_type == V.REG_MULTI_SZ and c.before_data == V.encode_multi_sz(["C:\\pagefile.sys 0 0"])
    assert [f.file for f in files] == [FOUND_C.file, FOUND_E.file] and not any(f.backup for f in files)
    assert bytes_freed(step) == 24 * MiB
    assert "frees 25,165,824 bytes (24.0 MiB)" in step.notes
    assert any("D:\\pagefile.sys kept: it is on the temporary drive" in n for n in step.notes)
    before = {n: {v.name: (v.type, v.data) for v in Hive(p).values(Hive(p).node(sets[n - 1].key))} for n in (1, 2, 3)}
    apply_hive_changes(p, step)
    after = read_pagefile_settings(p)
    assert all(s.is_default() for s in after.sets) and after.current == 2
    for n in (1, 2, 3):
        vals = {v.name: (v.type, v.data) for v in Hive(p).values(Hive(p).node(sets[n - 1].key))}
        assert {k: v for k, v in vals.items() if k != "PagingFiles"} == \
               {k: v for k, v in before[n].items() if k != "PagingFiles"}      # every other value intact
    again = plan_pagefile_reset(Hive(p), ref, ())
    assert not again.changes and "already" in again.skipped


def test_plan_reset_other_location_keeps_that_drive(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", pagefile_on="C:")
    step = plan_pagefile_reset(Hive(p), FileRef(str(p)), (FOUND_C, FOUND_E), location="E:")
    assert [c.file for c in step.changes if isinstance(c, DeleteFile)] == [FOUND_C.file]
    assert {c.data for c in step.changes if isinstance(c, SetValue)} == {V.encode_multi_sz(["E:\\pagefile.sys 0 0"])}
    assert any("E:\\pagefile.sys kept: it is on the new page file drive" in n for n in step.notes)


def test_plan_reset_azure_default_is_left_but_stray_file_deleted(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", pagefile_on="D:")          # "D:\pagefile.sys" (no sizes)
    step = plan_pagefile_reset(Hive(p), FileRef(str(p)), (FOUND_C,))
    # Azure's "D:\pagefile.sys" differs from "D:\pagefile.sys 0 0" only in spelling: still rewritten to the
    # one default, and the stray C: page file goes.
    assert len([c for c in step.changes if isinstance(c, SetValue)]) == 2
    assert [c.file for c in step.changes if isinstance(c, DeleteFile)] == [FOUND_C.file]


def test_locate_and_findings(tmp_path):
    layout = make_layout()
    cases = {
        "C:": (["C:\\pagefile.sys 0 0"], ["\\??\\C:\\pagefile.sys"], FOUND, "C: (on os.vhd)"),
        "D:": (["D:\\pagefile.sys"], ["\\??\\D:\\pagefile.sys"], OK, "PagingFiles = D:\\pagefile.sys"),
        "auto": (["?:\\pagefile.sys"], ["\\??\\C:\\pagefile.sys"], FOUND, "C: (on os.vhd)"),
        "F:": (["F:\\pagefile.sys 512 512"], [], FOUND, "F: (not attached)"),
        "?": (["?:\\pagefile.sys"], [], UNKNOWN, "ExistingPageFiles does not say"),
        "none": ([], [], OK, "(empty: no page file)"),
    }
    for name, (pf, epf, status, evidence) in cases.items():
        p = build_system_hive(tmp_path / f"S-{name}", paging_files=pf, existing_page_files=epf)
        report = read_pagefile_settings(p)
        (f,) = [x for x in registry_findings(report, None, layout=layout) if x.id == "pagefile-not-on-temp-drive"]
        assert f.status == status and evidence in f.evidence, (name, f)
    p = build_system_hive(tmp_path / "S", pagefile_on="C:")
    locs = locate(read_pagefile_settings(p).current_settings, layout, (FOUND_C,))
    (c,) = locs
    assert (c.drive, c.named_by, c.disk, c.partition, c.role, c.pagefile_size, c.temp_drive) == \
           ("C:", ("PagingFiles", "ExistingPageFiles"), 0, 4, "windows", 16 * MiB, False)
    p = build_system_hive(tmp_path / "SD", pagefile_on="D:")
    (d,) = locate(read_pagefile_settings(p).current_settings, layout, ())
    assert d.temp_drive and not d.attached and "temporary drive" in d.describe()


def test_cli_show_json_and_bad_location(tmp_path, capsys):
    p = build_system_hive(tmp_path / "SYSTEM", current=2, pagefile_on="C:")
    assert run(["pagefile", "show", str(p), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["system_hive", "temp_drive", "current_control_set", "pagefile", "pagefile_locations",
                          "pagefiles_found", "findings"]
    assert data["current_control_set"] == 2 and data["findings"][0]["status"] == FOUND
    assert data["pagefile"]["control_sets"][1]["paging_files"][0]["raw"] == "C:\\pagefile.sys 0 0"
    before = p.read_bytes()
    assert run(["pagefile", "reset", str(p), "--location", "D:\\swap.sys", "--yes"]) == ExitCode.USAGE
    assert run(["pagefile", "reset", str(p), "--temp-drive", "DD", "--yes"]) == ExitCode.USAGE
    assert "not a drive letter" in capsys.readouterr().err
    assert p.read_bytes() == before
