"""Free space commands (the article's step 2): `rescue cleanup`, `rescue expand`,
`rescue frag` (alias `fragmentation`), and the space section of `rescue inspect`.

cleanup goes through the safety engine (plan, --dry-run, confirmation, the plan and a manifest kept
on the disk); expand has its own flow (rescue.space.expand: overlay, one launch, commit) because
growing an image file is not a file change the engine could back up.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.table import Table

from rescue.cli.common import ConsoleReporter, err, open_target, out, print_json, warn
from rescue.cli.options import DISCARD_HIBERNATION as _DISCARD_HIB, RESET_NTFS_LOG as _RESET_LOG, ntfs as _ntfs
from rescue.errors import DeclinedError, UsageError
from rescue.units import count, format_bytes

if TYPE_CHECKING:
    from rescue.space.fragmentation import FragReport

if TYPE_CHECKING:
    from rescue.safety.ntfs_reset import NtfsOptions
    from rescue.space.cleanup import VolumeScan
    from rescue.space.expand import ExpandPlan
    from rescue.target import Target

_JSON = typer.Option(False, "--json", help="Machine-readable output (stable keys).")
_FMT = typer.Option(None, "--format", help="Force the image format: raw, vhd, vhdx, qcow2, vmdk.")
_ACCEL = typer.Option(None, "--accel", help="auto (default), kvm or tcg; env RESCUE_ACCEL.")
_ROOT = typer.Option(None, "--root", help="DISK:PARTITION of the Windows install when there are several.")
_DRY = typer.Option(False, "--dry-run", help="Show the plan and stop (nothing is written).")
_YES = typer.Option(False, "--yes", "-y", help="Apply without asking (needed when stdin is not a terminal).")
_LOGS = typer.Option(False, "--discard-hive-logs", help="Accepted for symmetry with other writing commands "
                     "(cleanup edits no hive).")


# --- cleanup ---------------------------------------------------------------------------------------
def _render_scan(scan: VolumeScan) -> None:
    t = Table(title=f"Cleanup: disk {scan.disk} partition {scan.partition}"
                    + (f" ({scan.letter})" if scan.letter else "")
                    + f", {format_bytes(scan.free_bytes)} free of {format_bytes(scan.size_bytes)}")
    for col in ("category", "files", "size", "frees", "kept", "included"):
        t.add_column(col, justify="right" if col in ("files", "size", "frees", "kept") else "left")
    for c in scan.categories:
        t.add_row(f"{c.key}\n[dim]{c.title}[/dim]", f"{c.file_count:,}", format_bytes(c.bytes), format_bytes(c.reclaim_bytes),
                  str(len(c.skipped)) if c.skipped else "",
                  "yes" if c.included else f"[dim]opt-in: --include {c.key}[/dim]")
    t.add_row("[bold]total (included)[/bold]", f"{scan.file_count:,}", format_bytes(scan.bytes), format_bytes(scan.reclaim_bytes), "", "")
    out.print(t)


def cleanup(disks: List[str], *, dry_run: bool, yes: bool, json_output: bool, include: List[str],
            fmt: Optional[str], accel: Optional[str], root: Optional[str], discard_hive_logs: bool = False,
            ntfs: NtfsOptions | None = None) -> int:
    import time

    from rescue.cli.views import apply_outcome
    from rescue.safety.apply import execute
    from rescue.space.cleanup import build_plan, parse_include, scan_volume

    keys = parse_include(include)
    with open_target(disks[0], write=not dry_run, fmt=fmt, accel=accel, root=root, extra_disks=disks[1:],
                     ntfs=ntfs) as tgt:
        if tgt.session is None:
            raise UsageError("cleanup works on a disk image or block device, not on a hive file.")
        layout = tgt.layout
        win = layout.require_root()
        vol = layout.volume(win.disk, win.partition)
        part = tgt.session.partition(win.disk, win.partition)
        started = time.monotonic()
        scan = scan_volume(tgt.session, part, include=keys, letter=vol.letter if vol else None)
        scan_s = time.monotonic() - started
        if not json_output:
            _render_scan(scan)
        plan = build_plan(scan)
        started = time.monotonic()
        # The safety engine deletes the listed files in one batch by their exact names (the scan
        # listed real spellings), keeps the plan and the manifest of what was deleted on the disk,
        # and reports what could not be deleted. In --json mode its document is folded into ours,
        # so stdout holds exactly one JSON document.
        tgt.reporter = ConsoleReporter(assume_yes=yes, json_output=json_output)
        result = execute(tgt, plan, dry_run=dry_run, discard_hive_logs=discard_hive_logs)
        if not json_output:
            apply_outcome(result)
        apply_s = time.monotonic() - started
        after = None
        if result.applied:
            after = tgt.session.usage(tgt.session.mount(part, write=tgt.write)).free_bytes
        if json_output:
            print_json({"cleanup": scan.to_json(), "plan": result.plan_json(plan), "result": result.to_json(),
                        "free_before": scan.free_bytes, "free_after": after,
                        "seconds": {"scan": round(scan_s, 2), "apply": round(apply_s, 2)}})
        elif after is not None:
            out.print(f"Free space on {scan.letter or 'the Windows volume'}: {format_bytes(scan.free_bytes)} -> {format_bytes(after)} "
                      f"(+{format_bytes(after - scan.free_bytes)}; {count(len(result.files), 'file')} removed in {apply_s:.1f} s).")
    return 0


# --- expand ----------------------------------------------------------------------------------------
def _render_expand_plan(plan: ExpandPlan) -> None:
    from rescue.cli.views import print_resets
    from rescue.safety.ntfs_reset import ResetPreview
    from rescue.space.expand import human

    if plan.ntfs_resets:
        print_resets(ResetPreview(plan.ntfs_resets))
    t = Table(title=f"Expand {plan.disk} ({plan.format_label}, {plan.table.upper()})")
    t.add_column("#", justify="right")
    t.add_column("step")
    for i, s in enumerate(plan.steps(), start=1):
        t.add_row(str(i), s)
    out.print(t)
    if plan.fs_size is not None:
        out.print(f"NTFS now {human(plan.fs_size)} with {format_bytes(plan.fs_free)} free; after: about "
                  f"{human(plan.new_part_size)}.")
    for n in plan.notes:
        out.print(f"[dim]{n}[/dim]")


def _confirmer(*, dry_run: bool, yes: bool, json_output: bool):
    def confirm(plan: ExpandPlan) -> None:
        if json_output:
            if dry_run or plan.nothing_to_do:
                print_json({"expand": plan.to_json(), "applied": False, "dry_run": dry_run})
        else:
            _render_expand_plan(plan)
            if plan.nothing_to_do:
                out.print("Nothing to do: the Windows partition already fills the disk.")
            elif dry_run:
                out.print("[dim]Dry run: nothing was written.[/dim]")
        if dry_run or plan.nothing_to_do or yes:
            return
        if not sys.stdin.isatty():
            raise UsageError("stdin is not a terminal, so the plan cannot be confirmed: pass --yes to apply it.")
        if not typer.confirm("Apply this plan?", default=False, err=True):
            raise DeclinedError("Declined; nothing was written.")
    return confirm


def expand(disk: str, *, size: Optional[str], add: Optional[str], allow_large: bool, dry_run: bool, yes: bool,
           json_output: bool, fmt: Optional[str], accel: Optional[str], ntfs: NtfsOptions | None = None) -> int:
    from rescue.space import expand as ex

    res = ex.run(disk, size=size, add=add, allow_large=allow_large, dry_run=dry_run, fmt=fmt, accel=accel,
                 confirm=_confirmer(dry_run=dry_run, yes=yes, json_output=json_output), notify=warn, ntfs=ntfs)
    if isinstance(res, ex.ExpandResult):
        if json_output:
            print_json({"expand": res.to_json(), "applied": True, "dry_run": False})
        else:
            out.print(f"Done: partition {res.plan.partition} and its NTFS grew from {ex.human(res.fs_size_before)} "
                      f"to {ex.human(res.fs_size_after)}; free {format_bytes(res.free_before)} -> {format_bytes(res.free_after)}. "
                      f"Partition table saved in {res.backup} on the volume.")
            if res.image_grown:
                out.print(f"The image grew to {ex.human(res.plan.new_disk_size)}; `rescue undo` cannot shrink it.")
            out.print("[dim]Timings (s): " + ", ".join(f"{k} {v}" for k, v in res.seconds.items()) + "[/dim]")
    return 0


# --- fragmentation ---------------------------------------------------------------------------------
def _render_frag(r: FragReport) -> None:
    t = Table(title=f"Fragmentation: disk {r.disk} partition {r.partition}" + (f" ({r.letter})" if r.letter else ""))
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("free space", format_bytes(r.free_bytes))
    t.add_row("largest free extent", f"{format_bytes(r.largest_free_bytes)} ({r.free.largest_percent}% of free)")
    t.add_row("free extents", f"{r.free.free_extents:,}")
    for f in r.files:
        t.add_row(f"{f.path} fragments", "resident" if f.fragments == 0 and f.path != "\\$MFT" else f"{f.fragments:,}")
    out.print(t)
    for reason in r.reasons:
        out.print(f"[yellow]{reason}[/yellow]")
    if r.recommend_defrag:
        out.print("[bold]Recommended:[/bold] " + r.advice())
    else:
        out.print("No defragmentation needed (and none could be done here: there is no NTFS defragmenter "
                  "for Linux; Windows' own is `defrag " + (r.letter or "C:") + " /u /x /g`).")


def frag(disks: List[str], *, json_output: bool, fmt: Optional[str], accel: Optional[str], root: Optional[str]) -> int:
    from rescue.space.fragmentation import report

    with open_target(disks[0], write=False, fmt=fmt, accel=accel, root=root, extra_disks=disks[1:]) as tgt:
        if tgt.session is None:
            raise UsageError("frag works on a disk image or block device, not on a hive file.")
        win = tgt.windows_root()
        vol = tgt.layout.volume(win.disk, win.partition)
        part = tgt.session.partition(win.disk, win.partition)
        r = report(tgt.session, part, letter=vol.letter if vol else None)
    if json_output:
        print_json({"fragmentation": r.to_json()})
    else:
        _render_frag(r)
    return 0


# --- inspect section -------------------------------------------------------------------------------
def inspect_section(target: Target):
    """Space section for `rescue inspect` (the lead wires it into rescue.cli.sections): the Windows
    volume's reclaimable bytes by category (bounded scan, no attribute reads), its free-space
    fragmentation, and the space findings."""
    from rescue.cli.sections import Section
    from rescue.repairs.findings import FOUND
    from rescue.space.findings import assess_windows_volume, space_section_data

    if target.session is None or target.layout is None or target.layout.root is None:
        return None
    findings, scan, fr = assess_windows_volume(
        target.session, target.layout, on_frag_error=lambda exc: warn(f"fragmentation not measured: {exc}"))
    data = space_section_data([scan], [fr] if fr else [])
    data["findings"] = [f.to_json() for f in findings]

    def render() -> None:
        t = Table(title="Space (Windows volume)")
        t.add_column("category")
        t.add_column("files", justify="right")
        t.add_column("frees", justify="right")
        for c in scan.categories:
            t.add_row(c.key + (" (opt-in)" if c.opt_in else ""), f"{c.file_count:,}", format_bytes(c.reclaim_bytes))
        out.print(t)
        if fr:
            out.print(f"Largest free extent {format_bytes(fr.largest_free_bytes)} of {format_bytes(fr.free_bytes)} free.")
        for f in findings:
            if f.status == FOUND:
                out.print(f"[yellow]{f.evidence}[/yellow]")

    return Section(key="space", title="Space", data=data,
                   findings=[f.evidence for f in findings if f.status == FOUND], render=render)


def register(app: typer.Typer) -> None:
    @app.command("cleanup", help="Remove what Windows' Disk Cleanup removes (temp files, update cache, error "
                 "reports, dumps, CBS/DISM logs, thumbnail caches), itemised first; deleted files are not backed up.")
    def cleanup_cmd(
        disks: List[str] = typer.Argument(..., metavar="DISK...", help="OS disk image or block device (then data disks)."),
        include: List[str] = typer.Option([], "--include", help="Also remove an opt-in category: recycle-bin, "
                                          "windows-old (or all); repeatable or comma-separated."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, fmt: Optional[str] = _FMT,
        accel: Optional[str] = _ACCEL, root: Optional[str] = _ROOT, discard_hive_logs: bool = _LOGS,
        reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        raise typer.Exit(cleanup(disks, dry_run=dry_run, yes=yes, json_output=json_output, include=include,
                                 fmt=fmt, accel=accel, root=root, discard_hive_logs=discard_hive_logs,
                                 ntfs=_ntfs(reset_ntfs_log, discard_hibernation)))

    @app.command("expand", help="Grow the disk image, the Windows partition (MBR or GPT) and its NTFS, in place. "
                 "Without --size/--add, grow the partition into free space already at the end of the disk.")
    def expand_cmd(
        disk: str = typer.Argument(..., metavar="DISK", help="OS disk image (raw, VHD, VHDX, qcow2) or block device."),
        size: Optional[str] = typer.Option(None, "--size", help="New disk size, e.g. 1T or 127G (binary units)."),
        add: Optional[str] = typer.Option(None, "--add", help="Grow the disk by this much, e.g. 20G."),
        allow_large: bool = typer.Option(False, "--allow-large", help="Allow more than the article's 1 TB."),
        dry_run: bool = _DRY, yes: bool = _YES, json_output: bool = _JSON, fmt: Optional[str] = _FMT,
        accel: Optional[str] = _ACCEL,
        reset_ntfs_log: bool = _RESET_LOG, discard_hibernation: bool = _DISCARD_HIB,
    ) -> None:
        raise typer.Exit(expand(disk, size=size, add=add, allow_large=allow_large, dry_run=dry_run, yes=yes,
                                json_output=json_output, fmt=fmt, accel=accel,
                                ntfs=_ntfs(reset_ntfs_log, discard_hibernation)))

    def frag_cmd(
        disks: List[str] = typer.Argument(..., metavar="DISK...", help="OS disk image or block device."),
        json_output: bool = _JSON, fmt: Optional[str] = _FMT, accel: Optional[str] = _ACCEL,
        root: Optional[str] = _ROOT,
    ) -> None:
        raise typer.Exit(frag(disks, json_output=json_output, fmt=fmt, accel=accel, root=root))

    frag_help = ("Report free-space fragmentation and the fragments of $MFT, the page file and the hives "
                 "(read-only). There is no NTFS defragmenter on Linux: recommends Windows' defrag when needed.")
    app.command("frag", help=frag_help)(frag_cmd)
    app.command("fragmentation", hidden=True, help=frag_help)(frag_cmd)
