"""README.md (the file itself) and the program say the same: commands and options, --help, exit
codes, scenarios, Makefile targets. The JSON keys are checked against real output in the
integration tests (tests/integration/test_contract_json.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import readme_contract as R

TESTS = Path(__file__).resolve().parents[1]


_ROOT = []


def _root():
    if not _ROOT:
        import typer.main

        from rescue.cli.main import app

        _ROOT.append(typer.main.get_command(app))
    return _ROOT[0]


def _ctx(cmd):
    from typer import _click

    return _click.Context(cmd)


def _leaves(names):
    """The commands a README command line names: alternatives expanded, stopping at the first word
    that is not a subcommand (an argument)."""
    current = [_root()]
    for alternatives in names:
        nxt = []
        for cmd in current:
            if not hasattr(cmd, "get_command"):
                continue
            for alt in alternatives:
                sub = cmd.get_command(_ctx(cmd), alt)
                if sub is not None:
                    nxt.append(sub)
        if not nxt:
            break
        current = nxt
    return current


def _options(cmd):
    return {o for p in getattr(cmd, "params", ()) for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}


def _problems(lines):
    problems = []
    for where, line in lines:
        names, options = R.command_path(line)
        leaves = _leaves(names)
        if not names:                                  # `rescue --version`, `rescue --help`
            leaves = [_root()]
        elif leaves == [_root()]:
            problems.append(f"{where.name}: `{line}`: no such command")
            continue
        for leaf in leaves:
            if hasattr(leaf, "list_commands"):
                # `rescue fix SCENARIO ... --dry-run`: options every subcommand of the group takes.
                subs = [leaf.get_command(_ctx(leaf), n) for n in leaf.list_commands(_ctx(leaf))]
                have = _options(leaf) | set.intersection(*(_options(c) for c in subs if c is not None))
            else:
                have = _options(leaf)
            missing = [o for o in options if o not in have]
            if missing:
                problems.append(f"{where.name}: `{line}`: {leaf.name} has no {', '.join(missing)}")
    return problems


def test_every_command_shown_exists_with_its_options():
    lines = list(R.iter_command_lines((R.README, R.IMAGE_README)))
    assert len(lines) > 20                       # the README really was read
    assert _problems(lines) == []


def test_a_made_up_command_or_option_is_caught():
    assert _problems([(R.README, "rescue frobnicate DISK")]) == ["README.md: `rescue frobnicate DISK`: no such command"]
    assert _problems([(R.README, "rescue cleanup DISK --no-such")]) == \
        ["README.md: `rescue cleanup DISK --no-such`: cleanup has no --no-such"]


def _all_paths(cmd, prefix=()):
    yield prefix
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(_ctx(cmd)):
            sub = cmd.get_command(_ctx(cmd), name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _all_paths(sub, (*prefix, name))


def test_every_command_help_is_reachable(cli):
    paths = list(_all_paths(_root()))
    assert ("fix", "no-memory") in paths and ("diagnose",) in paths
    for path in paths:
        r = cli(*path, "--help")
        assert r.code == 0 and "Usage" in r.out, f"rescue {' '.join(path)} --help: {r.code} {r.err}"


def test_exit_code_table_is_the_programs():
    from rescue.errors import ExitCode

    table = R.exit_codes()
    program = {v for k, v in vars(ExitCode).items() if k.isupper() and isinstance(v, int)}
    assert set(table) == program


def test_every_exit_code_has_a_test_named_for_it():
    named = set()
    for f in TESTS.rglob("test_*.py"):
        named |= {int(n) for n in re.findall(r"def test_exit_(\d+)_", f.read_text())}
    assert sorted(set(R.exit_codes()) - named) == []


def test_every_scenario_is_in_the_readme_with_its_aliases():
    from rescue.repairs.base import scenarios

    table = R.section("Scenarios")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9-]+)` \|.*$", table, re.M)}
    problems = []
    for s in scenarios():
        row = rows.get(s.name)
        if row is None:
            problems.append(f"{s.name}: no row in README's Scenarios table")
            continue
        problems += [f"{s.name}: alias {a} missing" for a in s.aliases if f"`{a}`" not in row]
    assert problems == []


@pytest.mark.parametrize("readme", [R.README, R.IMAGE_README], ids=lambda p: p.parent.name + "/" + p.name)
def test_make_targets_named_exist(readme):
    makefile = (R.REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.M))
    named = R.make_targets(readme)
    assert named and sorted(set(named) - targets) == []


def test_json_key_lists_parse():
    keys = R.json_keys("`rescue inspect --json` keys (stable):")
    assert set(keys["volumes"]) >= {"disk", "partition", "state", "free_bytes"}
    assert "gen1" not in keys and "gen1" not in keys["generation"]     # values in parentheses are not keys
    fix = R.json_keys("`rescue fix SCENARIO --json` prints one document:")
    assert {"before", "plan", "result", "after", "commit"} <= set(fix) and "applied" in fix["result"]
    assert R.check_keys({"a": {"b": {}}}, {"a": [{"b": 1}, {"c": 2}]}) == ["a.b"]


def test_scenarios_and_fix_json_have_the_readme_keys(cli, tmp_path, monkeypatch):
    """`rescue scenarios --json` and a whole `rescue fix --json` run (on a hive file handed over as
    the disk at the CLI edge) carry every key README lists; the appliance runs check inspect's and
    diagnose's on real disks (tests/integration/test_fix.py, test_inspect.py)."""
    import contextlib

    from rescue.cli import fix_cmd
    from rescue.samples.hives import build_system_hive
    from rescue.target import HostFileTarget

    doc = cli("scenarios", "--json").json()
    assert R.check_keys(R.json_keys("`rescue scenarios --json`:"), doc) == []

    hive = build_system_hive(tmp_path / "SYSTEM", crash_dumps=False)

    @contextlib.contextmanager
    def opener(paths, *, write=False, reporter=None, **_):
        with HostFileTarget(str(paths[0]), write=write, reporter=reporter) as t:
            yield t

    monkeypatch.setattr(fix_cmd, "open_disks", opener)
    r = cli("fix", "no-memory", hive, "--yes", "--json")
    assert r.code == 0, r.err
    fix = r.json()
    assert R.check_keys(R.json_keys("`rescue fix SCENARIO --json` prints one document:"), fix) == []
    assert R.check_keys(R.json_keys("`rescue diagnose --json`:"), fix["after"]) == []
    # and the check can fail: a document that lost a key
    del fix["result"]["backup_id"]
    assert R.check_keys(R.json_keys("`rescue fix SCENARIO --json` prints one document:"), fix) == \
        ["result.backup_id"]
