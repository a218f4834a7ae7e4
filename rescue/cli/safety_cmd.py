"""`rescue undo TARGET` and `rescue backups TARGET`: the backups every writing command
leaves on the disk (\\rescue-backup\\<id>\\ on the Windows volume, or `<hive>.rescue-backup/` beside a
bare hive file), listed and restored byte-identically."""

from __future__ import annotations

from typing import List, Optional

import typer

from rescue.cli.common import open_target, out, print_json
from rescue.cli.options import DISCARD_HIBERNATION as _DISCARD_HIB, RESET_NTFS_LOG as _RESET_LOG, ntfs as _ntfs

_JSON = typer.Option(False, "--json", help="Machine-readable output (stable keys).")
_FMT = typer.Option(None, "--format", help="Force the image format: raw, vhd, vhdx, qcow2, vmdk.")
_ACCEL = typer.Option(None, "--accel", help="auto (default), kvm or tcg; env RESCUE_ACCEL.")
_ROOT = typer.Option(None, "--root", help="DISK:PARTITION of the Windows install when there are several.")
_TARGET = typer.Argument(..., help="The disk image / block device the backups are on, or the hive file.")


def register(app: typer.Typer) -> None:
    @app.command("undo")
    def undo_cmd(
        targets: Optional[List[str]] = typer.Argument(None, metavar="TARGET...", show_default=False,
                                                      help="The disk image / block device the backups are on, or "
                                                           "the hive file; with --each, one disk per VM."),
        each: bool = typer.Option(False, "--each", help="Undo on every TARGET (a VM each): one appliance for all."),
        manifest: Optional[str] = typer.Option(None, "--manifest", metavar="FILE",
                                               help="Undo on the VMs listed in FILE (one line per VM)."),
        jobs: Optional[int] = typer.Option(None, "--jobs", metavar="N", help="Fleet mode: N appliances side by side."),
        backup: Optional[str] = typer.Option(None, "--backup", help="The backup to restore (default: the latest "
                                                                    "one still in effect); see `rescue backups`."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be restored and stop (read-only)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Restore without asking (needed without a terminal)."),
        json_output: bool = _JSON, fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL,
        root: Optional[str] = _ROOT, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Restore the files of the latest (or --backup ID) backup byte-identically (sha256-verified).
        The current state is backed up first, so an undo can be undone."""
        from rescue.cli.common import ConsoleReporter
        from rescue.cli.views import undo_outcome
        from rescue.errors import UsageError
        from rescue.safety.undo import undo

        if each or manifest:
            from rescue.cli.fleet_cmd import common_argv, run_fleet
            from rescue.fleet import undo_each

            a = {"disks": targets, "manifest": manifest, "jobs": jobs, "json_output": json_output, "yes": yes,
                 "dry_run": dry_run, "fmt": fmt, "accel": accel, "reset_ntfs_log": reset_ntfs_log,
                 "discard_hibernation": discard_hibernation}
            if root:
                raise UsageError("--root cannot be given with --each or --manifest.")
            if not dry_run and not yes:
                raise UsageError("Undo on many VMs needs --yes (or --dry-run to see what it would restore).")
            raise typer.Exit(run_fleet(
                "undo", a, write=not dry_run, title="undo",
                child_argv=lambda m: ["undo", "--manifest", m, *(["--backup", backup] if backup else []),
                                      *common_argv(a)],
                local=lambda fleet, reporter: undo_each(fleet, backup_id=backup, dry_run=dry_run,
                                                       reset_ntfs_log=reset_ntfs_log,
                                                       discard_hibernation=discard_hibernation)))
        if not targets or len(targets) != 1:
            raise UsageError("Give one TARGET (the OS disk, or the hive file); several VMs need --each.")
        target = targets[0]
        reporter = ConsoleReporter(assume_yes=yes, json_output=json_output)
        with open_target(target, write=not dry_run, fmt=fmt, accel=accel, root=root, reporter=reporter,
                         ntfs=_ntfs(reset_ntfs_log, discard_hibernation)) as tgt:
            result = undo(tgt, backup_id=backup, dry_run=dry_run)
        if json_output:
            print_json({"backup": result.manifest.summary_json() if result.manifest else None,
                        "result": result.to_json()})
        else:
            undo_outcome(result)

    @app.command("backups")
    def backups_cmd(target: str = _TARGET, json_output: bool = _JSON, fmt: Optional[str] = _FMT,
                    accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT) -> None:
        """List the backups rescue made on TARGET (id, created, kind, status, files)."""
        from rescue.safety.backup import list_backups
        from rescue.cli.views import backups_table

        with open_target(target, write=False, fmt=fmt, accel=accel, root=root) as tgt:
            manifests = list_backups(tgt)
            if json_output:
                print_json([m.summary_json() for m in manifests])
            elif not manifests:
                out.print("No backups: rescue has not changed anything on it.")
            else:
                out.print(backups_table(tgt, manifests))
