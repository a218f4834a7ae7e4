"""Validation cases of `bad-file`: the folder listing given as records, the exact finding (with the
option the fixing command carries) and the exact planned deletion."""

from __future__ import annotations

import calendar

import pytest

from harness import Case, context, run_case, windows_layout
from rescue.repairs import sources
from rescue.repairs.findings import FOUND, OK
from rescue.target import FolderEntry

S = "bad-file"
FOLDER = "\\Windows\\System32\\drivers\\Vendor"
T = float(calendar.timegm((2026, 11, 2, 3, 0, 0)))
ENTRIES = (FolderEntry("vndflt.sys", "file", 52_000, T), FolderEntry("vndflt2.sys", "file", 9_000, T),
           FolderEntry("keep.sys", "file", 4_096, T), FolderEntry("vndflt.d", "dir", 0, T))


def _disk(pattern, entries=ENTRIES, **options):
    def build(d):
        ctx = context(d, scenario=S, layout=windows_layout(c_free=10 << 30),
                      options={"pattern": pattern, **options})
        sources.preset_folder(ctx, FOLDER, entries)
        return ctx
    return build


CASES = [
    Case("bad-file-present", "two files match", _disk("Windows\\System32\\drivers\\Vendor\\VNDFLT*.sys"), FOUND,
         f"{FOLDER}\\vndflt.sys 52,000 bytes written 2026-11-02 03:00:00 UTC; {FOLDER}\\vndflt2.sys 9,000 bytes "
         "written 2026-11-02 03:00:00 UTC",
         plan=(f"files.bad-file: delete file {FOLDER}\\vndflt.sys (52,000 bytes)",
               f"files.bad-file: delete file {FOLDER}\\vndflt2.sys (9,000 bytes)"), fixable=True),
    Case("bad-file-present", "nothing matches", _disk("Windows\\System32\\drivers\\Vendor\\other*.sys"), OK,
         f"nothing matches {FOLDER}\\other*.sys",
         plan=(f"files.bad-file skipped: nothing matches {FOLDER}\\other*.sys",)),
    Case("bad-file-present", "no pattern (the triage)", _disk(None), OK, "no --pattern given: nothing to look for",
         plan=("files.bad-file skipped: no --pattern given: nothing to look for",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)


def test_the_fixing_command_carries_the_pattern(tmp_path):
    from rescue.repairs.base import get
    from rescue.repairs.findings import Diagnosis

    ctx = _disk("Windows\\System32\\drivers\\Vendor\\vndflt*.sys")(tmp_path)
    finding = get(S).checks[0].run(ctx).of(S)
    assert Diagnosis(("os.vhd",), (finding,)).fix_commands() == \
        ["rescue fix bad-file os.vhd --pattern 'Windows\\System32\\drivers\\Vendor\\vndflt*.sys'"]


def test_a_pattern_outside_windows_is_refused(tmp_path):
    from rescue.errors import UsageError
    from rescue.repairs.base import get

    with pytest.raises(UsageError, match="outside the Windows folder"):
        get(S).checks[0].run(_disk("Users\\x\\*.sys")(tmp_path))
