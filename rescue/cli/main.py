"""Entry point: builds the typer app from the command modules and turns errors into exit codes.

Every `RescueError` becomes one plain sentence on stderr and its documented exit code (README.md,
"Exit codes"); anything else is a bug and exits 70 without a wall of locals.
"""

from __future__ import annotations

import os
import sys

import typer

from rescue import __version__
from rescue.errors import ExitCode, RescueError

app = typer.Typer(
    name="rescue",
    help="Repair a Windows VM disk that no longer boots, offline, from Linux.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rescue {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Repair a Windows VM disk that no longer boots, offline, from Linux (libguestfs + hivex)."""


def _register() -> None:
    from rescue.cli import bcd_cmd, files_cmd, fix_cmd, inspect_cmd, reg_cmd, safety_cmd, space_cmd

    for module in (inspect_cmd, bcd_cmd, reg_cmd, space_cmd, files_cmd, fix_cmd, safety_cmd):
        module.register(app)


_register()


def run(argv: list[str] | None = None) -> int:
    """Run the CLI. Click/typer handle usage errors themselves (exit 2) in standalone mode."""
    from rescue.cli.common import err

    try:
        app(args=argv, prog_name="rescue")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RescueError as exc:
        # The message is plain text (it may hold reg.exe's "[/v NAME]" or a path with brackets).
        err.print("[bold red]error:[/bold red] ", end="")
        err.print(str(exc), markup=False, highlight=False)
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
