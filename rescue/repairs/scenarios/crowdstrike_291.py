"""The July 2024 CrowdStrike Falcon channel file 291 boot loop (stop 0x50 / 0x7E in csagent.sys).

Sources:
  - CrowdStrike, "Technical Details: Falcon Update for Windows Hosts" (2024-07-20) and its
    remediation statement: the faulty sensor configuration update was released on 2024-07-19 at
    04:09 UTC and reverted at 05:27 UTC; channel file 291 is
    %WINDIR%\\System32\\drivers\\CrowdStrike\\C-00000291*.sys; "Channel file C-00000291*.sys with
    timestamp of 0527 UTC or later is the reverted (good) version. Channel file C-00000291*.sys
    with timestamp of 0409 UTC is the problematic version." The remediation: boot WinRE / Safe
    Mode (or attach the disk to another VM) and delete the C-00000291*.sys files in that folder.
  - Microsoft, "Recovery options for Azure Virtual Machines (VM) affected by CrowdStrike Falcon
    agent" (Azure) and Azure/repair-script-library src/windows/win-crowdstrike-fix-bootloop.ps1
    (`az vm repair run --run-id win-crowdstrike-fix-bootloop`): on the attached OS disk, remove
    \\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys.

What rescue does offline: one listing + lstat of that folder (metadata only: names, sizes, last
write times). A C-00000291*.sys written from 04:09 to before 05:27 UTC on 2024-07-19 (the window
in which the faulty content was served) is the faulty file: FOUND, and the fix deletes it, kept in
the backup (channel files are tens of KB) so `rescue undo` restores it byte for byte. A file of
05:27 UTC or later is the reverted version and is left in place; so are older ones (written before
the faulty content existed). To delete every C-00000291*.sys whatever its time, as the Azure script
does, use `rescue files delete DISK 'Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'`.
"""

from __future__ import annotations

import calendar
from typing import Sequence

from rescue.files import FilePattern, MatchedFile, delete_step
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.safety.plan import FileRef, Step

FOLDER = "\\Windows\\System32\\drivers\\CrowdStrike"
PATTERN = FilePattern(FOLDER, "C-00000291*.sys")
# The faulty content was served from 04:09 UTC until the revert at 05:27 UTC on 2024-07-19.
BAD_FROM = calendar.timegm((2024, 7, 19, 4, 9, 0))
GOOD_FROM = calendar.timegm((2024, 7, 19, 5, 27, 0))
CHECK_ID = "crowdstrike-channel-291"
TITLE = "no faulty CrowdStrike channel file 291 (2024-07-19 04:09 UTC)"


def is_faulty(mtime: float | None) -> bool:
    return mtime is not None and BAD_FROM <= mtime < GOOD_FROM


def _channel_files(ctx: RepairContext) -> tuple[MatchedFile, ...] | None:
    """The C-00000291*.sys files in the CrowdStrike folder (None: no such folder)."""
    entries = sources.folder(ctx, FOLDER)
    if not entries:
        return None
    root = ctx.layout.require_root() if ctx.layout is not None else None
    disk, part = (root.disk, root.partition) if root is not None else (None, None)
    return tuple(MatchedFile(FileRef(f"{FOLDER}\\{e.name}", disk, part), e.name, e.size, e.mtime)
                 for e in entries if e.kind == "file" and PATTERN.matches(e.name))


def _verdict(m: MatchedFile) -> str:
    if is_faulty(m.mtime):
        return "the faulty version"
    return "the reverted version" if m.mtime is not None and m.mtime >= GOOD_FROM else "older than the faulty update"


def _check(ctx: RepairContext) -> Finding:
    files = _channel_files(ctx)
    if files is None:
        return Finding(CHECK_ID, TITLE, OK, f"no {FOLDER} folder (no CrowdStrike Falcon sensor)")
    if not files:
        return Finding(CHECK_ID, TITLE, OK, f"no {PATTERN.name} in {FOLDER}")
    listed = "; ".join(f"{m.name} {m.size:,} bytes written {m.written} ({_verdict(m)})" if m.mtime is not None
                       else f"{m.name} {m.size:,} bytes (last write time unknown)" for m in files)
    if any(is_faulty(m.mtime) for m in files):
        return Finding(CHECK_ID, TITLE, FOUND, listed, fixable=True)
    if any(m.mtime is None for m in files):
        return Finding(CHECK_ID, TITLE, UNKNOWN, listed)
    return Finding(CHECK_ID, TITLE, OK, listed)


def _plan(ctx: RepairContext, finding: Finding):
    if finding.status != FOUND:
        return Step("crowdstrike.channel-291", "Delete the faulty channel file 291",
                    skipped="no C-00000291*.sys written between 04:09 and 05:27 UTC on 2024-07-19")
    bad = [m for m in _channel_files(ctx) or () if is_faulty(m.mtime)]
    return delete_step("crowdstrike.channel-291", f"Delete the faulty channel file 291 ({len(bad)} file(s))", bad,
                       reason="CrowdStrike channel file 291 of 2024-07-19 04:09 UTC (the faulty update)")


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return ("Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore -g RG -n VM` "
            "if you used `az vm repair create`).",
            "Start the VM: the Falcon sensor downloads the reverted channel file 291 (05:27 UTC or later) "
            "when it connects.",
            "The deleted files are in this run's backup: `rescue undo DISK` puts them back (only to hand the disk "
            "on unchanged: it brings the boot loop back).")


SCENARIO = register(Scenario(
    name="crowdstrike-291",
    aliases=("crowdstrike", "csagent", "channel-291"),
    summary="Boot loop of 2024-07-19: the faulty CrowdStrike channel file C-00000291*.sys of 04:09 UTC",
    title="Delete the faulty CrowdStrike channel file 291 (2024-07-19 04:09 UTC)",
    source="CrowdStrike: Technical Details: Falcon Update for Windows Hosts; Microsoft: Recovery options for "
           "Azure VMs affected by CrowdStrike Falcon agent (repair-script-library win-crowdstrike-fix-bootloop)",
    checks=(Check(CHECK_ID, TITLE, _check, _plan),),
    next_steps=next_steps,
))
