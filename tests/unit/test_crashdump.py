"""Crash dump / NMI settings: real SYSTEM hives, the enable planner applied to hivex-built hives and
to a copy of a real one, the dump-space check, WHEA BadPages, and the registry findings."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from rescue.cli.main import run
from rescue.errors import ExitCode, UsageError
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.registry.crashdump import (check_dump_space, parse_size, plan_crashdump_enable, read_crashdump,
                                       validate_dump_file)
from rescue.registry.findings import plan_clear_whea_badpages, read_whea_badpages, registry_findings
from rescue.registry.summary import summarize_hive
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.safety.plan import DeleteValue, FileRef, SetValue
from rescue.samples.hives import build_system_hive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402
from test_pagefile import FOUND_C, MiB, make_layout  # noqa: E402

CC = "Control\\CrashControl"
DUMP = "%SystemRoot%\\MEMORY.DMP\0".encode("utf-16-le")


def apply(path, step) -> None:
    h = Hive(path, write=True)
    for c in step.changes:
        if isinstance(c, SetValue):
            h.set(c.key, c.name, c.type, c.data)
        elif isinstance(c, DeleteValue):
            assert h.delete_value(c.key, c.name)
    h.commit()


@pytest.mark.parametrize("name, sets, level", [
    ("system/regipy_win10_gpt_dirty_SYSTEM_B", [1], 7),
    ("system/regipy_win7_x86_SYSTEM", [1, 2], 2),
    ("system/winevtkb_xp_sp3_SYSTEM", [1, 3], 3),
])
def test_real_hives(name, sets, level):
    r = read_crashdump(need(name))
    assert r.current == 1 and [c.control_set for c in r.sets] == sets
    for c in r.sets:
        assert (c.crash_dump_enabled, c.crash_dump_enabled_type) == (level, V.REG_DWORD)
        assert (c.dump_file, c.dump_file_type) == ("%SystemRoot%\\MEMORY.DMP", V.REG_EXPAND_SZ)
        assert c.nmi_crash_dump is None and c.auto_reboot == 1 and not c.matches_article()
    assert all(not w.present for w in read_whea_badpages(need(name)))


def exact(h: Hive, n: int, dump: bytes = DUMP) -> None:
    key = f"ControlSet00{n}\\{CC}"
    got = {name: (h.get(key, name).type, h.get(key, name).data) for name in ("CrashDumpEnabled", "DumpFile", "NMICrashDump")}
    assert got == {"CrashDumpEnabled": (V.REG_DWORD, b"\x01\0\0\0"), "DumpFile": (V.REG_EXPAND_SZ, dump),
                   "NMICrashDump": (V.REG_DWORD, b"\x01\0\0\0")}


def test_enable_in_001_and_002_exact(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", control_sets=(1, 2), crash_dumps=False, nmi=False)
    before = {v.name: (v.type, v.data) for v in Hive(p).values(Hive(p).node(f"ControlSet002\\{CC}"))}
    step = plan_crashdump_enable(Hive(p), FileRef(str(p)))
    assert [(c.key, c.name) for c in step.changes] == [
        (f"ControlSet00{n}\\{CC}", name) for n in (1, 2) for name in ("CrashDumpEnabled", "NMICrashDump")]
    apply(p, step)
    h = Hive(p)
    exact(h, 1)
    exact(h, 2)
    after = {v.name: (v.type, v.data) for v in h.values(h.node(f"ControlSet002\\{CC}"))}
    assert {k: v for k, v in after.items() if k not in ("CrashDumpEnabled", "NMICrashDump")} == \
           {k: v for k, v in before.items() if k != "CrashDumpEnabled"}
    assert all(c.matches_article() for c in read_crashdump(p).sets)
    again = plan_crashdump_enable(Hive(p), FileRef(str(p)))
    assert not again.changes and again.skipped


def test_enable_real_win7_copy(tmp_path):
    p = tmp_path / "SYSTEM"
    shutil.copyfile(need("system/regipy_win7_x86_SYSTEM"), p)
    step = plan_crashdump_enable(Hive(p), FileRef(str(p)), dump_file="F:\\MEMORY.DMP")
    assert len(step.changes) == 6                                   # 3 values x ControlSet001, 002
    apply(p, step)
    h = Hive(p)
    for n in (1, 2):
        exact(h, n, "F:\\MEMORY.DMP\0".encode("utf-16-le"))
        assert h.get_value(f"ControlSet00{n}\\{CC}", "MinidumpsCount") == 50      # neighbours kept


def test_enable_does_not_create_missing_control_set(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", control_sets=(1,), crash_dumps=False, nmi=False)
    step = plan_crashdump_enable(Hive(p), FileRef(str(p)))
    assert {c.key for c in step.changes} == {f"ControlSet001\\{CC}"}
    assert "ControlSet002 does not exist; not created (the article's REG ADD names it)" in step.notes
    apply(p, step)
    assert Hive(p).find("ControlSet002") is None


@pytest.mark.parametrize("text, n", [("16G", 16 << 30), ("16GiB", 16 << 30), ("16 GB", 16 << 30), ("3.5G", int(3.5 * (1 << 30))),
                                     ("4096M", 4 << 30), ("17179869184", 16 << 30), ("512k", 512 << 10)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "lots", "16X", "-1G", "0"])
def test_parse_size_rejects(bad):
    with pytest.raises(UsageError):
        parse_size(bad)


def test_validate_dump_file():
    assert validate_dump_file("f:\\MEMORY.DMP") == "F:\\MEMORY.DMP"
    assert validate_dump_file("%SystemRoot%\\MEMORY.DMP") == "%SystemRoot%\\MEMORY.DMP"
    for bad in ("MEMORY.DMP", "F:", "\\\\server\\x.dmp", "F:\\a*b"):
        with pytest.raises(UsageError):
            validate_dump_file(bad)


def test_dump_space():
    layout = make_layout(c_free=100 * MiB, e_free=900 * MiB)
    small = check_dump_space("%SystemRoot%\\MEMORY.DMP", layout, ram_bytes=parse_size("512M"))
    assert (small.drive, small.disk, small.partition, small.free_bytes, small.fits) == ("C:", 0, 4, 100 * MiB, False)
    assert small.best_data_volume == ("E:", 1, 2, 900 * MiB)
    assert "less than the VM's RAM (512.0 MiB)" in small.message
    assert "E: on data.vhd partition 2 (900.0 MiB free): use --dump-file E:\\MEMORY.DMP" in small.message
    big = check_dump_space("%SystemRoot%\\MEMORY.DMP", layout, ram_bytes=parse_size("16G"))
    assert big.fits is False and "--dump-file" not in big.message          # E: is too small as well
    ok = check_dump_space("E:\\MEMORY.DMP", layout, ram_bytes=parse_size("512M"))
    assert (ok.drive, ok.fits, ok.best_data_volume) == ("E:", True, None)
    assumed = check_dump_space("%SystemRoot%\\MEMORY.DMP", layout, found_pagefiles=(FOUND_C,))
    assert assumed.ram_bytes == 16 * MiB and assumed.fits is True
    assert assumed.ram_source.startswith("assumed 16.0 MiB from the size of pagefile.sys on C:")
    unknown = check_dump_space("%SystemRoot%\\MEMORY.DMP", layout)
    assert unknown.fits is None and unknown.ram_source.startswith("unknown") and "--ram" in unknown.message
    missing = check_dump_space("F:\\MEMORY.DMP", layout, ram_bytes=1)
    assert missing.fits is None and "F: is not on an attached disk" in missing.message


def test_findings_and_whea(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM", control_sets=(1, 2), crash_dumps=False, nmi=False,
                          pagefile_on="C:", whea_bad_pages=bytes(range(16)))
    layout = make_layout(c_free=100 * MiB)
    s = summarize_hive(p, ref=FileRef(str(p)), layout=layout, found=(FOUND_C,), ram_bytes=parse_size("1G"))
    by = {f.id: f for f in s.findings}
    assert [f.id for f in s.findings] == ["pagefile-not-on-temp-drive", "crashdump-disabled", "nmi-crashdump-off",
                                          "dump-volume-too-small", "whea-bad-pages"]
    assert all(f.status == FOUND for f in s.findings)
    assert by["crashdump-disabled"].evidence == "ControlSet001 CrashDumpEnabled 0; ControlSet002 CrashDumpEnabled 0"
    assert by["whea-bad-pages"].evidence.startswith("ControlSet001\\Control\\WHEA BadPages REG_BINARY 16 bytes")
    # E: (900 MiB free) cannot hold 1 GiB of RAM either: nothing the fix can do, so not fixable.
    assert by["dump-volume-too-small"].fix_option is None and not by["dump-volume-too-small"].fixable
    fits = summarize_hive(p, ref=FileRef(str(p)), layout=layout, found=(FOUND_C,), ram_bytes=parse_size("512M"))
    dump = {f.id: f for f in fits.findings}["dump-volume-too-small"]
    assert dump.fixable and dump.fix_option == "--dump-file 'E:\\MEMORY.DMP'"    # the exact, quoted option
    data = s.to_json()
    assert json.loads(json.dumps(data))["whea_bad_pages"][0]["data_hex"] == bytes(range(16)).hex()
    step = plan_clear_whea_badpages(Hive(p), FileRef(str(p)))
    assert [(c.key, c.name) for c in step.changes] == [(f"ControlSet00{n}\\Control\\WHEA", "BadPages") for n in (1, 2)]
    apply(p, step)
    assert not any(w.present for w in read_whea_badpages(p))
    apply(p, plan_crashdump_enable(Hive(p), FileRef(str(p))))
    healthy = registry_findings(None, read_crashdump(p), whea=read_whea_badpages(p), build=17763)
    assert [(f.id, f.status) for f in healthy] == [("pagefile-not-on-temp-drive", UNKNOWN), ("crashdump-disabled", OK),
                                                   ("nmi-crashdump-off", OK), ("whea-bad-pages", OK)]
    assert "build 17763 keeps bad pages in the BCD" in healthy[-1].evidence


def test_cli_show_and_bad_input(tmp_path, capsys):
    p = build_system_hive(tmp_path / "SYSTEM", control_sets=(1, 2), crash_dumps=False, nmi=False)
    assert run(["crashdump", "show", str(p), "--json", "--ram", "16G"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["system_hive", "current_control_set", "crashdump", "dump_space", "whea_bad_pages", "findings"]
    assert data["dump_space"]["ram_bytes"] == 16 << 30 and data["dump_space"]["fits"] is None
    assert [c["crash_dump_enabled"] for c in data["crashdump"]["control_sets"]] == [0, 0]
    before = p.read_bytes()
    assert run(["crashdump", "enable", str(p), "--ram", "lots", "--yes"]) == ExitCode.USAGE
    assert run(["crashdump", "enable", str(p), "--dump-file", "MEMORY.DMP", "--yes"]) == ExitCode.USAGE
    assert "not a dump file path" in capsys.readouterr().err
    assert p.read_bytes() == before


def test_summary_keeps_the_copy_it_read(tmp_path):
    p = build_system_hive(tmp_path / "SYSTEM")
    s = summarize_hive(p, ref=FileRef(str(p)))
    assert s.system_copy == p and Hive(s.system_copy).get_value("Select", "Current") == 1


def test_crashdump_listing(tmp_path):
    from rescue.registry.render import crashdump_lines

    p = build_system_hive(tmp_path / "SYSTEM", control_sets=(1, 2), current=2, crash_dumps=False, nmi=False)
    space = check_dump_space("%SystemRoot%\\MEMORY.DMP", make_layout(c_free=100 * MiB), ram_bytes=parse_size("1G"))
    assert crashdump_lines(read_crashdump(p), space) == [
        "Current control set: ControlSet002",
        "ControlSet001", "  CrashDumpEnabled  0 (REG_DWORD): none",
        "  DumpFile          %SystemRoot%\\MEMORY.DMP (REG_EXPAND_SZ)", "  NMICrashDump      not set",
        "ControlSet002 (current)", "  CrashDumpEnabled  0 (REG_DWORD): none",
        "  DumpFile          %SystemRoot%\\MEMORY.DMP (REG_EXPAND_SZ)", "  NMICrashDump      not set",
        "Dump space", "  RAM: 1.0 GiB (given with --ram)",
        "  C: has 100.0 MiB free, less than the VM's RAM (1.0 GiB): a complete dump will not fit; the data volume "
        "with the most free space is E: on data.vhd partition 2 (900.0 MiB free)"]
