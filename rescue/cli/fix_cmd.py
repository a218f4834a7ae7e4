"""`rescue diagnose` and `rescue fix no-memory` (alias `fix 0xC0000017`): the whole article, one launch.

diagnose: read-only; exit 0 healthy, 1 findings (or an error's own code).
fix: diagnose → one plan → (dry-run stops) → safety engine (backup once, apply, verify) →
diagnose again on the result (same session, fresh copies) → what the operator does next.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import List, Optional

import typer

from rescue.cli.options import (
    JSON as _JSON,
    FORMAT as _FMT,
    ACCEL as _ACCEL,
    ROOT as _ROOT,
    DISCARD_LOGS as _LOGS,
)
from rescue.cli.common import open_disks, out, print_json
from rescue.errors import ExitCode, UnsafeStateError

_DISKS = typer.Argument(..., metavar="DISK...", help="OS disk (image or block device), then data disks.")
_RAM = typer.Option(None, "--ram", help="The VM's memory (e.g. 16G), for the dump-space check.")
_DUMP = typer.Option(None, "--dump-file", help=r"Where the memory dump goes, e.g. F:\MEMORY.DMP on a data disk.")
_TEMP = typer.Option("D:", "--temp-drive", help="The temporary drive the page file belongs on (Azure: D:).")

_MARK = {"found": "[red]FOUND[/red]", "ok": "[green]ok[/green]", "unknown": "[yellow]?[/yellow]"}


def _options(ram, dump_file, temp_drive, cleanup, discard, expand=False):
    from rescue.registry.crashdump import parse_size
    from rescue.repairs.no_memory import FixOptions

    return FixOptions(ram_bytes=parse_size(ram) if ram else None, dump_file=dump_file, temp_drive=temp_drive,
                      cleanup=cleanup, discard_hive_logs=discard, expand=expand)


@contextlib.contextmanager
def _staged_images(disks, expand: Optional[str], allow_large: bool, dry_run: bool, fmt: Optional[str]):
    """(images for open_disks, Staging or None). With --expand, disk 0 is opened through a qcow2
    overlay already SIZE big, so the whole fix (grow, backups, edits) runs in one launch and reaches
    the image only when `Staging.commit()` is called after it succeeded (rescue.space.staging)."""
    if not expand:
        yield None, None
        return
    from rescue.disk.formats import check_not_in_use, check_writable, detect
    from rescue.space.expand import host_checks, target_size
    from rescue.space.staging import staged

    images = [detect(p, fmt) for p in disks]
    first = images[0]
    new_size = first.virtual_size if expand.strip().lower() == "fill" else \
        target_size(first.virtual_size, size=expand, add=None)
    host_checks(first, new_size, allow_large=allow_large)
    if not dry_run:
        check_writable(first)
        check_not_in_use(first)
    with staged(first, new_size, dry_run=dry_run) as stage:
        yield [stage.working_image, *images[1:]], stage


def render_diagnosis(diag, title: str = "Diagnosis: stop error 0xC0000017 (STATUS_NO_MEMORY)") -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    t.add_column("check")
    t.add_column("result")
    t.add_column("evidence", overflow="fold")
    for f in diag.findings:
        t.add_row(f.title, _MARK.get(f.status, f.status) + (" (blocks fixes)" if f.blocker else ""), f.evidence)
    out.print(t)


def _summary_line(diag) -> None:
    if diag.blockers:
        out.print("[red]A fix is blocked until the unsafe state above is cleared; nothing can be written safely.[/red]")
    elif diag.healthy:
        out.print("[green]Healthy: none of the article's causes were found.[/green]")
    else:
        cmds = diag.fix_commands()
        out.print(f"{len(diag.found)} problem(s) found." + (" Fix them with:" if cmds else ""))
        for c in cmds:
            out.print(f"  {c}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def diagnose(disks: List[str] = _DISKS, ram: Optional[str] = _RAM, dump_file: Optional[str] = _DUMP,
                 temp_drive: str = _TEMP, json_output: bool = _JSON, fmt: Optional[str] = _FMT,
                 accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
                 discard_hive_logs: bool = _LOGS) -> None:
        """Check every cause of 0xC0000017 the article names (read-only); print the fixing command.
        Exit 0 healthy, 1 problems found."""
        from rescue.repairs.no_memory import diagnose as run_diagnose

        opts = _options(ram, dump_file, temp_drive, False, discard_hive_logs)
        with open_disks(disks, write=False, fmt=fmt, accel=accel, root=root) as target:
            diag, _ = run_diagnose(target, opts)
        if json_output:
            print_json(diag.to_json())
        else:
            render_diagnosis(diag)
            _summary_line(diag)
        raise typer.Exit(ExitCode.OK if diag.healthy else ExitCode.FINDINGS)

    fix_app = typer.Typer(help="Repair a disk for a named stop error.", no_args_is_help=True)
    app.add_typer(fix_app, name="fix")

    def no_memory(disks: List[str] = _DISKS, ram: Optional[str] = _RAM, dump_file: Optional[str] = _DUMP,
                  temp_drive: str = _TEMP,
                  cleanup: bool = typer.Option(False, "--cleanup", help="Also remove what Disk Cleanup removes (not backed up)."),
                  expand: Optional[str] = typer.Option(
                      None, "--expand", metavar="SIZE",
                      help="Also grow the OS disk image to SIZE (e.g. 127G; the article allows up to 1T) and the "
                           "Windows partition and NTFS with it; `fill` grows them into a disk already grown "
                           "(e.g. by `az disk update`). Cannot be undone by `rescue undo`."),
                  allow_large: bool = typer.Option(False, "--allow-large", help="Allow --expand beyond 1 TiB."),
                  dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; open the disk read-only."),
                  yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (required without a terminal)."),
                  json_output: bool = _JSON, fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL,
                  root: Optional[str] = _ROOT, discard_hive_logs: bool = _LOGS) -> None:
        """Fix stop error 0xC0000017: every step of Azure's article that applies, one plan, one launch."""
        from rescue.repairs.no_memory import diagnose as run_diagnose
        from rescue.repairs.no_memory import next_steps, plan_fix
        from rescue.safety.apply import execute

        opts = _options(ram, dump_file, temp_drive, cleanup, discard_hive_logs, expand=bool(expand))
        with _staged_images(disks, expand, allow_large, dry_run, fmt) as (images, stage), \
                open_disks(disks, write=not dry_run, fmt=fmt, accel=accel, root=root, images=images) as target:
            before, facts = run_diagnose(target, opts)
            if before.blockers:
                if not json_output:
                    render_diagnosis(before)
                first = before.blockers[0]
                raise UnsafeStateError(f"Refusing to fix: {first.evidence}.",
                                       hint="Nothing was written. Clear that state first (see the diagnosis).")
            if not json_output:
                render_diagnosis(before, title="Before")
            plan = plan_fix(target, before, facts, opts)
            if json_output:
                # One JSON document for the whole run: capture the engine's {plan, result} and nest it.
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    result = execute(target, plan, dry_run=dry_run, assume_yes=yes, json_output=True,
                                     discard_hive_logs=discard_hive_logs)
                doc = {"before": before.to_json(), **json.loads(buf.getvalue()), "after": None,
                       "backup": result.backup_id, "commit": None}
            else:
                result = execute(target, plan, dry_run=dry_run, assume_yes=yes, json_output=False,
                                 discard_hive_logs=discard_hive_logs)
            if dry_run or result.nothing_to_do:
                if json_output:
                    print_json(doc)
                return
            from rescue.layout_scan import refresh_usage

            # The engine dropped the host copies of every file it changed (keeping the ones it read
            # back as identical to what it wrote); nothing else changed, so the rest stay valid.
            target.layout = refresh_usage(target.session, target.layout)
            # The cleanup categories were walked minutes ago in this launch; only the files the
            # engine deleted (and read back as gone) changed there.
            prior = None
            if facts.get("scan") is not None:
                win = target.layout.root
                prior = (facts["scan"], {f.path for f in result.files
                                         if (f.disk, f.partition) == (win.disk, win.partition)})
            after, _ = run_diagnose(target, opts, prior_scan=prior)
            target.close()
            target.session.close()
            # Only now, with the launch over and everything verified in the overlay, does the image
            # grow and receive the changes (then read back).
            committed = stage.commit() if stage is not None else None
        if json_output:
            doc["after"] = after.to_json()
            doc["commit"] = committed.to_json() if committed else None
            print_json(doc)
            return
        render_diagnosis(after, title="After")
        if committed is not None:
            out.print(f"Committed {committed.committed_bytes:,} changed bytes into {disks[0]} and read them back"
                      + (" (the image grew; `rescue undo` cannot shrink it)." if committed.image_grown else "."))
        if result.backup_id:
            out.print(f"Backup: {result.backup_id} (undo with `rescue undo {' '.join(disks)}`)")
        out.print("[bold]Next steps[/bold]")
        for i, line in enumerate(next_steps(target.layout, grown=result.prelude is not None), 1):
            out.print(f"  {i}. {line}")

    fix_app.command("no-memory")(no_memory)
    fix_app.command("0xC0000017", hidden=False, help="Alias of `fix no-memory`.")(no_memory)
