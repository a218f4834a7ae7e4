"""`rescue reg query|add|delete`, `rescue pagefile show|reset`, `rescue crashdump show|enable`.

`rescue reg` takes reg.exe's own spelling after TARGET, so a line from a Microsoft article works as is:
    rescue reg add osdisk.vhd HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl /v NMICrashDump /t REG_DWORD /d 1
Switches may be written `/v NAME` or `-v NAME` (reg.exe accepts both) or as options (`--v NAME`,
`--value NAME`, `--t`, `--d`, `--ve`, `--f`...). TARGET is a disk (one appliance launch; hives on the
Windows volume) or a hive file told apart by its `regf` signature (keys relative to its root; a leading
HKLM\\SYSTEM-style prefix is accepted). Input is checked before the appliance starts. Writes go
through the safety engine: plan, --dry-run, backup, atomic apply, read-back; `/f` skips the prompt as
it does in reg.exe (same as --yes).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

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
from rescue.cli.common import err, info, open_target, out, print_json, warn
from rescue.errors import UsageError

if TYPE_CHECKING:
    from rescue.registry.paths import KeySpec
    from rescue.safety.plan import Step

if TYPE_CHECKING:
    from rescue.repairs.findings import Finding
    from rescue.target import Target

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
_USER = typer.Option(None, "--user", help="Whose HKCU: a profile folder name under \\Users, or a SID.")
_TARGET = typer.Argument(..., help="A disk image / block device, or a hive file.")
_KEY = typer.Argument(..., help="The key as reg.exe spells it, e.g. HKLM\\SYSTEM\\CurrentControlSet\\Control.")
_DISKS = typer.Argument(..., help="OS disk first, then data disks (image files or block devices), or a SYSTEM hive file.")
_TEMP = typer.Option("D:", "--temp-drive", help="The VM's temporary drive letter (Azure: D:).")


# --- shared plumbing -------------------------------------------------------------------------
def _locate(tgt: Target, spec: KeySpec, user: str | None):
    from rescue.registry.paths import locate_in_file, locate_on_disk

    from rescue.target import HostFileTarget

    if isinstance(tgt, HostFileTarget) and tgt.session is None:
        if user:
            raise UsageError("--user picks a profile on a disk; TARGET is already a hive file.")
        return locate_in_file(spec, tgt.main)
    return locate_on_disk(spec, tgt, user=user)


def _open_key(tgt: Target, spec: KeySpec, user: str | None, discard_hive_logs: bool):
    """(location, Hive of a host copy, resolved path) for a key spec on an open target."""
    from rescue.registry.paths import resolve_path
    from rescue.safety.hivecheck import open_hive

    loc = _locate(tgt, spec, user)
    hive = open_hive(tgt, loc.ref, discard_hive_logs)
    resolved = resolve_path(hive, loc.path, name=loc.hive_name)
    if resolved.control_set is not None:
        info(f"CurrentControlSet is ControlSet{resolved.control_set:03d} (Select\\Current in {loc.hive_name}).")
    return loc, hive, resolved


def _execute(tgt: Target, title: str, step: Step, *, dry_run: bool, yes: bool, json_output: bool,
             discard_hive_logs: bool):
    from rescue.cli.common import run_plan
    from rescue.safety.plan import Plan

    return run_plan(tgt, Plan(title=title, steps=(step,)), dry_run=dry_run, yes=yes,
                    json_output=json_output, discard_hive_logs=discard_hive_logs)


def _raw(text: str) -> None:
    """Registry text exactly as it is (no rich markup, emoji codes or wrapping): reg.exe's layout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _lines(lines) -> None:
    _raw("".join(line + "\n" for line in lines))


def _disks(disks: List[str]) -> tuple[str, list[str]]:
    return disks[0], list(disks[1:])


# --- `rescue inspect` registry section (the lead wires it into rescue.cli.sections) -----------
def inspect_section(target: Target):
    from rescue.cli.sections import Section
    from rescue.registry.render import crashdump_lines, pagefile_lines, pagefile_where_lines
    from rescue.registry.findings import PROBLEMS
    from rescue.registry.summary import summarize
    from rescue.repairs.findings import FOUND

    if target.layout is None or target.layout.root is None:
        return None
    s = summarize(target)
    findings = [f"{PROBLEMS.get(f.id, f.title)}: {f.evidence}" for f in s.findings if f.status == FOUND]

    def render() -> None:
        out.print("[bold]Registry[/bold]")
        lines = pagefile_lines(s.pagefile) + pagefile_where_lines(s.locations, s.found_pagefiles, s.temp_drive)
        lines += ["Crash dumps"] + ["  " + x for x in crashdump_lines(s.crashdump, s.dump_space)[1:]]
        lines += [f"WHEA BadPages in ControlSet{w.control_set:03d}: {w.size} bytes" for w in s.whea if w.present]
        out.print("\n".join("  " + line for line in lines), markup=False, highlight=False, emoji=False)

    return Section(key="registry", title="Registry", data=s.to_json(), findings=findings, render=render)


def _print_findings(findings: Sequence[Finding]) -> None:
    from rescue.registry.findings import PROBLEMS
    from rescue.repairs.findings import FOUND, UNKNOWN

    out.print("Findings")
    for f in findings:
        mark = {FOUND: "[yellow]![/yellow]", UNKNOWN: "?"}.get(f.status, "[green]ok[/green]")
        what = PROBLEMS.get(f.id, f.title) if f.status == FOUND else f.title
        out.print(f"  {mark} ", end="")
        out.print(f"{what}: {f.evidence}", markup=False, highlight=False, emoji=False)


# --- commands ------------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    reg = typer.Typer(name="reg", no_args_is_help=True,
                      help="reg.exe, offline: query, add and delete values in a disk's hives or a hive file.")
    app.add_typer(reg, name="reg")

    @reg.command("query", context_settings=_EXTRA)
    def query_cmd(
        ctx: typer.Context, target: str = _TARGET, key: str = _KEY,
        value: Optional[str] = typer.Option(None, "--v", "--value", help="The value to show (reg.exe /v)."),
        ve: bool = typer.Option(False, "--ve", help="Show the (Default) value (reg.exe /ve)."),
        recurse: bool = typer.Option(False, "--s", "--recurse", help="Every key below too (reg.exe /s)."),
        json_output: bool = _JSON, user: Optional[str] = _USER, fmt: Optional[str] = _FMT,
        accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT, discard_hive_logs: bool = _LOGS,
    ) -> None:
        """Show a key's values and subkeys like `reg query KEY` with /v NAME, /ve or /s. Never writes."""
        from rescue.registry.paths import parse_key
        from rescue.registry.regops import RegArgs, parse_switches, query_key, query_value
        from rescue.registry.render import query_json, query_text, query_value_text

        args = parse_switches("query", ctx.args, RegArgs(value=value, default=ve, recurse=recurse))
        spec = parse_key(key)
        with open_target(target, write=False, fmt=fmt, accel=accel, root=root) as tgt:
            loc, hive, resolved = _open_key(tgt, spec, user, discard_hive_logs)
            if args.value is not None or args.default:
                name = args.value or ""
                pairs = query_value(hive, resolved.path, spec.display, name, recurse=args.recurse)
                if json_output:
                    print_json(query_json(loc, resolved.path, resolved.control_set, [], value=name, pairs=pairs))
                else:
                    _raw(query_value_text(pairs, recurse=args.recurse))
                return
            listings = query_key(hive, resolved.path, spec.display, recurse=args.recurse)
            if json_output:
                print_json(query_json(loc, resolved.path, resolved.control_set, listings))
            else:
                _raw(query_text(listings, recurse=args.recurse))

    @reg.command("add", context_settings=_EXTRA)
    def add_cmd(
        ctx: typer.Context, target: str = _TARGET, key: str = _KEY,
        value: Optional[str] = typer.Option(None, "--v", "--value", help="Value name (reg.exe /v)."),
        ve: bool = typer.Option(False, "--ve", help="The (Default) value (reg.exe /ve)."),
        type_: Optional[str] = typer.Option(None, "--t", "--type", help="REG_SZ (default), REG_EXPAND_SZ, "
                                            "REG_MULTI_SZ, REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE."),
        data: Optional[str] = typer.Option(None, "--d", "--data", help="The data (reg.exe /d): numbers decimal "
                                           "or 0x; REG_BINARY hex; REG_MULTI_SZ items separated by \\0."),
        separator: Optional[str] = typer.Option(None, "--separator", help="REG_MULTI_SZ separator (reg.exe /s)."),
        force: bool = typer.Option(False, "--f", "--force", help="No prompt, as reg.exe /f (same as --yes)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, user: Optional[str] = _USER,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG,
                   discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Set a value like `reg add KEY /v NAME /t TYPE /d DATA /f`
        (also /ve, /s SEP).

        As in reg.exe, without /v the key's (Default) value is written."""
        from rescue.registry.paths import parse_key
        from rescue.registry.regops import RegArgs, encode_data, parse_switches, parse_type, plan_add

        args = parse_switches("add", ctx.args, RegArgs(value=value, default=ve, type=type_, data=data,
                                                       separator=separator, force=force))
        t = parse_type(args.type)
        payload = encode_data(t, args.data, args.separator)
        spec = parse_key(key)
        name = args.value or ""
        with open_target(target, write=not dry_run, fmt=fmt, accel=accel, root=root,
                         ntfs=_ntfs(reset_ntfs_log, discard_hibernation)) as tgt:
            loc, hive, resolved = _open_key(tgt, spec, user, discard_hive_logs)
            step = plan_add(hive, loc.ref, resolved.path, name, t, payload, display=spec.display)
            _execute(tgt, f"reg add {spec.display}", step, dry_run=dry_run, yes=yes or args.force,
                     json_output=json_output, discard_hive_logs=discard_hive_logs)

    @reg.command("delete", context_settings=_EXTRA)
    def delete_cmd(
        ctx: typer.Context, target: str = _TARGET, key: str = _KEY,
        value: Optional[str] = typer.Option(None, "--v", "--value", help="Value to delete (reg.exe /v)."),
        ve: bool = typer.Option(False, "--ve", help="Delete the (Default) value (reg.exe /ve)."),
        va: bool = typer.Option(False, "--va", help="Delete every value of the key (reg.exe /va)."),
        force: bool = typer.Option(False, "--f", "--force", help="No prompt, as reg.exe /f (same as --yes)."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, user: Optional[str] = _USER,
        fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
        discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG,
                   discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        """Delete a value, every value (/va), or the key with everything below it, like `reg delete`."""
        from rescue.registry.paths import parse_key
        from rescue.registry.regops import (RegArgs, parse_switches, plan_delete_all_values, plan_delete_key,
                                            plan_delete_value)

        args = parse_switches("delete", ctx.args, RegArgs(value=value, default=ve, all_values=va, force=force))
        spec = parse_key(key)
        with open_target(target, write=not dry_run, fmt=fmt, accel=accel, root=root,
                         ntfs=_ntfs(reset_ntfs_log, discard_hibernation)) as tgt:
            loc, hive, resolved = _open_key(tgt, spec, user, discard_hive_logs)
            p, d = resolved.path, spec.display
            if args.value is not None or args.default:
                step = plan_delete_value(hive, loc.ref, p, args.value or "", display=d)
            elif args.all_values:
                step = plan_delete_all_values(hive, loc.ref, p, display=d)
            else:
                step = plan_delete_key(hive, loc.ref, p, display=d)
            _execute(tgt, f"reg delete {d}", step, dry_run=dry_run, yes=yes or args.force,
                     json_output=json_output, discard_hive_logs=discard_hive_logs)

    _register_pagefile(app)
    _register_crashdump(app)


def _register_pagefile(app: typer.Typer) -> None:
    pf = typer.Typer(name="pagefile", no_args_is_help=True,
                     help="Page file settings and files (article step 4): show, or reset to the temporary drive.")
    app.add_typer(pf, name="pagefile")

    @pf.command("show")
    def show_cmd(disks: List[str] = _DISKS, temp_drive: str = _TEMP, json_output: bool = _JSON,
                 fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
                 discard_hive_logs: bool = _LOGS) -> None:
        """PagingFiles / ExistingPageFiles of every control set, where they point, the pagefile.sys files
        on the attached volumes, and whether the page file is on the temporary drive. Never writes."""
        from rescue.registry.pagefile import norm_drive
        from rescue.registry.render import pagefile_lines, pagefile_where_lines
        from rescue.registry.summary import summarize

        temp = norm_drive(temp_drive)
        first, rest = _disks(disks)
        with open_target(first, write=False, fmt=fmt, accel=accel, root=root, extra_disks=rest) as tgt:
            s = summarize(tgt, temp_drive=temp, discard_hive_logs=discard_hive_logs)
            findings = [f for f in s.findings if f.id.startswith("pagefile")]
            if json_output:
                data = s.to_json()
                print_json({k: data[k] for k in ("system_hive", "temp_drive", "current_control_set", "pagefile",
                                                 "pagefile_locations", "pagefiles_found")}
                           | {"findings": [f.to_json() for f in findings]})
                return
            mapped = tgt.layout is not None
            _lines(pagefile_lines(s.pagefile) + pagefile_where_lines(s.locations, s.found_pagefiles, temp,
                                                                     mapped=mapped))
            _print_findings(findings)

    @pf.command("reset")
    def reset_cmd(disks: List[str] = _DISKS, location: str = typer.Option(
                      "D:\\pagefile.sys 0 0", "--location",
                      help="New PagingFiles: a drive (D:), D:\\pagefile.sys, or 'E:\\pagefile.sys MIN MAX' (MB)."),
                  temp_drive: str = _TEMP, dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON,
                  fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
                  discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG,
                   discard_hibernation: bool = _DISCARD_HIB) -> None:
        """Delete pagefile.sys on the VHD volumes (not on the temporary drive) and set PagingFiles back
        to the temporary drive, system managed, in every control set. The page file is not backed up
        (Windows recreates it); the SYSTEM hive is."""
        from rescue.registry.pagefile import (bytes_freed, norm_drive, normalize_location, plan_pagefile_reset,
                                              scan_pagefiles)
        from rescue.registry.summary import open_hive, system_ref

        loc = normalize_location(location)
        temp = norm_drive(temp_drive)
        first, rest = _disks(disks)
        with open_target(first, write=not dry_run, fmt=fmt, accel=accel, root=root,
                         ntfs=_ntfs(reset_ntfs_log, discard_hibernation), extra_disks=rest) as tgt:
            ref = system_ref(tgt)
            hive = open_hive(tgt, ref, discard_hive_logs)
            step = plan_pagefile_reset(hive, ref, scan_pagefiles(tgt), location=loc, temp_drive=temp)
            result = _execute(tgt, "pagefile reset", step, dry_run=dry_run, yes=yes, json_output=json_output,
                              discard_hive_logs=discard_hive_logs)
            freed = bytes_freed(step)
            if not json_output and getattr(result, "applied", False) and freed:
                out.print(f"Freed {freed:,} bytes on the VHD volumes.")


def _register_crashdump(app: typer.Typer) -> None:
    cd = typer.Typer(name="crashdump", no_args_is_help=True,
                     help="Crash dump and NMI settings (article steps 5b, 5c): show, or enable.")
    app.add_typer(cd, name="crashdump")
    ram_opt = typer.Option(None, "--ram", help="The VM's memory size, e.g. 16G: checks the dump fits.")

    @cd.command("show")
    def show_cmd(disks: List[str] = _DISKS, ram: Optional[str] = ram_opt, json_output: bool = _JSON,
                 fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
                 discard_hive_logs: bool = _LOGS) -> None:
        """CrashDumpEnabled, DumpFile and NMICrashDump per control set, whether the dump volume has room
        for RAM, and WHEA BadPages. Never writes."""
        from rescue.registry.crashdump import parse_size
        from rescue.registry.render import crashdump_lines
        from rescue.registry.summary import summarize

        ram_bytes = parse_size(ram) if ram else None
        first, rest = _disks(disks)
        with open_target(first, write=False, fmt=fmt, accel=accel, root=root, extra_disks=rest) as tgt:
            s = summarize(tgt, ram_bytes=ram_bytes, discard_hive_logs=discard_hive_logs)
            findings = [f for f in s.findings if not f.id.startswith("pagefile")]
            if json_output:
                data = s.to_json()
                print_json({k: data[k] for k in ("system_hive", "current_control_set", "crashdump", "dump_space",
                                                 "whea_bad_pages")} | {"findings": [f.to_json() for f in findings]})
                return
            _lines(crashdump_lines(s.crashdump, s.dump_space))
            _print_findings(findings)

    @cd.command("enable")
    def enable_cmd(disks: List[str] = _DISKS,
                   dump_file: str = typer.Option("%SystemRoot%\\MEMORY.DMP", "--dump-file",
                                                 help="Where Windows writes the dump, e.g. F:\\MEMORY.DMP on a data disk."),
                   ram: Optional[str] = ram_opt, dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON,
                   fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT,
                   discard_hive_logs: bool = _LOGS, reset_ntfs_log: bool = _RESET_LOG,
                   discard_hibernation: bool = _DISCARD_HIB) -> None:
        """CrashDumpEnabled=1, DumpFile, NMICrashDump=1 in every control set (ControlSet001 and 002 as the
        article does), after checking the dump volume's free space against RAM."""
        from rescue.registry.crashdump import check_dump_space, parse_size, plan_crashdump_enable, validate_dump_file
        from rescue.registry.pagefile import scan_pagefiles
        from rescue.registry.summary import open_hive, system_ref

        df = validate_dump_file(dump_file)
        ram_bytes = parse_size(ram) if ram else None
        first, rest = _disks(disks)
        with open_target(first, write=not dry_run, fmt=fmt, accel=accel, root=root,
                         ntfs=_ntfs(reset_ntfs_log, discard_hibernation), extra_disks=rest) as tgt:
            ref = system_ref(tgt)
            hive = open_hive(tgt, ref, discard_hive_logs)
            step = plan_crashdump_enable(hive, ref, dump_file=df)
            space = check_dump_space(df, tgt.layout, ram_bytes=ram_bytes,
                                     found_pagefiles=scan_pagefiles(tgt))
            if space.fits is False:
                warn(space.message)
            elif not json_output:
                err.print(f"Dump space: {space.message}.", markup=False, highlight=False)
            from rescue.safety.plan import Step
            step = Step(step.action, step.title, step.changes, step.skipped, step.notes + (f"dump space: {space.message}",))
            _execute(tgt, "crashdump enable", step, dry_run=dry_run, yes=yes, json_output=json_output,
                     discard_hive_logs=discard_hive_logs)
