"""Validation cases of `crowdstrike-291`: the folder listing of \\Windows\\System32\\drivers\\CrowdStrike
given as records (names, sizes, last write times), the exact finding and the exact planned deletion."""

from __future__ import annotations

import calendar

import pytest

from harness import Case, context, run_case, windows_layout
from rescue.repairs import sources
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.target import FolderEntry

S = "crowdstrike-291"
FOLDER = "\\Windows\\System32\\drivers\\CrowdStrike"
BAD = "C-00000291-00000000-00000032.sys"      # the name CrowdStrike's bulletin shows for the faulty file
GOOD = "C-00000291-00000000-00000033.sys"


def t(h: int, m: int, s: int = 0, day: int = 19) -> float:
    return float(calendar.timegm((2024, 7, day, h, m, s)))


def _folder(*entries: FolderEntry):
    def build(d):
        ctx = context(d, scenario=S, layout=windows_layout(c_free=10 << 30))
        sources.preset_folder(ctx, FOLDER, entries)
        return ctx
    return build


OTHER = (FolderEntry("C-00000290-00000000-00000014.sys", "file", 4_096, t(3, 0)),
         FolderEntry("CSAgent.sys", "file", 131_072, t(0, 0, day=2)))

CASES = [
    Case("crowdstrike-channel-291", "faulty 04:09 file", _folder(FolderEntry(BAD, "file", 41_000, t(4, 9, 14)), *OTHER),
         FOUND, f"{BAD} 41,000 bytes written 2024-07-19 04:09:14 UTC (the faulty version)",
         plan=(f"crowdstrike.channel-291: delete file {FOLDER}\\{BAD} (41,000 bytes)",), fixable=True),
    Case("crowdstrike-channel-291", "faulty file beside the reverted one",
         _folder(FolderEntry(BAD, "file", 41_000, t(5, 26, 59)), FolderEntry(GOOD, "file", 40_000, t(5, 27)), *OTHER),
         FOUND, f"{BAD} 41,000 bytes written 2024-07-19 05:26:59 UTC (the faulty version); {GOOD} 40,000 bytes "
                "written 2024-07-19 05:27:00 UTC (the reverted version)",
         plan=(f"crowdstrike.channel-291: delete file {FOLDER}\\{BAD} (41,000 bytes)",), fixable=True),
    Case("crowdstrike-channel-291", "reverted 05:27 file only", _folder(FolderEntry(GOOD, "file", 40_000, t(5, 27)), *OTHER),
         OK, f"{GOOD} 40,000 bytes written 2024-07-19 05:27:00 UTC (the reverted version)",
         plan=("crowdstrike.channel-291 skipped: no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19",)),
    Case("crowdstrike-channel-291", "older file of 04:08", _folder(FolderEntry(BAD, "file", 41_000, t(4, 8, 59))),
         OK, f"{BAD} 41,000 bytes written 2024-07-19 04:08:59 UTC (older than the faulty update)",
         plan=("crowdstrike.channel-291 skipped: no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19",)),
    Case("crowdstrike-channel-291", "a folder named like the file is not a file",
         _folder(FolderEntry("C-00000291-x.sys", "dir", 0, t(4, 10)), *OTHER),
         OK, f"no C-00000291*.sys in {FOLDER}",
         plan=("crowdstrike.channel-291 skipped: no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19",)),
    Case("crowdstrike-channel-291", "no CrowdStrike folder", _folder(), OK,
         f"no {FOLDER} folder (no CrowdStrike Falcon sensor)",
         plan=("crowdstrike.channel-291 skipped: no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19",)),
    Case("crowdstrike-channel-291", "time unknown", _folder(FolderEntry(BAD.lower(), "file", 41_000, None)), UNKNOWN,
         f"{BAD.lower()} 41,000 bytes (last write time unknown)",
         plan=("crowdstrike.channel-291 skipped: no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
