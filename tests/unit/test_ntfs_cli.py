"""The NTFS flags on every writing command (no appliance): present, explained, refused on a hive file."""

from __future__ import annotations

import pytest

WRITING = [
    ("fix", "no-memory"), ("fix", "0xC0000017"), ("expand",), ("cleanup",), ("pagefile", "reset"),
    ("crashdump", "enable"), ("bcd", "set"), ("bcd", "deletevalue"), ("bcd", "ems"), ("bcd", "bootems"),
    ("bcd", "emssettings"), ("reg", "add"), ("reg", "delete"), ("undo",),
]


@pytest.mark.parametrize("command", WRITING, ids=" ".join)
def test_every_writing_command_has_both_flags(cli, command):
    r = cli(*command, "--help")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "--reset-ntfs-log" in text and "--discard-hibernation" in text
    assert "Never implied by --yes" in text


@pytest.mark.parametrize("command", [("inspect",), ("diagnose",), ("pagefile", "show"), ("reg", "query")],
                         ids=" ".join)
def test_looking_commands_do_not_take_them(cli, command):
    assert "--reset-ntfs-log" not in cli(*command, "--help").out


def test_flags_on_a_hive_file_are_refused(cli, sample_hives):
    system = sample_hives.broken_system()
    before = system.read_bytes()
    r = cli("reg", "add", system, "ControlSet001\\Control\\CrashControl", "/v", "NMICrashDump", "/t",
            "REG_DWORD", "/d", "1", "--yes", "--reset-ntfs-log")
    assert r.code == 2 and "not on a hive file" in " ".join(r.err.split())
    assert system.read_bytes() == before
