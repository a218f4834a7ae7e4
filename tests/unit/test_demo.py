"""`make demo` runs these command lines through the real CLI: each must parse against the commands
as they are now (a renamed option or command would otherwise only show when someone runs the demo).
The CLI edge is replaced by a parser that resolves every word and option of each line with click
and runs nothing; the sample disk is an empty file (no appliance, no sample build)."""

from __future__ import annotations

import typer

from rescue.cli import demo
from rescue.cli.main import build_app


def _words(ctx) -> list[str]:
    """What a group left for its subcommand (click names the protected part differently by version)."""
    protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", None) or []
    return [*protected, *ctx.args]


def _parse(argv: list[str]) -> list[str]:
    """The command path of `rescue ARGV` after click parsed every option of every level."""
    command = typer.main.get_command(build_app())
    ctx = command.make_context("rescue", list(argv))
    path = ["rescue"]
    while hasattr(command, "resolve_command"):          # a group (typer may vendor its click)
        name, sub, rest = command.resolve_command(ctx, _words(ctx))
        assert sub is not None, argv
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)     # raises on an unknown or bad option
        command = sub
    assert not _words(ctx), (argv, _words(ctx))
    return path


def test_every_demo_command_line_parses(tmp_path, monkeypatch):
    disk = tmp_path / demo.SAMPLE
    disk.write_bytes(b"")
    monkeypatch.setattr(demo, "fresh_copy", lambda name, folder: disk)
    seen: list[list[str]] = []

    def fake_run(argv: list[str]) -> int:
        path = _parse(argv)
        seen.append(path)
        # the exit codes each step expects, so the demo goes through every step
        return 1 if path[1] == "diagnose" and len([p for p in seen if p[1] == "diagnose"]) != 2 else 0

    monkeypatch.setattr("rescue.cli.main.run", fake_run)
    assert demo.main([str(tmp_path)]) == 0
    assert seen == [["rescue", "inspect"], ["rescue", "diagnose"], ["rescue", "fix", "no-memory"],
                    ["rescue", "fix", "no-memory"], ["rescue", "diagnose"], ["rescue", "undo"],
                    ["rescue", "diagnose"]]


def test_a_renamed_option_fails_the_parse():
    # the check above can fail: an option the CLI does not have is a usage error
    for argv in (["fix", "no-memory", "disk.vhd", "--no-such-option"], ["fix", "no-such-scenario", "disk.vhd"]):
        try:
            _parse(argv)
        except Exception as exc:                 # click's UsageError, from whichever click typer uses
            assert type(exc).__name__ in ("NoSuchOption", "UsageError"), exc
        else:
            raise AssertionError(f"{argv} parsed")
