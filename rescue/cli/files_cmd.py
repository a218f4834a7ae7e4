"""`rescue files delete DISK PATTERN`: delete the files matching a pattern under the Windows folder
(rescue.files), each listed first, kept in the backup and restorable by `rescue undo`.

Exit codes: 0 deleted (or dry run), 2 a pattern outside \\Windows or a large file without
--not-kept, 7 nothing matches; the engine's own codes otherwise.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from rescue.cli.common import open_target, run_plan
from rescue.cli.options import ACCEL, DRY_RUN, FORMAT, JSON, ROOT, YES


def delete(disks: List[str], pattern: str, *, dry_run: bool, yes: bool, json_output: bool, not_kept: bool,
           fmt: Optional[str], accel: Optional[str], root: Optional[str]) -> None:
    from rescue.errors import UsageError
    from rescue.files import parse_pattern, plan_delete
    from rescue.opening import is_hive_target

    parsed = parse_pattern(pattern)            # a bad pattern is refused before any launch
    if is_hive_target(disks[0]):
        raise UsageError(f"{disks[0]} is a hive file; `rescue files delete` works on a disk.")
    with open_target(disks[0], write=not dry_run, fmt=fmt, accel=accel, root=root, extra_disks=disks[1:]) as tgt:
        plan = plan_delete(tgt, parsed, not_kept=not_kept)
        run_plan(tgt, plan, dry_run=dry_run, yes=yes, json_output=json_output)


def register(app: typer.Typer) -> None:
    files = typer.Typer(name="files", no_args_is_help=True,
                        help="Files under the Windows folder of a disk: delete by pattern (kept in the backup).")
    app.add_typer(files, name="files")

    @files.command("delete", help="Delete the files matching PATTERN in one folder under \\Windows (wildcards * "
                   "and ? in the file name only), e.g. 'Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys'. "
                   "Each file is listed first and kept in the backup (up to 64 MiB each), so `rescue undo` "
                   "restores it.")
    def delete_cmd(
        disk: str = typer.Argument(..., metavar="DISK", help="OS disk image or block device."),
        pattern: str = typer.Argument(..., metavar="PATTERN", help="Windows\\FOLDER\\...\\NAME with * and ? in NAME."),
        extra: List[str] = typer.Option([], "--disk", help="Another disk of the VM (repeatable)."),
        not_kept: bool = typer.Option(False, "--not-kept", help="Also delete matching files over 64 MiB, which are "
                                      "NOT kept in the backup (undo cannot bring them back)."),
        dry_run: bool = DRY_RUN, yes: bool = YES, json_output: bool = JSON,
        fmt: Optional[str] = FORMAT, accel: Optional[str] = ACCEL, root: Optional[str] = ROOT,
    ) -> None:
        delete([disk, *extra], pattern, dry_run=dry_run, yes=yes, json_output=json_output, not_kept=not_kept,
               fmt=fmt, accel=accel, root=root)
