"""Every exit code of README's table, produced for real (tests/unit/test_readme_contract.py checks
that each code has a test named test_exit_<code>_...). No appliance: hive files are targets of
their own, and where a disk is needed the CLI's opener hands over a host target (the CLI edge)."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from rescue.errors import ExitCode
from rescue.samples.hives import build_system_hive
from rescue.target import HostFileTarget

CC = r"HKLM\SYSTEM\ControlSet001\Control\CrashControl"


@pytest.fixture
def system(tmp_path):
    return build_system_hive(tmp_path / "SYSTEM", crash_dumps=False)


@pytest.fixture
def disk_is(monkeypatch):
    """`disk_is(path, layout=None)`: `rescue diagnose/fix` open that hive file as their disk."""
    from rescue.cli import fix_cmd

    def use(path, layout=None):
        @contextlib.contextmanager
        def opener(paths, *, write=False, reporter=None, **_):
            with HostFileTarget(str(path), write=write, reporter=reporter) as t:
                if layout is not None:
                    t.session, t.layout = object(), layout      # what discovery found on "the disk"
                yield t
        monkeypatch.setattr(fix_cmd, "open_disks", opener)
    return use


def test_exit_0_success(cli, system):
    assert cli("--version").code == ExitCode.OK == 0
    assert cli("reg", "query", system, CC, "/v", "CrashDumpEnabled").code == 0


def test_exit_1_diagnose_found_problems(cli, system, disk_is):
    disk_is(system)
    r = cli("diagnose", system, "--scenario", "no-memory")
    assert r.code == ExitCode.FINDINGS == 1, r.err
    assert "rescue fix no-memory" in r.out


def test_exit_2_bad_command_line(cli, system):
    assert cli("fix", "no-memory", system, "--no-such-option").code == ExitCode.USAGE == 2
    assert cli("diagnose", system, "--scenario", "no-such-scenario").code == 2


def test_exit_3_missing_input(cli, tmp_path):
    r = cli("inspect", tmp_path / "nope.vhd")
    assert r.code == ExitCode.INPUT == 3 and "does not exist" in r.err


def test_exit_4_no_windows(cli, system, disk_is):
    from rescue.layout import WindowsLayout

    disk_is(system, WindowsLayout(("data.vhd",), ("vhd",), ("gpt",), "gen2", (), (), None, None))
    r = cli("diagnose", system)
    assert r.code == ExitCode.NOT_WINDOWS == 4 and "No Windows installation" in r.err


def test_exit_5_unsafe_dirty_hive(cli, tmp_path):
    from safety_helpers import set_sequences

    hive = build_system_hive(tmp_path / "SYSTEM", crash_dumps=False)
    set_sequences(hive, 8, 7)
    before = hive.read_bytes()
    r = cli("reg", "add", hive, CC, "/v", "CrashDumpEnabled", "/t", "REG_DWORD", "/d", "1", "--yes")
    assert r.code == ExitCode.UNSAFE == 5 and "--discard-hive-logs" in r.err
    assert hive.read_bytes() == before


def test_exit_6_corrupt_hive(cli, tmp_path):
    hive = build_system_hive(tmp_path / "SYSTEM")
    data = bytearray(hive.read_bytes())
    data[4096:4100] = b"XXXX"                     # the first hbin's signature
    hive.write_bytes(bytes(data))
    r = cli("reg", "query", hive, CC)
    assert r.code == ExitCode.CORRUPT == 6, r.err


def test_exit_7_not_found(cli, system):
    r = cli("reg", "query", system, r"HKLM\SYSTEM\ControlSet001\Services\NoSuchService")
    assert r.code == ExitCode.NOT_FOUND == 7


def test_exit_8_write_failed_rolled_back(cli, system, monkeypatch):
    before = system.read_bytes()
    monkeypatch.setenv("RESCUE_FAULT", "raise:before-rename")
    r = cli("reg", "add", system, CC, "/v", "CrashDumpEnabled", "/t", "REG_DWORD", "/d", "1", "--yes")
    assert r.code == ExitCode.WRITE_FAILED == 8 and "Rolled back" in r.err
    assert system.read_bytes() == before


def test_exit_9_read_back_differs(cli, system, monkeypatch):
    from rescue import target as T

    real = T.HostFileTarget.sha256

    def lying(self, ref):                         # the disk returns other bytes than were written
        return "0" * 64 if self._p(ref) == str(system) and getattr(self, "_switched", False) else real(self, ref)

    real_switch = T.HostFileTarget.switch

    def switch(self, ref):
        real_switch(self, ref)
        self._switched = True

    monkeypatch.setattr(T.HostFileTarget, "sha256", lying)
    monkeypatch.setattr(T.HostFileTarget, "switch", switch)
    r = cli("reg", "add", system, CC, "/v", "CrashDumpEnabled", "/t", "REG_DWORD", "/d", "1", "--yes")
    assert r.code == ExitCode.VERIFY_FAILED == 9, r.err


def test_exit_10_appliance_cannot_start(cli, tmp_path, monkeypatch):
    disk = tmp_path / "os.raw"
    with open(disk, "wb") as fh:
        fh.truncate(64 << 20)
    monkeypatch.setenv("LIBGUESTFS_PATH", str(tmp_path / "no-appliance-here"))
    r = cli("inspect", disk)
    assert r.code == ExitCode.APPLIANCE == 10, r.err
    assert "Traceback" not in r.err


def test_exit_11_declined(cli, system, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    before = system.read_bytes()
    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    from rescue.cli.main import run

    code = run(["reg", "add", str(system), CC, "/v", "CrashDumpEnabled", "/t", "REG_DWORD", "/d", "1"])
    assert code == ExitCode.DECLINED == 11
    assert system.read_bytes() == before


def test_exit_70_internal_error(cli, system, monkeypatch):
    from rescue.registry import regops

    def broken(*_a, **_k):
        raise ValueError("a bug")

    monkeypatch.setattr(regops, "query_key", broken)
    r = cli("reg", "query", system, CC)
    assert r.code == ExitCode.BUG == 70 and "RESCUE_DEBUG=1" in r.err and "Traceback" not in r.err


def test_exit_130_interrupted(cli, system, monkeypatch):
    from rescue.registry import regops

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(regops, "query_key", interrupted)
    assert cli("reg", "query", system, CC).code == ExitCode.INTERRUPTED == 130
