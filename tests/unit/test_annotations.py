"""The parameters that carry rescue's main objects are annotated, so the type checker (make
typecheck) reads the bodies that use them: mypy skips the body of a function with no annotation at
all, and an unannotated `target` or `session` is Any, which hides every misuse of it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rescue"

# The session and its views, the target, the layout, hives and stores, plans and their parts, the
# reporter, the repair context: by the names the code gives them.
CARRIERS = frozenset({
    "session", "target", "tgt", "layout", "hive", "system_hive", "software_hive", "store", "bcd", "ctx",
    "reporter", "fs", "plan", "step", "change", "part", "parts", "disk", "disks", "image", "ref", "refs",
    "ntfs", "scan", "scans", "frag", "frags", "diag", "scenario", "spec", "location", "faults", "g",
})


# The sample builders' source is the sample cache's key (rescue.samples.cache.SOURCES): an edit there,
# even to a signature, rebuilds every test disk for everyone. They are test-data tools, typed when
# they next change for a reason of their own.
SKIPPED = ("rescue/samples/",)


def unannotated(package: Path = PACKAGE) -> list[str]:
    """"rescue/x.py:12 f(target)" for every carrier parameter without an annotation."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        if rel.startswith(SKIPPED):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs:
                if arg.arg in CARRIERS and arg.annotation is None:
                    found.append(f"{rel}:{arg.lineno} {node.name}({arg.arg})")
    return found


def test_every_carrier_parameter_is_annotated():
    assert unannotated() == []


def test_the_check_finds_an_unannotated_parameter(tmp_path):
    fake = tmp_path / "rescue"
    fake.mkdir()
    (fake / "bad.py").write_text(
        "def ok(target: 'Target', n) -> None: ...\n"
        "class C:\n"
        "    def m(self, *, session, layout: 'WindowsLayout') -> None: ...\n"
        "lambda_is_not_checked = lambda target: target\n")
    assert unannotated(fake) == ["rescue/bad.py:3 m(session)"]
