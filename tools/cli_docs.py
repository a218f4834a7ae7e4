"""Build-time documents generated from the CLI itself: the man page rescue(1) and typer's shell
completion scripts for bash, zsh and fish. Nothing here is written twice by hand: the command
tree, every option and its help come from the typer app (click's parameters), the exit codes
from rescue.errors.ExitCode and its comments.

    python3 tools/cli_docs.py OUTDIR      # OUTDIR/rescue.1, OUTDIR/completions/{rescue,_rescue,rescue.fish}

Run with rescue (and typer) importable; the Debian package build runs it (debian/rules).
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPLETIONS = {"bash": "rescue", "zsh": "_rescue", "fish": "rescue.fish"}
ENVIRONMENT = [
    ("RESCUE_ACCEL", "auto (default), kvm or tcg: how the appliance is accelerated (as --accel)."),
    ("RESCUE_KVM_TIMEOUT", "seconds a KVM launch may print nothing before auto falls back to TCG (45)."),
    ("RESCUE_LAUNCH_TIMEOUT", "upper bound for any appliance launch, in seconds (600)."),
    ("RESCUE_CALL_TIMEOUT", "upper bound for one appliance call after the launch, in seconds (900)."),
    ("RESCUE_CACHE_DIR", "where the remembered acceleration verdict is kept (~/.cache/rescue)."),
    ("RESCUE_DEBUG", "set to 1 to get the traceback of an internal error (exit 70)."),
    ("LIBGUESTFS_PATH", "where libguestfs finds its appliance (a fixed appliance, as in the rescue image)."),
    ("TMPDIR", "temporary directory for hive copies and overlays; see rescue doctor."),
]


def roff(text: str) -> str:
    """Escape text for a roff line: backslashes, leading dots/quotes, hyphens in option names."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def exit_codes() -> list[tuple[int, str]]:
    """(code, meaning) from the ExitCode class of rescue/errors.py and the comment on each line."""
    src = (REPO / "rescue" / "errors.py").read_text(encoding="utf-8")
    body = src.split("class ExitCode:", 1)[1].split("\nclass ", 1)[0]
    codes = [(0, "success; diagnose: the disk is healthy; doctor: the host is ready")]
    for m in re.finditer(r"^\s+[A-Z_]+ = (\d+)\s+#\s*(.+)$", body, re.M):
        codes.append((int(m.group(1)), m.group(2).strip()))
    return sorted(codes)


def walk(command, path: list[str]):
    """(path, click command) for every visible command, depth first, groups before their children."""
    yield path, command
    if is_group(command):
        # Duck-typed: typer may bring click or its own copy of it (typer._click).
        ctx = command.context_class(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from walk(sub, path + [name])


def is_group(command) -> bool:
    return hasattr(command, "list_commands")


def param_line(param) -> tuple[str, str]:
    """(synopsis of one option or argument, its help)."""
    if param.param_type_name == "argument":
        meta = param.metavar or param.name.upper()
        many = param.nargs == -1 and not meta.endswith("...")
        return meta + ("..." if many else ""), getattr(param, "help", "") or ""
    names = ", ".join(param.opts + param.secondary_opts)
    if not param.is_flag and not getattr(param, "count", False):
        names += " " + (param.metavar or param.name.upper())
    return names, param.help or ""


def clean_help(text: str) -> str:
    text = re.sub(r"\[/?[a-z ]+\]", "", text or "")     # rich markup, if any
    return " ".join(text.split())


def man_page(app_command, version: str) -> str:
    date = datetime.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or
                                           datetime.datetime.now().timestamp(), datetime.timezone.utc)
    out = [f'.TH RESCUE 1 "{date:%Y-%m-%d}" "rescue {version}" "User Commands"',
           ".SH NAME", "rescue \\- " + roff("repair a Windows VM disk that no longer boots, offline, from Linux"),
           ".SH SYNOPSIS", ".B rescue", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
           ".SH DESCRIPTION", roff(clean_help(app_command.help)),
           ".PP", roff("Every command that writes shows its plan first, backs up every file it changes on the "
                       "disk itself, and reads back what it wrote; --dry-run shows the plan and opens the disk "
                       "read-only. A TARGET may be a disk image, a block device, or a hive file (BCD, SYSTEM) "
                       "copied out of one, which needs no appliance."),
           ".SH OPTIONS"]
    for p in app_command.params:
        if getattr(p, "hidden", False):
            continue
        syn, hlp = param_line(p)
        out += [".TP", f"\\fB{roff(syn)}\\fR", roff(clean_help(hlp))]
    out.append(".SH COMMANDS")
    for path, cmd in walk(app_command, []):
        if not path:
            continue
        args = " ".join(param_line(p)[0] for p in cmd.params if p.param_type_name == "argument")
        sub = " COMMAND" if is_group(cmd) else ""
        out += [".SS " + roff(" ".join(["rescue", *path]) + sub + (" " + args if args else "")),
                roff(clean_help(cmd.help or cmd.short_help or ""))]
        for p in cmd.params:
            if getattr(p, "hidden", False) or p.param_type_name == "argument" and not getattr(p, "help", None):
                continue
            syn, hlp = param_line(p)
            out += [".TP", f"\\fB{roff(syn)}\\fR", roff(clean_help(hlp))]
    out.append(".SH EXIT STATUS")
    for code, meaning in exit_codes():
        out += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    out.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        out += [".TP", f"\\fB{name}\\fR", roff(meaning)]
    out += [".SH FILES", ".TP", "\\fB~/.cache/rescue/accel.json\\fR",
            roff("the remembered verdict of --accel auto (KVM works or hangs on this host)."),
            ".TP", "\\fB\\erescue\\-backup\\e\\fIID\\fR\\fB\\e\\fR (on the Windows volume)",
            roff("the backup every writing command makes first; rescue undo restores it."),
            ".SH SEE ALSO", "\\fBguestfs\\fR(3), \\fBhivex\\fR(3), \\fBlibguestfs\\-test\\-tool\\fR(1)",
            ""]
    return "\n".join(out)


def completion(shell: str) -> str:
    """typer's own completion script, asked from the CLI through its completion variable."""
    env = dict(os.environ, _RESCUE_COMPLETE=f"source_{shell}")
    r = subprocess.run([sys.executable, "-c", "from rescue.cli.main import run; run()"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0 or "rescue" not in r.stdout:
        raise SystemExit(f"no {shell} completion script from the CLI ({r.returncode}): {r.stderr.strip()[-300:]}")
    return r.stdout


def main(outdir: Path) -> int:
    import typer

    from rescue import __version__
    from rescue.cli.main import build_app

    outdir.mkdir(parents=True, exist_ok=True)
    command = typer.main.get_command(build_app())
    (outdir / "rescue.1").write_text(man_page(command, __version__), encoding="utf-8")
    comp = outdir / "completions"
    comp.mkdir(exist_ok=True)
    for shell, name in COMPLETIONS.items():
        (comp / name).write_text(completion(shell), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
