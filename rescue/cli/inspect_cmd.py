"""`rescue inspect DISK...`: what the disks hold and how full they are. Read-only, one launch.

JSON keys are a stable interface (README "inspect --json"): disks are named by the path the user
gave and partitions by their 1-based number, never by the appliance's /dev/sdX.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.table import Table

from rescue.cli.common import open_disks, out, print_json
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.layout import WindowsLayout

LOW_SPACE_BYTES = 300 * 1000 * 1000  # the article: "if there is less than 300 MB free"


def layout_findings(layout: WindowsLayout) -> list[str]:
    findings = []
    root = layout.root
    if root is not None:
        vol = layout.volume(root.disk, root.partition)
        if vol and vol.free_bytes is not None and vol.free_bytes < LOW_SPACE_BYTES:
            findings.append(f"OS volume has only {format_bytes(vol.free_bytes)} free (under 300 MB): "
                            "Windows cannot create its ramdisk / page file (0xC0000017)")
    for v in layout.volumes:
        if v.state in ("bitlocker", "hibernated", "fast-startup", "unclean", "unmountable"):
            findings.append(f"{layout.disk_paths[v.disk]} partition {v.partition}: {v.note or v.state}")
    return findings


def layout_json(layout: WindowsLayout) -> dict:
    paths = layout.disk_paths
    return {
        "disks": [{"path": p, "format": f, "partition_table": t}
                  for p, f, t in zip(paths, layout.disk_formats, layout.partition_tables)],
        "generation": layout.generation,
        "bcd": None if layout.bcd is None else {
            "path": layout.bcd.path, "disk": paths[layout.bcd.disk], "partition": layout.bcd.partition},
        "system_partition": None if layout.system is None else {
            "disk": paths[layout.system.disk], "partition": layout.system.partition, "how": layout.system.how,
            "active": layout.system.active},
        "windows": [{"disk": paths[w.disk], "partition": w.partition, "product": w.product,
                     "version": w.version, "build": w.build, "control_set": w.control_set,
                     "root": w == layout.root, "notes": list(w.notes)} for w in layout.windows],
        "volumes": [{"disk": paths[v.disk], "partition": v.partition, "fstype": v.fstype, "label": v.label,
                     "letter": v.letter, "role": v.role, "state": v.state, "size_bytes": v.size_bytes,
                     "used_bytes": v.used_bytes, "free_bytes": v.free_bytes,
                     "free_percent": None if v.free_bytes is None or not v.size_bytes
                     else round(100.0 * v.free_bytes / v.size_bytes, 1),
                     "note": v.note, "ntfs": v.ntfs.to_json() if v.ntfs is not None else None}
                    for v in layout.volumes],
        "drive_letters": [{"letter": m.letter, "disk": None if m.disk is None else paths[m.disk],
                           "partition": m.partition} for m in layout.letters],
        "notes": list(layout.notes),
    }


def render_layout(layout: WindowsLayout) -> None:
    paths = layout.disk_paths
    gen = {"gen1": "Gen1 (BIOS, MBR)", "gen2": "Gen2 (UEFI, GPT)"}.get(layout.generation or "", "unknown")
    for i, (p, f, t) in enumerate(zip(paths, layout.disk_formats, layout.partition_tables)):
        out.print(f"[bold]Disk {i}[/bold]      {p}  ({f}, {t.upper() if t else 'no partition table'})")
    out.print(f"[bold]Generation[/bold]  {gen}")
    if layout.bcd:
        out.print(f"[bold]BCD store[/bold]   {layout.bcd.path} on {paths[layout.bcd.disk]} partition {layout.bcd.partition}")
    else:
        out.print("[bold]BCD store[/bold]   not found")
        if layout.system is not None:
            out.print(f"[bold]System part.[/bold] {paths[layout.system.disk]} partition {layout.system.partition} "
                      f"({layout.system.how}): `rescue fix rebuild-bcd` makes a new store there")
    for w in layout.windows:
        mark = " (selected)" if w == layout.root and len(layout.windows) > 1 else ""
        ver = " ".join(x for x in [w.product or "Windows (version unknown)",
                                   f"{w.version}" if w.version else "", f"build {w.build}" if w.build else ""] if x)
        cs = f"ControlSet{w.control_set:03d}" if w.control_set else "unknown"
        out.print(f"[bold]Windows[/bold]     {ver} on partition {w.partition}{mark}; current control set {cs}")
        for n in w.notes:
            out.print(f"            [yellow]{n}[/yellow]")
    table = Table(title="Volumes", title_justify="left")
    for col in ("disk", "part", "letter", "role", "fs", "size", "used", "free", "free %", "state"):
        table.add_column(col, justify="right" if col in ("size", "used", "free", "free %", "part") else "left")
    for v in layout.volumes:
        pct = "" if v.free_bytes is None or not v.size_bytes else f"{100.0 * v.free_bytes / v.size_bytes:.1f}"
        low = layout.root and (v.disk, v.partition) == (layout.root.disk, layout.root.partition) \
            and v.free_bytes is not None and v.free_bytes < LOW_SPACE_BYTES
        table.add_row(str(v.disk), str(v.partition), v.letter or "", v.role, v.fstype or "",
                      format_bytes(v.size_bytes), format_bytes(v.used_bytes), ("[red]" if low else "") + format_bytes(v.free_bytes),
                      pct, v.state if v.state == "ok" else f"[yellow]{v.state}[/yellow]")
    out.print(table)
    for v in layout.volumes:
        if v.ntfs is not None and v.state != "ok":
            out.print(f"  [yellow]{paths[v.disk]} partition {v.partition}[/yellow]: {v.note or v.state}")


def register(app: typer.Typer) -> None:
    @app.command()
    def inspect(
        disks: List[str] = typer.Argument(..., help="OS disk first, then data disks: image files or block devices."),
        json_output: bool = typer.Option(False, "--json", help="Machine-readable output (stable keys)."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Force the image format: raw, vhd, vhdx, qcow2, vmdk."),
        accel: Optional[str] = typer.Option(None, "--accel", help="auto (default), kvm or tcg; env RESCUE_ACCEL."),
        root: Optional[str] = typer.Option(None, "--root", help="DISK:PARTITION of the Windows install when there are several."),
    ) -> None:
        """Show partitions, generation, BCD store, Windows version, drive letters and free space. Never writes."""
        from rescue.cli import sections

        with open_disks(disks, write=False, fmt=fmt, accel=accel, root=root) as target:
            layout = target.layout
            extra = sections.collect(target)
            base = layout_findings(layout)
            if any(s.key == "space" and "error" not in s.data for s in extra):
                # the space section reports the low-space case itself, with the cleanup/expand numbers
                base = [f for f in base if not f.startswith("OS volume has only")]
            findings = base + [f for s in extra for f in s.findings]
            if json_output:
                data = layout_json(layout)
                for s in extra:
                    data[s.key] = s.data
                data["findings"] = findings
                print_json(data)
                if layout.root is None:
                    layout.require_root()
                return
            render_layout(layout)
            for s in extra:
                s.render()
            if findings:
                out.print("[bold]Findings[/bold]")
                for f in findings:
                    out.print(f"  [yellow]![/yellow] {f}")
                # inspect describes (exit 0); the triage judges and prints the fixing commands.
                out.print(f"Run `rescue diagnose {shlex.join(disks)}` for the triage and the commands that fix these.")
            elif layout.root is not None:
                out.print("[green]No problems found in what inspect checks.[/green] "
                          "Run `rescue diagnose` for the triage of every boot failure rescue knows.")
            if layout.root is None:
                # Still a failure for scripts: the disks were read, but there is nothing to repair.
                layout.require_root()
