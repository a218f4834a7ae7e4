"""`rescue bcd ...`: bcdedit, offline, on a disk or on a BCD hive file.

TARGET is a disk (image or block device: one appliance launch, the store the firmware uses, see
rescue.layout_scan) or a BCD file itself (told apart by its `regf` signature: no appliance, instant).
Reading commands never write; every writing command builds a plan from the store and hands it to the
safety engine (`rescue.safety.apply.execute`): plan shown, --dry-run stops there, backup, atomic
apply, read-back.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional

import typer

from rescue.cli.options import (
    JSON as _JSON,
    FORMAT as _FMT,
    ACCEL as _ACCEL,
    ROOT as _ROOT,
    DISCARD_LOGS as _LOGS,
    DISCARD_HIBERNATION as _DISCARD_HIB,
    RESET_NTFS_LOG as _RESET_LOG,
    ntfs as _ntfs,
    DRY_RUN as _DRY,
    YES as _YES,
)
from rescue.cli.common import open_target, out, print_json
from rescue.errors import NotFoundError, NotWindowsError, RescueError, UsageError

if TYPE_CHECKING:
    from rescue.bcd.model import BcdStore
    from rescue.fileref import FileRef
    from rescue.safety.ntfs_reset import NtfsOptions
    from rescue.safety.plan import Step
    from rescue.target import Target

ENUM_SETS = ("active", "all", "bootmgr", "firmware", "osloader", "resume", "memdiag", "inherit",
             "device", "bootapp")

_STORE = typer.Option(None, "--store", help="Another BCD on the disk, e.g. EFI/Microsoft/Recovery/BCD "
                                            "(default: the store the firmware uses).")
_TARGET = typer.Argument(..., help="A disk image / block device, or a BCD hive file.")


# --- shared plumbing -------------------------------------------------------------------------
from rescue.bcd.store import device_context, host_copy, store_label, store_ref  # noqa: E402,F401


@contextlib.contextmanager
def open_store(target: str, *, write: bool = False, store: str | None = None, fmt: str | None = None,
               accel: str | None = None, root: str | None = None, discard_hive_logs: bool = False,
               ntfs: NtfsOptions | None = None) -> Iterator:
    """Yields (target, FileRef of the store, BcdStore read from a host copy)."""
    from rescue.bcd.store import open_store as read_store

    with open_target(target, write=write, fmt=fmt, accel=accel, root=root, ntfs=ntfs) as tgt:
        ref = store_ref(tgt, store)
        yield tgt, ref, read_store(tgt, ref, discard_hive_logs)


def _apply(target: str, title: str, planner: Callable[[BcdStore, FileRef, Target], Step], *, dry_run: bool,
           yes: bool, json_output: bool, store: str | None, fmt: str | None, accel: str | None, root: str | None,
           discard_hive_logs: bool, ntfs: NtfsOptions | None = None) -> None:
    """Build one plan step from the store with `planner(store, ref, target)` and run it through the engine."""
    from rescue.cli.common import run_plan
    from rescue.safety.plan import Plan

    with open_store(target, write=not dry_run, store=store, fmt=fmt, accel=accel, root=root,
                    discard_hive_logs=discard_hive_logs, ntfs=ntfs) as (tgt, ref, bcd):
        step = planner(bcd, ref, tgt)
        run_plan(tgt, Plan(title=title, steps=(step,)), dry_run=dry_run, yes=yes,
                 json_output=json_output, discard_hive_logs=discard_hive_logs)


def _disk_paths(tgt: Target) -> list:
    layout = tgt.layout
    return list(layout.disk_paths) if layout is not None else []


def _on_off(text: str) -> bool:
    from rescue.bcd.edit import parse_bool

    return parse_bool(text)


# --- commands --------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    bcd = typer.Typer(name="bcd", no_args_is_help=True,
                      help="bcdedit, offline: list and edit the BCD store of a disk, or a BCD file.")
    app.add_typer(bcd, name="bcd")

    @bcd.command("enum")
    def enum_cmd(
        target: str = _TARGET,
        which: str = typer.Argument("active", help="active (boot manager + display order), all, a type "
                                    "(osloader, resume, inherit, firmware, ...), or an identifier: "
                                    "{guid}, {bootmgr}, {badmemory}, {default}..."),
        json_output: bool = _JSON, store: Optional[str] = _STORE, fmt: Optional[str] = _FMT,
        accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT, discard_hive_logs: bool = _LOGS,
        verbose: bool = typer.Option(False, "--v", help="Identifiers as GUIDs everywhere (bcdedit /v)."),
    ) -> None:
        """List BCD objects and their elements like `bcdedit /enum`. Never writes."""
        from rescue.bcd.render import enum_json, enum_text

        with open_store(target, store=store, fmt=fmt, accel=accel, root=root,
                        discard_hive_logs=discard_hive_logs) as (tgt, ref, bcd):
            w = which.strip().lower()
            if w == "active":
                objects = bcd.active()
            elif w == "all":
                objects = bcd.all_sorted()
            elif w in ENUM_SETS:
                objects = bcd.of_type(w)
            else:
                objects = [bcd.object(which)]
            ctx = device_context(tgt)
            if json_output:
                print_json(enum_json(objects, ctx))
                return
            if not objects:
                what = "no {bootmgr} object" if w == "active" else f"no {w} objects"
                out.print(f"The store {store_label(tgt, ref)} has {what}.", markup=False)
                return
            out.print(enum_text(bcd, objects, ctx, verbose), markup=False, highlight=False, end="")

    @bcd.command("deletevalue")
    def deletevalue_cmd(
        target: str = _TARGET,
        ident: str = typer.Argument(..., metavar="ID", help="{guid}, an alias such as {badmemory}, or {default}."),
        element: str = typer.Argument(..., help="bcdedit name (badmemorylist) or hex code (0x1700000a)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Delete one element, like `bcdedit /deletevalue ID ELEMENT`."""
        from rescue.bcd.edit import plan_deletevalue

        _apply(target, f"bcd deletevalue {ident} {element}",
               lambda s, ref, tgt: plan_deletevalue(s, ref, ident, element),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    @bcd.command("set")
    def set_cmd(
        target: str = _TARGET,
        ident: str = typer.Argument(..., metavar="ID", help="{guid}, an alias such as {bootmgr}, or {default}."),
        element: str = typer.Argument(..., help="bcdedit name (timeout, bootems, description...) or hex code."),
        value: List[str] = typer.Argument(..., help="on/off/yes/no, a number (decimal or 0x), a string, "
                                          "an identifier, several for lists; devices: partition=C:, "
                                          "partition=DISK:N, boot, locate."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Set one element, like `bcdedit /set ID ELEMENT VALUE`."""
        from rescue.bcd.edit import plan_set

        _apply(target, f"bcd set {ident} {element} {' '.join(value)}",
               lambda s, ref, tgt: plan_set(s, ref, ident, element, value, device_context(tgt),
                                            _disk_paths(tgt)),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    def toggle(name: str, planner: str, id_help: str, doc: str) -> None:
        """`bcd ems` and `bcd bootems`: the same shape (ID on|off), a different element."""
        def cmd(
            target: str = _TARGET,
            ident: str = typer.Argument(..., metavar="ID", help=id_help),
            state: str = typer.Argument(..., metavar="on|off"),
            dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
            fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
            discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
        ) -> None:
            from rescue.bcd import edit

            plan = getattr(edit, planner)
            on = _on_off(state)
            _apply(target, f"bcd {name} {ident} {'on' if on else 'off'}", lambda s, ref, tgt: plan(s, ref, ident, on),
                   dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
                   root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))
        cmd.__doc__ = doc
        bcd.command(name)(cmd)

    toggle("ems", "plan_ems", "An OS loader: {default} or its {guid}.",
           "Enable or disable EMS for an OS loader entry, like `bcdedit /ems ID ON|OFF`.")
    toggle("bootems", "plan_bootems", "{bootmgr}, {emssettings}, or any entry.",
           "Enable or disable boot-application EMS, like `bcdedit /bootems ID ON|OFF`.")

    @bcd.command("emssettings")
    def emssettings_cmd(
        target: str = _TARGET,
        settings: Optional[List[str]] = typer.Argument(None, metavar="[EMSPORT:n] [EMSBAUDRATE:b]",
                                                       help="bcdedit's spelling, instead of the options."),
        port: Optional[int] = typer.Option(None, "--port", help="Serial port number (1 = COM1)."),
        baudrate: Optional[int] = typer.Option(None, "--baudrate", help="9600, 19200, 38400, 57600 or 115200."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Set the global EMS port and baud rate, like `bcdedit /emssettings EMSPORT:1 EMSBAUDRATE:115200`."""
        from rescue.bcd.edit import parse_int, plan_emssettings, validate_emssettings

        for token in settings or []:
            key, _, val = token.partition(":")
            if key.upper() == "EMSPORT" and val:
                port = parse_int(val)
            elif key.upper() == "EMSBAUDRATE" and val:
                baudrate = parse_int(val)
            else:
                raise UsageError(f"{token!r} is not EMSPORT:n or EMSBAUDRATE:b.")
        validate_emssettings(port, baudrate)   # before any appliance launch
        _apply(target, "bcd emssettings", lambda s, ref, tgt: plan_emssettings(s, ref, port, baudrate),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    # --- objects (bcdedit /create, /copy, /delete, /default, /displayorder) -----------------------
    @bcd.command("create")
    def create_cmd(
        target: str = _TARGET,
        description: str = typer.Option(..., "--d", "-d", help="The entry's description (bcdedit /d)."),
        application: str = typer.Option("osloader", "--application",
                                        help="osloader, resume, bootsector or startup."),
        ident: Optional[str] = typer.Option(None, "--id", help="The new entry's {GUID} (default: a new random one)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Create an entry, like `bcdedit /create /d DESCRIPTION /application osloader`."""
        from rescue.bcd.objects import plan_create

        _apply(target, f"bcd create {description!r}", lambda s, ref, _tgt: plan_create(s, ref, description,
                                                                                 application=application, ident=ident),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    @bcd.command("copy")
    def copy_cmd(
        target: str = _TARGET,
        source: str = typer.Argument(..., metavar="ID", help="The entry to copy: {guid}, {default}, {bootmgr}..."),
        description: str = typer.Option(..., "--d", "-d", help="The copy's description (bcdedit /d)."),
        ident: Optional[str] = typer.Option(None, "--id", help="The copy's {GUID} (default: a new random one)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Copy an entry, like `bcdedit /copy {default} /d "Windows (copy)"`."""
        from rescue.bcd.objects import plan_copy

        _apply(target, f"bcd copy {source}", lambda s, ref, _tgt: plan_copy(s, ref, source, description, ident=ident),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    @bcd.command("delete")
    def delete_cmd(
        target: str = _TARGET,
        ident: str = typer.Argument(..., metavar="ID", help="The entry to delete: {guid} (well-known ones need --force)."),
        force: bool = typer.Option(False, "--force", help="Also delete a well-known entry (bcdedit /f)."),
        nocleanup: bool = typer.Option(False, "--nocleanup",
                                       help="Leave it in the display order (bcdedit /nocleanup)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Delete an entry and take it out of the boot menu, like `bcdedit /delete ID`."""
        from rescue.bcd.objects import plan_delete

        _apply(target, f"bcd delete {ident}",
               lambda s, ref, _tgt: plan_delete(s, ref, ident, cleanup=not nocleanup, force=force),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    @bcd.command("default")
    def default_cmd(
        target: str = _TARGET,
        ident: str = typer.Argument(..., metavar="ID", help="The entry the boot manager starts: {guid}."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Make an entry the default, like `bcdedit /default ID`."""
        from rescue.bcd.objects import plan_default

        _apply(target, f"bcd default {ident}", lambda s, ref, _tgt: plan_default(s, ref, ident),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))

    @bcd.command("displayorder")
    def displayorder_cmd(
        target: str = _TARGET,
        idents: List[str] = typer.Argument(..., metavar="ID...", help="Entries in boot-menu order."),
        addfirst: bool = typer.Option(False, "--addfirst", help="Put the one entry first (bcdedit /addfirst)."),
        addlast: bool = typer.Option(False, "--addlast", help="Put the one entry last (bcdedit /addlast)."),
        remove: bool = typer.Option(False, "--remove", help="Take the entries out (bcdedit /remove)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, store: Optional[str] = _STORE,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Set the boot menu's order, like `bcdedit /displayorder ID...` (with /addfirst, /addlast or /remove)."""
        from rescue.bcd.objects import plan_displayorder

        modes = [m for m, on in (("addfirst", addfirst), ("addlast", addlast), ("remove", remove)) if on]
        if len(modes) > 1:
            raise UsageError("Give at most one of --addfirst, --addlast, --remove.")
        mode = modes[0] if modes else "set"
        _apply(target, f"bcd displayorder {' '.join(idents)}",
               lambda s, ref, _tgt: plan_displayorder(s, ref, idents, mode=mode),
               dry_run=dry_run, yes=yes, json_output=json_output, store=store, fmt=fmt, accel=accel,
               root=root, discard_hive_logs=discard_hive_logs, ntfs=_ntfs(reset_ntfs_log, discard_hibernation))
