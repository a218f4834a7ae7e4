"""`make demo`: build (or reuse) the broken Gen2 sample disk and run rescue on a copy of it.

    python -m rescue.cli.demo DIR

The sample is built once and cached (rescue.samples.cache); DIR receives a fresh copy each run, so
the demo always starts from the broken state. Each step prints the command it runs, exactly as a
user would type it, then rescue's own output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
SAMPLE = "gen2-broken.vhd"


def fresh_copy(name: str, folder: Path) -> Path:
    from rescue.samples import sample_path

    src = sample_path(name)
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / name
    dst.unlink(missing_ok=True)
    # Reflink or sparse copy: cheap, and the cached original stays untouched.
    if subprocess.run(["cp", "--reflink=auto", "--sparse=always", str(src), str(dst)]).returncode:
        shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return dst


def step(title: str, argv: list[str], explain: str = "") -> int:
    """Print what is about to happen and the command line, run it through the CLI entry point."""
    from rescue.cli.main import run

    console.print(Rule(f"[bold]{title}[/bold]"))
    if explain:
        console.print(explain)
    console.print(f"[bold cyan]$ rescue {' '.join(argv)}[/bold cyan]")
    started = time.monotonic()
    code = run(argv)
    console.print(f"[dim](exit code {code}, {time.monotonic() - started:.0f} s)[/dim]\n")
    return code


def main(argv: list[str] | None = None) -> int:
    from rescue.units import format_bytes

    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "demo")
    console.print(Rule("[bold]rescue demo: a Windows VM disk that stops with 0xC0000017[/bold]"))
    console.print(
        "The sample is a Gen2 (UEFI/GPT) Windows Server 2019 disk as a dynamic VHD, in the state the "
        "Azure article describes: C: nearly full, a bad-memory list in the BCD, the page file on C: "
        "instead of the temporary drive D:, EMS off and crash dumps off.\n"
        "Building it (first run only: one libguestfs appliance launch, cached afterwards)...")
    started = time.monotonic()
    disk = fresh_copy(SAMPLE, folder)
    console.print(f"Sample ready in {time.monotonic() - started:.0f} s: [bold]{disk}[/bold] "
                  f"({format_bytes(disk.stat().st_size)} file, 1 GiB disk)\n")

    worst = 0

    def run_step(title, argv, explain, ok=(0,)):
        nonlocal worst
        code = step(title, argv, explain)
        if code not in ok:
            worst = max(worst, code)
        return code

    d = str(disk)
    run_step("1. Look at the disk (read-only)", ["inspect", d],
             "One appliance launch; nothing on the disk changes. Note the partitions, the BCD the "
             "firmware uses (on the ESP), the Windows version, the drive letters and C:'s free space.", ok=(0, 1))
    run_step("2. Diagnose every cause the article names (read-only)", ["diagnose", d, "--ram", "2G"],
             "Exit code 1 means problems were found; the last lines say which commands fix them.", ok=(1,))
    fix = ["fix", "no-memory", d, "--ram", "2G", "--cleanup", "--expand", "4G"]
    run_step("3. See the fix's plan without writing anything", [*fix, "--dry-run"],
             "--dry-run opens the disk read-only (through a throw-away overlay) and prints every step: "
             "growing the disk and C: (article step 2), then each registry and BCD change with its "
             "before and after.")
    run_step("4. Fix it: the one command the diagnosis printed", [*fix, "--yes"],
             "One launch: grow C: (in an overlay), back up the BCD and SYSTEM on C:, apply every change "
             "and read it back, diagnose the result; only then does the VHD grow and receive the "
             "changes, which are read back once more.")
    run_step("5. Diagnose again: all clear", ["diagnose", d, "--ram", "2G"],
             "Exit code 0: none of the article's causes is left.")
    run_step("6. Undo: the BCD and SYSTEM come back byte for byte", ["undo", d, "--yes"],
             "The backup on the disk restores the originals (the page file and the cleaned files were "
             "deleted by design and are not restored; the disk stays grown).")
    run_step("7. Diagnose once more: the registry and BCD findings are back", ["diagnose", d, "--ram", "2G"],
             "Exit code 1 again: undo really put the old bytes back.", ok=(1,))
    if worst:
        console.print(f"[red]The demo stopped short: a step failed with exit code {worst}.[/red]")
    else:
        console.print(f"Done. The disk copy is {disk}; try `rescue bcd enum {disk}` or "
                      f"`rescue pagefile show {disk}` next.")
    return worst


if __name__ == "__main__":
    sys.exit(main())
