"""The image build's cache keys (image/lib/stamp.py): a step reruns exactly when its inputs change.

`make image` skips mmdebstrap + supermin (minutes) when the rootfs key is unchanged, and reinstalls
the toolkit (seconds) when rescue/ changes. These tests run the real key function on a small
repository laid out like ours; no image is built.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("image_stamp", REPO / "image" / "lib" / "stamp.py")
stamp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stamp)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    files = {
        "image/packages.txt": "python3\nlinux-image-amd64\n",
        "image/lib/rootfs.sh": "mmdebstrap ...\n",
        "image/lib/customize.sh": "cp overlay\n",
        "image/lib/toolkit.sh": "pip install\n",
        "image/overlay/etc/motd": "rescue --help\n",
        "image/overlay/usr/local/sbin/rescue-disks": "#!/bin/sh\nlsblk\n",
        "pyproject.toml": "[project]\nname='rescue'\n",
        "rescue/__init__.py": "__version__ = '0.1.0'\n",
        "rescue/cli/main.py": "def run(): pass\n",
        "image/README.md": "docs\n",
        "tests/unit/test_x.py": "def test(): pass\n",
    }
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "image/overlay/usr/local/sbin/rescue-disks").chmod(0o755)
    return tmp_path


def keys(repo: Path) -> tuple[str, str]:
    return stamp.digest("rootfs", repo), stamp.digest("toolkit", repo)


def test_keys_are_stable_and_ignore_mtimes_and_bytecode(repo: Path) -> None:
    before = keys(repo)
    assert before == keys(repo)
    os.utime(repo / "image/packages.txt", (1, 1))            # a fresh clone / touch
    (repo / "rescue/__pycache__").mkdir()
    (repo / "rescue/__pycache__/main.cpython-311.pyc").write_bytes(b"\0")
    (repo / "rescue/cli/main.py.swp").write_bytes(b"editor")
    assert keys(repo) == before


def test_files_outside_the_inputs_change_nothing(repo: Path) -> None:
    before = keys(repo)
    (repo / "image/README.md").write_text("more docs\n")
    (repo / "tests/unit/test_x.py").write_text("def test(): assert 1\n")
    (repo / "image/out").mkdir()
    (repo / "image/out/rescue.raw").write_bytes(b"\0" * 512)
    assert keys(repo) == before


def test_package_list_change_rebuilds_rootfs_and_toolkit(repo: Path) -> None:
    rootfs, toolkit = keys(repo)
    with open(repo / "image/packages.txt", "a") as f:
        f.write("tmux\n")
    new_rootfs, new_toolkit = keys(repo)
    assert new_rootfs != rootfs and new_toolkit != toolkit


@pytest.mark.parametrize("change", ["edit", "add", "remove", "chmod"])
def test_overlay_changes_rebuild_rootfs(repo: Path, change: str) -> None:
    rootfs, _ = keys(repo)
    script = repo / "image/overlay/usr/local/sbin/rescue-disks"
    if change == "edit":
        (repo / "image/overlay/etc/motd").write_text("rescue --help (new)\n")
    elif change == "add":
        (repo / "image/overlay/etc/issue").write_text("banner\n")
    elif change == "remove":
        (repo / "image/overlay/etc/motd").unlink()
    else:
        script.chmod(0o644)
    assert keys(repo)[0] != rootfs


def test_toolkit_change_reinstalls_only_the_toolkit(repo: Path) -> None:
    rootfs, toolkit = keys(repo)
    (repo / "rescue/cli/main.py").write_text("def run(): return 0\n")
    assert keys(repo) == (rootfs, keys(repo)[1]) and keys(repo)[1] != toolkit
    (repo / "rescue/cli/new_cmd.py").write_text("x = 1\n")
    assert keys(repo)[0] == rootfs


def test_renaming_a_file_changes_the_key(repo: Path) -> None:
    _, toolkit = keys(repo)
    shutil.move(repo / "rescue/cli/main.py", repo / "rescue/cli/entry.py")
    assert keys(repo)[1] != toolkit


def test_the_real_recipe_lists_its_inputs() -> None:
    rootfs = {str(p) for p in stamp.input_files("rootfs")}
    assert {"image/packages.txt", "image/lib/rootfs.sh", "image/lib/customize.sh"} <= rootfs
    assert any(p.startswith("image/overlay/") for p in rootfs)
    toolkit = {str(p) for p in stamp.input_files("toolkit")}
    assert "rescue/__init__.py" in toolkit and "pyproject.toml" in toolkit
    assert not any("__pycache__" in p for p in toolkit)
