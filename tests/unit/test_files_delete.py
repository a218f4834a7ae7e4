"""rescue.files: patterns under the Windows folder, Windows wildcard matching, and the deletion step
(kept in the backup up to the size limit). The listing and the deletion on a real NTFS volume are
tested in tests/integration/test_files_disk.py."""

from __future__ import annotations

import pytest

from rescue.cli.main import run
from rescue.errors import ExitCode, UsageError
from rescue.files import FilePattern, MatchedFile, delete_step, name_matcher, parse_pattern
from rescue.safety.plan import FileRef

CS = "Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys"


@pytest.mark.parametrize("text", [CS, "\\" + CS, "C:\\" + CS, "c:/" + CS.replace("\\", "/"), "  " + CS + " "])
def test_pattern_spellings(text):
    assert parse_pattern(text) == FilePattern("\\Windows\\System32\\drivers\\CrowdStrike", "C-00000291*.sys")


@pytest.mark.parametrize("text,needle", [
    ("Users\\azureuser\\*.tmp", "outside the Windows folder"),
    ("\\pagefile.sys", "names no file"),
    ("Windows", "names no file"),
    ("Windows\\..\\Users\\x.txt", "'..'"),
    ("Windows\\System32\\*\\x.sys", "wildcards are allowed in the file name only"),
    ("Windows\\Sys?em32\\x.sys", "wildcards are allowed in the file name only"),
    ("WindowsOld\\x.sys", "outside the Windows folder"),
])
def test_patterns_refused(text, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace("?", r"\?").replace("*", r"\*")):
        parse_pattern(text)


def test_windows_wildcards():
    m = name_matcher("C-00000291*.sys")
    assert m.fullmatch("C-00000291-00000000-00000032.sys")
    assert m.fullmatch("c-00000291-00000000-00000032.SYS")          # NTFS names: case-insensitive
    assert m.fullmatch("C-00000291.sys")
    assert not m.fullmatch("C-00000290-00000000-00000032.sys")
    assert not m.fullmatch("C-00000291-x.sys.bak")
    assert name_matcher("a?c.txt").fullmatch("abc.txt") and not name_matcher("a?c.txt").fullmatch("ac.txt")
    assert name_matcher("[1].txt").fullmatch("[1].txt") and not name_matcher("[1].txt").fullmatch("1.txt")


def _m(name: str, size: int) -> MatchedFile:
    return MatchedFile(FileRef(f"\\Windows\\Temp\\{name}", 0, 3), name, size, 1_721_362_140.0)


def test_delete_step_keeps_small_files_and_refuses_large_ones():
    step = delete_step("files.delete", "t", [_m("a.sys", 40_000), _m("b.sys", 64 << 20)])
    assert [(c.file.path, c.backup) for c in step.changes] == [("\\Windows\\Temp\\a.sys", True),
                                                               ("\\Windows\\Temp\\b.sys", True)]
    assert step.notes[0] == "\\Windows\\Temp\\a.sys: 40,000 bytes, last written 2024-07-19 04:09:00 UTC"
    with pytest.raises(UsageError, match="larger than 64 MiB") as exc:
        delete_step("files.delete", "t", [_m("a.sys", 1), _m("big.bin", (64 << 20) + 1)])
    assert "--not-kept" in str(exc.value)
    step = delete_step("files.delete", "t", [_m("a.sys", 1), _m("big.bin", (64 << 20) + 1)], not_kept=True)
    assert [c.backup for c in step.changes] == [True, False]


def test_cli_refuses_a_pattern_outside_windows_before_any_launch(tmp_path, capsys):
    disk = tmp_path / "missing.vhd"                  # never opened: the pattern is checked first
    assert run(["files", "delete", str(disk), "Users\\*.tmp", "--yes"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "outside the Windows folder" in err and "Traceback" not in err
