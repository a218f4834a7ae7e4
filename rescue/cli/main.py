"""Entry point: builds the typer app from the command modules and turns errors into exit codes.

Every `RescueError` becomes one plain sentence on stderr and its documented exit code (README.md,
"Exit codes"); anything else is a bug and exits 70 without a wall of locals.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Iterable, Sequence

import typer

from rescue import __version__
from rescue.errors import ExitCode, RescueError

# The command modules under rescue.cli and the top-level commands each registers (its
# `register(app)` adds them). A run imports only the module of the command it runs, and each module
# imports its heavy parts (guestfs, the repair engines, rich tables) inside the command bodies: the
# commands that need no appliance start instantly. `rescue --help`, a mistyped command and shell
# completion import them all. A new command module: one line here (tests/unit/test_cli_startup.py
# checks the names against what each module really registers).
COMMAND_MODULES = {
    "inspect_cmd": ("inspect",),
    "fix_cmd": ("diagnose", "fix", "scenarios"),
    "bcd_cmd": ("bcd",),
    "reg_cmd": ("reg", "pagefile", "crashdump"),
    "services_cmd": ("services",),
    "space_cmd": ("cleanup", "expand", "frag", "fragmentation"),
    "files_cmd": ("files",),
    "safety_cmd": ("undo", "backups"),
    "doctor_cmd": ("doctor",),
}
HELP = "Repair a Windows VM disk that no longer boots, offline, from Linux."
COMPLETE_VAR = "_RESCUE_COMPLETE"   # typer's shell completion asks through this variable


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rescue {__version__}")
        raise typer.Exit()


def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Repair a Windows VM disk that no longer boots, offline, from Linux (libguestfs + hivex)."""


def modules_for(argv: Sequence[str]) -> list[str]:
    """The command modules a run with these arguments needs: the one that registers the command
    named by the first word that is not an option, else all (help, completion, a typo)."""
    if os.environ.get(COMPLETE_VAR):
        return list(COMMAND_MODULES)
    word = next((a for a in argv if not a.startswith("-")), None)
    owners = [m for m, names in COMMAND_MODULES.items() if word in names]
    return owners or list(COMMAND_MODULES)


def build_app(modules: Iterable[str] | None = None) -> typer.Typer:
    """A typer app with the commands of `modules` (all by default), in COMMAND_MODULES order."""
    app = typer.Typer(
        name="rescue",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_main)
    wanted = set(COMMAND_MODULES if modules is None else modules)
    for name in COMMAND_MODULES:
        if name in wanted:
            importlib.import_module(f"rescue.cli.{name}").register(app)
    return app


def __getattr__(name: str):
    # `rescue.cli.main.app`: the whole CLI, built on first use (man page and completion builders).
    if name == "app":
        return build_app()
    raise AttributeError(name)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI. Click/typer handle usage errors themselves (exit 2) in standalone mode."""
    from rescue.cli.common import err

    try:
        args = sys.argv[1:] if argv is None else list(argv)
        build_app(modules_for(args))(args=args, prog_name="rescue")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RescueError as exc:
        # The message is plain text (it may hold reg.exe's "[/v NAME]" or a path with brackets).
        err.print("[bold red]error:[/bold red] ", end="")
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)   # one line: scripts grep logs
        code = exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; nothing more was written")
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # a bug: one line, no locals, and how to get the traceback
        if os.environ.get("RESCUE_DEBUG"):
            raise
        err.print("[bold red]internal error:[/bold red] ", end="")
        err.print(f"{type(exc).__name__}: {exc}. This is a bug in rescue; rerun with RESCUE_DEBUG=1 "
                  "for the traceback.", markup=False, highlight=False)
        code = ExitCode.BUG
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    run()
