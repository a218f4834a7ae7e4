"""The layering rules, checked on the source: only rescue/cli prints, prompts or imports the
terminal libraries (typer, rich) or rescue.cli; only rescue/disk imports guestfs."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rescue"


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def _modules(outside: str):
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if not rel.startswith(outside):
            yield rel, path


def _violations(outside: str, banned: tuple[str, ...]):
    out = []
    for rel, path in _modules(outside):
        for name, line in _imports(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                out.append(f"{rel}:{line} imports {name}")
    return out


def test_only_the_cli_imports_the_cli_and_terminal_libraries():
    assert _violations("rescue/cli/", ("rescue.cli", "rich", "typer", "click")) == []


def test_only_the_disk_layer_imports_guestfs():
    assert _violations("rescue/disk/", ("guestfs",)) == []


def test_the_core_does_not_print():
    # rescue/samples builds test disks and reports its progress on stderr: a developer tool.
    found = []
    for rel, path in _modules("rescue/cli/"):
        if rel.startswith("rescue/samples/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
                found.append(f"{rel}:{node.lineno} calls {node.func.id}()")
    assert found == []


def test_the_checks_fail_on_a_violation(tmp_path, monkeypatch):
    """The rules above can fail: a module of the core that imports rich is reported."""
    fake = tmp_path / "rescue"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from rich.table import Table\nprint('x')\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert _violations("rescue/cli/", ("rich",)) == ["rescue/core/bad.py:1 imports rich.table"]
