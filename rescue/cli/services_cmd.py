"""`rescue services list|disable|enable DISK [NAME]`: boot- and system-start drivers of the control
set Windows boots, and Start=4 (or back) for one of them, through the safety engine.

    rescue services list osdisk.vhd              third-party boot/system-start drivers
    rescue services list osdisk.vhd --all        Windows' own too
    rescue services list osdisk.vhd --automatic  automatic-start services and drivers too
    rescue services disable osdisk.vhd csagent   Start=4 (plan, --dry-run, backup, read-back)
    rescue services enable osdisk.vhd csagent    Start as another control set has it (or --start)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Optional

import typer

from rescue.cli.common import open_target, out, print_json
from rescue.cli.options import ACCEL, DISCARD_LOGS, DRY_RUN, FORMAT, JSON, ROOT, YES
from rescue.errors import UsageError

if TYPE_CHECKING:
    from rescue.repairs.context import RepairContext
    from rescue.repairs.services_ops import DriverList
    from rescue.safety.plan import Plan

if TYPE_CHECKING:
    from rescue.target import Target

_DISKS = typer.Argument(..., help="OS disk (image file or block device), or a SYSTEM hive file.")
_NAME = typer.Argument(..., help="The service name of the driver, as the stop error or `services list` shows it.")


def _context(tgt: Target, discard_hive_logs: bool):
    from rescue.repairs.base import OptionValues
    from rescue.repairs.context import RepairContext

    return RepairContext(tgt, OptionValues({"discard_hive_logs": discard_hive_logs}))


def _start_value(text: Optional[str]) -> Optional[int]:
    from rescue.registry.services import START_VALUES

    if text is None:
        return None
    key = text.strip().lower()
    if key.isdigit() and int(key) in (0, 1, 2, 3):
        return int(key)
    aliases = {"auto": "automatic", "manual": "demand"}
    value = START_VALUES.get(aliases.get(key, key))
    if value is None or value == 4:
        raise UsageError(f"--start {text}: use boot, system, automatic or demand (0-3).")
    return value


def _show_list(listing: DriverList) -> None:
    from rich.table import Table

    what = ("Boot- and system-start drivers, automatic-start services and drivers" if listing.automatic
            else "Boot- and system-start drivers")
    out.print(f"{what} of {listing.control_set}"
              + ("" if listing.everything else ", third-party only (--all: every one)"), markup=False)
    if not listing.drivers:
        out.print("  none")
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("Name", "Start", "Group", "Image", "File", "Third-party"):
        table.add_column(col)
    for d in listing.drivers:
        s = d.service
        present = {True: "present", False: "MISSING", None: "?"}[d.present]
        if d.missing and (len(d.missing) > 1 or d.missing[0] != s.file):
            present += f" ({', '.join(d.missing)})"     # a ServiceDll, not the image
        table.add_row(s.name, s.start_text, s.group or "", s.file or s.image_path or "", present,
                      s.third_party_reason or "no")
    out.print(table)


def register(app: typer.Typer) -> None:
    services = typer.Typer(name="services", no_args_is_help=True,
                           help="Boot/system-start drivers: list them, disable one (Start=4), enable it again.")
    app.add_typer(services, name="services")

    @services.command("list")
    def list_cmd(disk: str = _DISKS, all_drivers: bool = typer.Option(False, "--all", help="Windows' own drivers too."),
                 automatic: bool = typer.Option(False, "--automatic",
                                                help="Automatic-start (Start 2) services and drivers too, their "
                                                     "ImagePath resolved as the Service Control Manager does."),
                 json_output: bool = JSON, fmt: Optional[str] = FORMAT, accel: Optional[str] = ACCEL,
                 root: Optional[str] = ROOT, discard_hive_logs: bool = DISCARD_LOGS) -> None:
        """Third-party boot- and system-start drivers of the current control set (--automatic: and
        automatic-start services): start type, group, image path, whether the file exists. Never writes."""
        from rescue.repairs.services_ops import list_drivers

        with open_target(disk, write=False, fmt=fmt, accel=accel, root=root) as tgt:
            listing = list_drivers(_context(tgt, discard_hive_logs), everything=all_drivers, automatic=automatic)
        if json_output:
            print_json(listing.to_json())
        else:
            _show_list(listing)

    def _write(disk: str, plan_of: Callable[[RepairContext], Plan], *, dry_run: bool, yes: bool, json_output: bool,
               fmt: str | None, accel: str | None, root: str | None, discard_hive_logs: bool) -> None:
        from rescue.cli.common import run_plan

        with open_target(disk, write=not dry_run, fmt=fmt, accel=accel, root=root) as tgt:
            plan = plan_of(_context(tgt, discard_hive_logs))
            run_plan(tgt, plan, dry_run=dry_run, yes=yes, json_output=json_output,
                     discard_hive_logs=discard_hive_logs)

    @services.command("disable")
    def disable_cmd(disk: str = _DISKS, name: str = _NAME, dry_run: bool = DRY_RUN, yes: bool = YES,
                    json_output: bool = JSON, fmt: Optional[str] = FORMAT, accel: Optional[str] = ACCEL,
                    root: Optional[str] = ROOT, discard_hive_logs: bool = DISCARD_LOGS) -> None:
        """Start=4 for NAME in the current control set (the previous value stays in the backup;
        drivers on the path to the disk or the network are refused)."""
        from rescue.repairs.services_ops import plan_disable

        _write(disk, lambda ctx: plan_disable(ctx, name), dry_run=dry_run, yes=yes, json_output=json_output,
               fmt=fmt, accel=accel, root=root, discard_hive_logs=discard_hive_logs)

    @services.command("enable")
    def enable_cmd(disk: str = _DISKS, name: str = _NAME,
                   start: Optional[str] = typer.Option(None, "--start", metavar="TYPE",
                                                       help="boot, system, automatic or demand (default: as another "
                                                            "control set has it)."),
                   dry_run: bool = DRY_RUN, yes: bool = YES, json_output: bool = JSON, fmt: Optional[str] = FORMAT,
                   accel: Optional[str] = ACCEL, root: Optional[str] = ROOT,
                   discard_hive_logs: bool = DISCARD_LOGS) -> None:
        """Give NAME its Start back: the value another control set (the last known good) still has, or
        --start TYPE."""
        from rescue.repairs.services_ops import plan_enable

        value = _start_value(start)
        _write(disk, lambda ctx: plan_enable(ctx, name, value), dry_run=dry_run, yes=yes, json_output=json_output,
               fmt=fmt, accel=accel, root=root, discard_hive_logs=discard_hive_logs)
