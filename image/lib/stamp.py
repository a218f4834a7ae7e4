#!/usr/bin/env python3
"""Cache keys for the image build: which inputs each cached step depends on, hashed.

`make image` keeps each expensive step's output in image/cache/ together with a stamp file holding
the key it was built from; a step reruns only when the key of its inputs differs (or its output is
missing). Keys hash file *contents* (plus mode and symlink targets), never mtimes, so a fresh clone
or `touch` does not trigger a rebuild and an edited file always does.

    python3 image/lib/stamp.py rootfs|toolkit [REPO]     -> prints the key (hex)
    python3 image/lib/stamp.py --list rootfs|toolkit      -> prints the input files

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# rootfs: the Debian packages and everything that shapes the root filesystem. The toolkit is NOT an
# input: rescue is installed in a separate, cheap step, so editing rescue/ does not re-run
# mmdebstrap + supermin (minutes), only the toolkit step (seconds).
ROOTFS_INPUTS = ("image/packages.txt", "image/lib/rootfs.sh", "image/lib/customize.sh",
                 "image/overlay")
# toolkit: the toolkit's sources and how they are installed (plus the rootfs key: a new rootfs
# needs the toolkit installed again).
TOOLKIT_INPUTS = ("pyproject.toml", "rescue", "debian", "tools/build_deb.sh", "tools/cli_docs.py",
                  "image/lib/toolkit.sh")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def input_files(kind: str, repo: Path = REPO) -> list[Path]:
    """The files a step depends on, sorted, relative to `repo` (directories walked)."""
    roots = {"rootfs": ROOTFS_INPUTS, "toolkit": TOOLKIT_INPUTS}[kind]
    found: list[Path] = []
    for rel in roots:
        top = repo / rel
        if top.is_dir() and not top.is_symlink():
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
                for name in filenames:
                    if not name.endswith(_SKIP_SUFFIXES):
                        found.append(Path(dirpath, name).relative_to(repo))
                # symlinked directories are recorded as links, not followed
                found.extend(Path(dirpath, d).relative_to(repo) for d in dirnames
                             if Path(dirpath, d).is_symlink())
        elif top.exists() or top.is_symlink():
            found.append(Path(rel))
    return sorted(set(found))


def digest(kind: str, repo: Path = REPO) -> str:
    """sha256 over (path, mode, content or link target) of every input of `kind`."""
    h = hashlib.sha256(f"rescue-image-{kind}-v1\0".encode())
    if kind == "toolkit":
        h.update(digest("rootfs", repo).encode())
    for rel in input_files(kind, repo):
        p = repo / rel
        h.update(str(rel).encode() + b"\0")
        if p.is_symlink():
            h.update(b"L" + os.readlink(p).encode() + b"\0")
            continue
        # only the executable bit matters for what ends up in the image
        h.update(b"X" if os.access(p, os.X_OK) else b"F")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--list"]
    if not args or args[0] not in ("rootfs", "toolkit"):
        print(__doc__, file=sys.stderr)
        return 2
    repo = Path(args[1]).resolve() if len(args) > 1 else REPO
    if "--list" in argv:
        print("\n".join(str(p) for p in input_files(args[0], repo)))
    else:
        print(digest(args[0], repo))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
