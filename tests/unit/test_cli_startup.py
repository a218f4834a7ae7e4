"""The CLI imports only what the command being run needs, and its command signatures stay readable
by typer on the oldest supported Python.

- COMMAND_MODULES in rescue.cli.main must name exactly the top-level commands each module registers
  (a command missing there would be found by `--help` but not when run).
- `rescue bcd enum BCDFILE`, `rescue reg query HIVEFILE` and `rescue --help` must not import
  libguestfs, the disk layer, the write path, other commands' modules, the scenario modules (only
  `diagnose`, `fix` and `scenarios` read the registry) or pydantic (typer 0.29 imports it on every
  command line): that is where start-up time went. Checked in a fresh interpreter, deterministic
  unlike a timing (`make bench` times it).
- `rescue diagnose` still has every scenario's options, although they are built on first use:
  in its help, on its command line, in shell completion and in the man page.
- typer evaluates the annotations of command functions at run time: on Python 3.9 `str | None` or
  `list[str]` there would fail, however the module is written. vermin (`make floor`) does not look
  inside string annotations, so this walks every registered command's signature.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from rescue.cli import main

REPO = Path(__file__).resolve().parents[2]


def _top_level_names(app: typer.Typer) -> set[str]:
    names = set()
    for info in app.registered_commands:
        names.add(info.name or info.callback.__name__.replace("_", "-"))
    for info in app.registered_groups:
        names.add(info.name or info.typer_instance.info.name)
    return names


@pytest.mark.parametrize("module", sorted(main.COMMAND_MODULES))
def test_command_modules_declare_what_they_register(module: str) -> None:
    app = typer.Typer()
    __import__(f"rescue.cli.{module}", fromlist=["register"]).register(app)
    assert _top_level_names(app) == set(main.COMMAND_MODULES[module])


def test_every_command_module_is_declared() -> None:
    # A command module is one with a `register(app)`; helpers such as fleet_cmd.py have none.
    on_disk = {p.stem for p in (REPO / "rescue" / "cli").glob("*.py")
               if "\ndef register(app" in p.read_text(encoding="utf-8")}
    assert on_disk == set(main.COMMAND_MODULES)


def test_modules_for_picks_the_command_module(monkeypatch) -> None:
    monkeypatch.delenv(main.COMPLETE_VAR, raising=False)
    assert main.modules_for(["bcd", "enum", "x"]) == ["bcd_cmd"]
    assert main.modules_for(["reg", "query", "x", "k"]) == ["reg_cmd"]
    assert main.modules_for(["diagnose", "d.vhd"]) == ["fix_cmd"]
    assert main.modules_for(["--help"]) == list(main.COMMAND_MODULES)
    assert main.modules_for(["inpsect"]) == list(main.COMMAND_MODULES)   # typo: click suggests from all
    monkeypatch.setenv(main.COMPLETE_VAR, "complete_bash")
    assert main.modules_for(["bcd"]) == list(main.COMMAND_MODULES)


PROBE = r"""
import json, sys
from rescue.cli.main import run
code = run(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""
# Never needed by a command that reads a hive file, nor by --help.
HEAVY = ("guestfs", "rescue.disk.session", "rescue.layout", "rescue.safety.apply", "rescue.safety.backup",
         "rescue.repairs.no_memory", "rescue.space.expand", "rescue.cli.inspect_cmd", "rescue.cli.fix_cmd",
         "rescue.cli.space_cmd", "rescue.cli.safety_cmd", "rescue.cli.doctor_cmd", "rescue.doctor",
         "rich._emoji_codes")


# Never imported by `rescue --help` nor by a command that reads a hive file: the scenario modules
# (the registry is read by diagnose, fix and scenarios only) and pydantic (typer 0.29 imports it
# while parsing any command line; pyproject.toml keeps typer below it).
NOT_AT_START = ("rescue.repairs.scenarios", "pydantic")


def _not_at_start(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == p or m.startswith(p + ".") for p in NOT_AT_START))


def _modules_after(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    env = dict(os.environ)
    env.pop(main.COMPLETE_VAR, None)
    r = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert out.exists(), r.stderr
    data = json.loads(out.read_text())
    return data["code"], set(data["modules"])


def test_bcd_enum_on_a_file_imports_only_its_own_path(tmp_path, sample_hives) -> None:
    code, mods = _modules_after(tmp_path, "bcd", "enum", str(sample_hives.bcd()))
    assert code == 0
    assert "rescue.cli.bcd_cmd" in mods and "rescue.bcd.render" in mods
    assert sorted(m for m in HEAVY if m in mods) == []
    assert _not_at_start(mods) == []
    assert "rescue.cli.reg_cmd" not in mods


def test_reg_query_on_a_file_imports_only_its_own_path(tmp_path, sample_hives) -> None:
    code, mods = _modules_after(tmp_path, "reg", "query", str(sample_hives.system()),
                                "ControlSet001\\Control\\CrashControl")
    assert code == 0
    assert "rescue.cli.reg_cmd" in mods
    assert sorted(m for m in HEAVY if m in mods) == []
    assert _not_at_start(mods) == []
    # The page file and crash dump models are for their own commands (render names them in annotations).
    assert "rescue.registry.pagefile" not in mods and "rescue.registry.crashdump" not in mods
    assert "rescue.cli.bcd_cmd" not in mods


def test_help_imports_no_command_body(tmp_path) -> None:
    code, mods = _modules_after(tmp_path, "--help")
    assert code == 0
    body_only = [m for m in HEAVY if not m.startswith("rescue.cli.") and m != "rich._emoji_codes"]
    assert sorted(m for m in body_only if m in mods) == []
    assert _not_at_start(mods) == []
    # How plans and diagnoses look (and the plan records under them): only for commands showing one.
    assert "rescue.cli.views" not in mods and "rescue.safety.plan" not in mods


def test_the_probe_sees_the_scenario_modules_when_diagnose_runs(tmp_path) -> None:
    # The other side of the checks above: the same probe does see them once diagnose needs them.
    code, mods = _modules_after(tmp_path, "diagnose", "--help")
    assert code == 0
    assert "rescue.repairs.scenarios.no_memory" in mods and _not_at_start(mods) != []


# --- diagnose: scenario options built on first use, seen by every reader ----------------------------
def _scenario_flags() -> list[str]:
    from rescue.repairs.base import scenarios

    flags = {o.flag for s in scenarios() for o in s.options if o.diagnose}
    assert "--ram" in flags                       # no-memory's: the walk really found scenario options
    return sorted(flags)


def test_diagnose_help_lists_every_scenario_option(cli) -> None:
    r = cli("diagnose", "--help")
    assert r.code == 0
    for flag in _scenario_flags():
        assert flag in r.out, flag
    assert "--scenario" in r.out and "--each" in r.out


def test_top_level_help_lists_diagnose_with_its_summary(cli) -> None:
    r = cli("--help")
    assert r.code == 0
    assert re.search(r"diagnose\s+Check a disk for every boot failure", r.out)


def test_diagnose_accepts_a_scenario_option_on_its_command_line(cli) -> None:
    # Parsing reaches the disk check (no disk given), so --ram was a known option; a typo is not.
    assert "at least one disk" in cli("diagnose", "--ram", "16G").err
    typo = cli("diagnose", "--rma", "16G")
    assert typo.code == 2 and "No such option" in typo.err


def test_shell_completion_offers_the_scenario_options_of_diagnose() -> None:
    env = {k: v for k, v in os.environ.items() if k != main.COMPLETE_VAR}
    env.update({main.COMPLETE_VAR: "complete_bash", "COMP_WORDS": "rescue diagnose --", "COMP_CWORD": "2"})
    r = subprocess.run([sys.executable, "-c", "from rescue.cli.main import run; run()"], env=env,
                       capture_output=True, text=True)
    offered = set(r.stdout.split())
    assert set(_scenario_flags()) <= offered, r.stdout + r.stderr


def test_man_page_documents_the_scenario_options_of_diagnose() -> None:
    spec = importlib.util.spec_from_file_location("cli_docs", REPO / "tools" / "cli_docs.py")
    cli_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli_docs)
    page = cli_docs.man_page(typer.main.get_command(main.build_app()), "test")
    section = page.split(".SS rescue diagnose", 1)[1].split(".SS ", 1)[0]
    for flag in _scenario_flags():
        assert cli_docs.roff(flag) in section, flag


# --- a host without the distribution's bindings (a pip install into a plain venv) -------------------
BLOCKED = r"""
import sys
sys.modules["guestfs"] = None      # what `import guestfs` meets on a Python without the bindings
sys.modules["hivex"] = None
from rescue.cli.main import run
sys.exit(run(sys.argv[1:]))
"""


def _without_bindings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True)


def test_without_bindings_help_version_and_doctor_still_work() -> None:
    assert _without_bindings("--version").returncode == 0
    assert _without_bindings("--help").returncode == 0
    r = _without_bindings("doctor", "--no-launch", "--json")
    assert r.returncode == 10
    bindings = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["bindings"]
    assert bindings["status"] == "fail" and "python3-hivex" in bindings["advice"]


def test_without_bindings_commands_say_what_to_install(sample_hives) -> None:
    r = _without_bindings("bcd", "enum", str(sample_hives.bcd()))
    assert r.returncode == 10
    assert "hivex Python bindings are not installed" in r.stderr and "python3-hivex" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


# --- typer-evaluated annotations on the oldest Python ---------------------------------------------
def _callbacks(app: typer.Typer):
    for info in app.registered_commands:
        yield info.callback
    if app.registered_callback is not None:
        yield app.registered_callback.callback
    for group in app.registered_groups:
        yield from _callbacks(group.typer_instance)


def _newer_than_39(annotation: str) -> str | None:
    """Why this annotation string would not evaluate on Python 3.9, or None."""
    tree = ast.parse(annotation, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return "X | Y union (Python 3.10): use Optional[X] / Union[X, Y]"
    return None


def test_command_signatures_evaluate_on_the_floor() -> None:
    app = main.build_app()
    problems = []
    seen = 0
    for fn in _callbacks(app):
        for name, ann in getattr(fn, "__annotations__", {}).items():
            seen += 1
            if isinstance(ann, str):
                why = _newer_than_39(ann)
                if why:
                    problems.append(f"{fn.__module__}.{fn.__qualname__} {name}: {ann!r}: {why}")
    assert seen > 50          # the walk really reached the commands
    assert problems == []


def test_the_signature_check_catches_a_pep604_union() -> None:
    assert _newer_than_39("str | None")
    assert _newer_than_39("Optional[str]") is None
    assert _newer_than_39("List[str]") is None


def test_vermin_floor_check_fails_on_newer_syntax(tmp_path) -> None:
    """`make floor` (part of `make test`) uses flags that do catch a 3.10 construct."""
    (tmp_path / "m.py").write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    bad = subprocess.run(["make", "-s", "floor", f"VERMIN_PATHS={tmp_path}"], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "pattern matching" in bad.stdout + bad.stderr
    (tmp_path / "m.py").write_text("def f(x: 'int | None') -> str:\n    return str(x).removeprefix('a')\n")
    good = subprocess.run(["make", "-s", "floor", f"VERMIN_PATHS={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr


def test_requires_python_is_the_floor() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.9"' in text
