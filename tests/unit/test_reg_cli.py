"""`rescue reg` through the real CLI (`run([...])`) on hive files: reg.exe's output layout, JSON keys,
and bad input -> one sentence, documented exit code, file unchanged. No appliance."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from rescue.cli.main import run
from rescue.errors import ExitCode
from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.samples.hives import build_system_hive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402


def sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def user_hive(tmp_path):
    """The layout of Wine's reg query tests, in an NTUSER-like hive."""
    p = tmp_path / "NTUSER.DAT"
    write_minimal_hive(p, root_name="ROOT", file_name="ntuser.dat")
    h = Hive(p, write=True)
    k = "Software\\Test"
    h.set(k, "Test1", V.REG_SZ, V.encode_sz("Hello, World"))
    h.set(k, "Test2", V.REG_DWORD, V.encode_dword(0x123))
    h.set(k, "Wine", V.REG_SZ, V.encode_sz("First instance"))
    h.set(k + "\\subkey", "Test3", V.REG_SZ, V.encode_sz("Some string data"))
    h.set(k + "\\subkey", "Test4", V.REG_DWORD, V.encode_dword(0xABC))
    h.set(k + "\\subkey", "Wine", V.REG_SZ, V.encode_sz("Second instance"))
    for i in range(1, 3):
        h.ensure_key(f"Software\\Only\\subkey{i}")
    h.set("Types", "sz", V.REG_SZ, V.encode_sz("text"))
    h.set("Types", "expand", V.REG_EXPAND_SZ, V.encode_sz("%SystemRoot%\\x"))
    h.set("Types", "multi", V.REG_MULTI_SZ, V.encode_multi_sz(["a", "b"]))
    h.set("Types", "dword", V.REG_DWORD, V.encode_dword(1))
    h.set("Types", "qword", V.REG_QWORD, V.encode_qword(0x100000000))
    h.set("Types", "bin", V.REG_BINARY, b"\x01\xab")
    h.set("Types", "none", V.REG_NONE, b"\0\0")
    h.set("Types", "", V.REG_SZ, V.encode_sz("default"))
    h.commit()
    return p


@pytest.fixture
def system(tmp_path):
    return build_system_hive(tmp_path / "SYSTEM", current=2, control_sets=(1, 2), pagefile_on="C:",
                             crash_dumps=False, nmi=False)


K = "HKEY_CURRENT_USER\\Software\\Test"


def test_query_layout_is_reg_exe(user_hive, capsys):
    assert run(["reg", "query", str(user_hive), "HKCU\\Software\\Test"]) == 0
    assert capsys.readouterr().out == (
        f"\n{K}\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n"
        f"    Wine    REG_SZ    First instance\n\n{K}\\subkey\n")
    assert run(["reg", "query", str(user_hive), "HKCU\\Software\\Test\\subkey", "/v", "Test4"]) == 0
    assert capsys.readouterr().out == f"\n{K}\\subkey\n    Test4    REG_DWORD    0xabc\n\n"
    assert run(["reg", "query", str(user_hive), "HKCU\\Software\\Test", "/s"]) == 0
    assert capsys.readouterr().out == (
        f"\n{K}\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n"
        f"    Wine    REG_SZ    First instance\n\n"
        f"{K}\\subkey\n    Test3    REG_SZ    Some string data\n    Test4    REG_DWORD    0xabc\n"
        f"    Wine    REG_SZ    Second instance\n\n")
    assert run(["reg", "query", str(user_hive), "HKCU\\Software\\Test", "/v", "Wine", "/s"]) == 0
    assert capsys.readouterr().out == (
        f"\n{K}\n    Wine    REG_SZ    First instance\n\n{K}\\subkey\n    Wine    REG_SZ    Second instance\n\n"
        "End of search: 2 match(es) found.\n")
    # subkeys only: the key itself is not named (reg.exe)
    assert run(["reg", "query", str(user_hive), "HKCU\\Software\\Only"]) == 0
    assert capsys.readouterr().out == ("\nHKEY_CURRENT_USER\\Software\\Only\\subkey1\n"
                                       "HKEY_CURRENT_USER\\Software\\Only\\subkey2\n")
    # relative key on a bare hive file, --v option spelling, /ve
    assert run(["reg", "query", str(user_hive), "Types", "--v", "multi"]) == 0
    assert capsys.readouterr().out == "\nTypes\n    multi    REG_MULTI_SZ    a\\0b\n\n"
    assert run(["reg", "query", str(user_hive), "Software\\Test", "/ve"]) == 0
    assert capsys.readouterr().out == "\nSoftware\\Test\n    (Default)    REG_SZ    (value not set)\n\n"


def test_query_every_type(user_hive, capsys):
    assert run(["reg", "query", str(user_hive), "Types"]) == 0
    assert capsys.readouterr().out == (
        "\nTypes\n    sz    REG_SZ    text\n    expand    REG_EXPAND_SZ    %SystemRoot%\\x\n"
        "    multi    REG_MULTI_SZ    a\\0b\n    dword    REG_DWORD    0x1\n    qword    REG_QWORD    0x100000000\n"
        "    bin    REG_BINARY    01AB\n    none    REG_NONE    0000\n    (Default)    REG_SZ    default\n\n")


def test_query_json(user_hive, capsys):
    assert run(["reg", "query", str(user_hive), "HKU\\azureuser\\Types", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["key", "hive", "file", "path", "control_set", "value", "keys"]
    assert data["key"] == "HKEY_USERS\\azureuser\\Types" and data["path"] == "Types"
    (k,) = data["keys"]
    by = {v["name"]: v for v in k["values"]}
    assert list(by["multi"]) == ["name", "type", "type_code", "size", "data", "value", "data_hex"]
    assert by["multi"]["value"] == ["a", "b"] and by["multi"]["data_hex"] == "61000000620000000000"
    assert by["qword"]["value"] == 0x100000000 and by["bin"]["value"] == "01ab"
    assert by[""]["data"] == "default"


@pytest.mark.parametrize("current", [1, 2])
def test_query_current_control_set(tmp_path, capsys, current):
    p = build_system_hive(tmp_path / "SYSTEM", current=current, control_sets=(1, 2), dump_file=f"C:\\cs{current}.dmp")
    h = Hive(p, write=True)
    other = 3 - current
    h.set(f"ControlSet00{other}\\Control\\CrashControl", "DumpFile", V.REG_EXPAND_SZ, V.encode_sz("other"))
    h.commit()
    key = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl"
    assert run(["reg", "query", str(p), key, "/v", "DumpFile", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["control_set"] == current
    assert data["path"] == f"ControlSet00{current}\\Control\\CrashControl"
    assert data["keys"][0]["values"][0]["value"] == f"C:\\cs{current}.dmp"


BAD = [
    (["reg", "query", "{f}", "HKLM\\SYSTEM\\Nope"], ExitCode.NOT_FOUND, "does not exist"),
    (["reg", "query", "{f}", "Select", "/v", "Nope"], ExitCode.NOT_FOUND, "'Nope' does not exist"),
    (["reg", "query", "{f}", "Select", "/t", "REG_SZ"], ExitCode.USAGE, "not a switch of reg query"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_WORD", "/d", "1"], ExitCode.USAGE, "not a registry type"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_DWORD", "/d", "abc"], ExitCode.USAGE, "not a REG_DWORD number"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_DWORD", "/d", "0x100000000"], ExitCode.USAGE, "does not fit"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_DWORD"], ExitCode.USAGE, "needs data"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_BINARY", "/d", "0x01"], ExitCode.USAGE, "hex digits"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/t", "REG_MULTI_SZ", "/d", "a\\0\\0b"], ExitCode.USAGE, "empty string"),
    (["reg", "add", "{f}", "Select", "/v", "X", "/ve"], ExitCode.USAGE, "not both"),
    (["reg", "add", "{f}", "Select", "/v"], ExitCode.USAGE, "needs a value"),
    (["reg", "delete", "{f}", "Select", "/v", "Nope", "/f"], ExitCode.NOT_FOUND, "'Nope' does not exist"),
    (["reg", "delete", "{f}", "HKLM\\SYSTEM\\Nope", "/f"], ExitCode.NOT_FOUND, "does not exist"),
    (["reg", "delete", "{f}", "HKLM\\SYSTEM", "/f"], ExitCode.USAGE, "whole hive"),
    (["reg", "add", "{f}", "HKLM", "/v", "X", "/d", "1"], ExitCode.USAGE, "names no hive"),
    (["reg", "query", "{f}", "HKLM\\SYSTEM\\CurrentControlSet\\Control", "--user", "bob"], ExitCode.USAGE, "--user"),
]


@pytest.mark.parametrize("argv, code, text", BAD)
def test_bad_input(system, capsys, argv, code, text):
    before = sha(system)
    siblings = sorted(p.name for p in system.parent.iterdir())
    assert run([a.format(f=system) for a in argv]) == code
    captured = capsys.readouterr()
    assert text in captured.err and "Traceback" not in captured.err
    assert sha(system) == before                                          # nothing written
    assert sorted(p.name for p in system.parent.iterdir()) == siblings   # no backup folder either


def test_missing_hive_file_and_select(tmp_path, capsys):
    assert run(["reg", "query", str(tmp_path / "nope"), "Select"]) == ExitCode.INPUT
    assert "does not exist" in capsys.readouterr().err
    p = tmp_path / "BARE"
    write_minimal_hive(p, root_name="ROOT", file_name="SYSTEM")
    h = Hive(p, write=True)
    h.ensure_key("ControlSet001\\Control")
    h.commit()
    assert run(["reg", "query", str(p), "HKLM\\SYSTEM\\CurrentControlSet\\Control"]) == ExitCode.NOT_FOUND
    assert "no Select\\Current" in capsys.readouterr().err


def test_corrupt_real_hive(capsys):
    p = need("system/regipy_corrupted_SYSTEM")
    assert run(["reg", "query", str(p), "Select"]) == ExitCode.CORRUPT
    e = capsys.readouterr().err
    assert str(p) in e.replace("\n", "") and "not a readable registry hive" in e


# --- writes through the safety engine --------------------------------------------------------------
def test_add_and_delete_through_engine(system, capsys):
    key = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl"
    before = sha(system)
    assert run(["reg", "add", str(system), key, "/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "--dry-run"]) == 0
    assert sha(system) == before
    assert run(["reg", "add", str(system), key, "/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "/f"]) == 0
    h = Hive(system)
    v = h.get("ControlSet002\\Control\\CrashControl", "NMICrashDump")        # Current=2
    assert (v.type, v.data) == (V.REG_DWORD, b"\x01\0\0\0")
    assert h.get("ControlSet001\\Control\\CrashControl", "NMICrashDump") is None
    assert run(["reg", "delete", str(system), key, "/v", "NMICrashDump", "/f"]) == 0
    assert Hive(system).get("ControlSet002\\Control\\CrashControl", "NMICrashDump") is None


def test_query_text_is_verbatim(tmp_path, capsys):
    """Data that looks like rich markup or emoji codes, and empty data, print exactly as reg.exe would."""
    p = tmp_path / "H"
    write_minimal_hive(p, root_name="ROOT", file_name="SOFTWARE")
    h = Hive(p, write=True)
    h.set("K", "odd", V.REG_SZ, V.encode_sz(":smile: [bold]x[/bold] [/v]"))
    h.set("K", "empty", V.REG_SZ, V.encode_sz(""))
    h.commit()
    assert run(["reg", "query", str(p), "K"]) == 0
    assert capsys.readouterr().out == "\nK\n    odd    REG_SZ    :smile: [bold]x[/bold] [/v]\n    empty    REG_SZ    \n\n"
