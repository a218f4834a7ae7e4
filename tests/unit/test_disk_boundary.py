"""The disk layer's boundary: libguestfs errors become typed DiskErrors, only rescue.disk.appliance
imports guestfs, nothing above rescue.disk catches RuntimeError, the scratch-disk builder serves
samples and tests only, and each module of the package stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rescue.disk.appliance import disk_error
from rescue.errors import DiskError, DiskNotFoundError, ExitCode, NotFoundError, RescueError

RESCUE = Path(__file__).resolve().parents[2] / "rescue"


def _modules():
    for path in sorted(RESCUE.rglob("*.py")):
        yield path.relative_to(RESCUE.parent).as_posix(), ast.parse(path.read_text(), str(path))


def _imports(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


# --- translation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,cls,errno,code", [
    ("pread: /d0p3/Windows/x: No such file or directory", DiskNotFoundError, 2, ExitCode.NOT_FOUND),
    ("libguestfs: error: ls: /d0p3/nope: No such file or directory", DiskNotFoundError, 2, ExitCode.NOT_FOUND),
    ("write: /d0p3/a: Input/output error", DiskError, 5, ExitCode.INPUT),
    ("rm: /d0p3/b: Permission denied", DiskError, 13, ExitCode.INPUT),
    ("mount_options: mount exited with status 14: The disk contains an unclean file system", DiskError, None,
     ExitCode.INPUT),
])
def test_a_failed_call_becomes_a_typed_error_with_libguestfs_own_sentence(text, cls, errno, code):
    err = disk_error("pread", RuntimeError(f"some context\n{text}"))
    assert type(err) is cls and isinstance(err, RescueError) and not isinstance(err, RuntimeError)
    assert (err.message, err.operation, err.errno, err.exit_code) == (text, "pread", errno, code)


def test_not_found_is_also_the_generic_not_found():
    # Code that says "does not exist" for host and disk files alike catches both with NotFoundError.
    assert issubclass(DiskNotFoundError, NotFoundError) and issubclass(DiskNotFoundError, DiskError)
    assert not issubclass(DiskError, NotFoundError)


# --- layering --------------------------------------------------------------------------------------
def test_only_the_appliance_module_imports_guestfs():
    users = sorted(name for name, tree in _modules()
                   if any(m == "guestfs" or m.startswith("guestfs.") for m in _imports(tree)))
    assert users == ["rescue/disk/appliance.py"]


# hivex (host hive files) reports its errors as RuntimeError too; those handlers are not disk ones.
HIVEX_HANDLERS = {("rescue/hive/hive.py", None), ("rescue/safety/apply.py", "_prepare_hive")}


def _handlers(tree: ast.AST):
    """(innermost enclosing function name or None, ExceptHandler) for every handler."""
    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child.name)
            else:
                if isinstance(child, ast.ExceptHandler):
                    yield func, child
                yield from visit(child, func)
    yield from visit(tree, None)


def test_no_layer_above_the_disk_package_catches_runtime_error():
    found = []
    for name, tree in _modules():
        if name.startswith("rescue/disk/"):
            continue
        for func, handler in _handlers(tree):
            caught = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} if handler.type is not None else set()
            if "RuntimeError" in caught and (name, None) not in HIVEX_HANDLERS and (name, func) not in HIVEX_HANDLERS:
                found.append(f"{name}:{handler.lineno} ({func})")
    assert found == []


def test_the_scratch_disk_builder_serves_samples_only():
    users = sorted(name for name, tree in _modules() if "rescue.disk.builder" in _imports(tree))
    assert users and all(u.startswith("rescue/samples/") for u in users), users


def test_disk_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (RESCUE / "disk").glob("*.py")}
    assert max(sizes.values()) < 500, sizes
