"""A file under \\Windows that stops the boot: delete the files matching a pattern, kept in the backup.

The generic form of the mass-incident fixes Microsoft documents for a faulty driver or agent update
(Microsoft, "Recovery options for Azure Virtual Machines (VM) affected by CrowdStrike Falcon agent";
Azure/repair-script-library src/windows/win-crowdstrike-fix-bootloop.ps1 deletes
\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys on the attached OS disk): when the
vendor names the bad file, delete it from the offline disk and let the VM boot. `rescue fix
bad-file DISK --pattern 'Windows\\System32\\drivers\\Vendor\\bad*.sys'` does that with a plan, a
backup of each file (up to 64 MiB each; larger ones only with --not-kept) and `rescue undo`.
`rescue files delete` is the same as a plain command; `fix crowdstrike-291` knows that incident's
pattern and its timestamp rule. The pattern: one folder under \\Windows, `*` and `?` in the file
name only (rescue.files.parse_pattern). Only the folder's metadata is read (one listing + lstat).
"""

from __future__ import annotations

import shlex
from typing import Optional, Sequence

from rescue.files import FilePattern, MatchedFile, delete_step, parse_pattern
from rescue.fileref import FileRef
from rescue.repairs import sources
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.safety.plan import Step

CHECK_ID = "bad-file-present"
TITLE = "no file matching the --pattern given"


def _pattern(ctx: RepairContext) -> Optional[FilePattern]:
    text = ctx.options.get("pattern")
    return parse_pattern(text) if text else None


def _matches(ctx: RepairContext, pattern: FilePattern) -> tuple:
    root = ctx.layout.require_root() if ctx.layout is not None else None
    disk, part = (root.disk, root.partition) if root is not None else (None, None)
    return tuple(MatchedFile(FileRef(f"{pattern.folder}\\{e.name}", disk, part), e.name, e.size, e.mtime)
                 for e in sources.folder(ctx, pattern.folder) if e.kind == "file" and pattern.matches(e.name))


def _check(ctx: RepairContext) -> Finding:
    pattern = _pattern(ctx)
    if pattern is None:
        # The triage knows no pattern: only the operator (or the vendor's bulletin) does.
        return Finding(CHECK_ID, TITLE, OK, "no --pattern given: nothing to look for")
    found = _matches(ctx, pattern)
    if not found:
        return Finding(CHECK_ID, TITLE, OK, f"nothing matches {pattern.text}")
    listed = "; ".join(f"{m.ref.path} {m.size:,} bytes written {m.written}" for m in found)
    return Finding(CHECK_ID, TITLE, FOUND, listed, fixable=True,
                   fix_option="--pattern " + shlex.quote(pattern.text.lstrip("\\")))


def _plan(ctx: RepairContext, finding: Finding) -> Step:
    pattern = _pattern(ctx)
    if finding.status != FOUND or pattern is None:
        return Step("files.bad-file", "Delete the files matching the pattern", skipped=finding.evidence)
    found = _matches(ctx, pattern)
    return delete_step("files.bad-file", f"Delete {len(found)} file(s) matching {pattern.text}", found,
                       not_kept=bool(ctx.options.get("not_kept")), reason=f"matches {pattern.text}")


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return ("Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore -g RG -n VM` "
            "if you used `az vm repair create`).",
            "Start the VM; once it is up, update or remove the software the file belongs to.",
            "The deleted files are in this run's backup (up to 64 MiB each): `rescue undo DISK` puts them back.")


SCENARIO = register(Scenario(
    name="bad-file",
    aliases=("delete-file", "faulty-file"),
    summary="A file under \\Windows that stops the boot (a faulty driver or agent update): delete the files "
            "matching --pattern, kept in the backup",
    title="Delete the files that stop the boot",
    source="Microsoft: Recovery options for Azure VMs affected by CrowdStrike Falcon agent "
           "(repair-script-library win-crowdstrike-fix-bootloop)",
    options=(Option("pattern", "--pattern", "The files to delete, e.g. 'Windows\\System32\\drivers\\Vendor\\bad*.sys' "
                    "(one folder under \\Windows; * and ? in the file name).", metavar="PATTERN"),
             Option("not_kept", "--not-kept", "Also delete matching files over 64 MiB, without a copy.",
                    kind=OptionKind.FLAG, default=False, diagnose=False)),
    checks=(Check(CHECK_ID, TITLE, _check, _plan, options=("pattern", "not_kept")),),
    next_steps=next_steps,
))
