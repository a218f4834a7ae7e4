"""Shared fixtures: environment pinned for tests, sample disks and hives, and the CLI runner.

- Environment (whole session): the appliance runs under TCG (nested KVM hangs on CI and here),
  RESCUE_ACCEL=tcg, and a per-session RESCUE_CACHE_DIR so accel verdicts and appliance records from
  a developer's own runs do not leak into tests.
- `sample_disk(name)`: a fresh copy (in tmp_path) of a cached sample image built by
  rescue.samples ("gen2-broken.vhd", "gen1-broken.vhdx", "data-disk.vhd", ...; the list is in
  rescue/samples/__init__.py). The first use in a session builds every raw image in one appliance
  launch (cached across sessions in .cache/samples/<key>/); copies are sparse/reflinked, cheap.
- `sample_hives`: host hive files from the same builders, for unit tests (no appliance).
- `cli(*args, input=None)`: runs `rescue.cli.main.run([...])`, returns CliResult(code, out, err).

Helpers in this folder (import them as `from realdata import need`): tests/realdata.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Helper modules beside this file (realdata.py, ...) importable from every test folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Set at import time, before any test module imports rescue: libguestfs reads the backend settings
# when a handle is created, and some modules read RESCUE_* at import.
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
os.environ.setdefault("RESCUE_ACCEL", "tcg")


@pytest.fixture(scope="session", autouse=True)
def _rescue_test_env(tmp_path_factory):
    """Per-session cache folder for accel verdicts and appliance run records."""
    old = os.environ.get("RESCUE_CACHE_DIR")
    os.environ["RESCUE_CACHE_DIR"] = str(tmp_path_factory.mktemp("rescue-cache"))
    yield
    if old is None:
        os.environ.pop("RESCUE_CACHE_DIR", None)
    else:
        os.environ["RESCUE_CACHE_DIR"] = old


def copy_image(src: Path, dst: Path) -> Path:
    """Cheap private copy of a cached image: reflink when the filesystem can, else a sparse copy;
    made writable (the cache keeps its files read-only)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "--reflink=auto", "--sparse=always", str(src), str(dst)], check=True)
    dst.chmod(0o644)
    return dst


@pytest.fixture
def sample_disk(tmp_path):
    """Factory: `sample_disk("gen2-broken.vhd")` -> Path to a fresh writable copy in tmp_path.

    `sample_disk(name, dest=folder)` copies into another folder (e.g. two copies of one sample).
    Names: rescue.samples.names(); unknown names fail with the list of known ones.
    """
    from rescue import samples

    def make(name: str, *, dest: Path | None = None) -> Path:
        src = samples.sample_path(name)
        target = (dest or tmp_path) / name
        if target.exists():
            raise FileExistsError(f"{target} exists already: pass dest= for a second copy")
        return copy_image(src, target)

    return make


class SampleHives:
    """Host hive files built by rescue.samples.hives into a test's tmp_path.

    `system(**opts)`, `software(**opts)`, `bcd(**opts)` take the builders' options and return the
    file's Path; each call writes a new file (system, system-2, ...).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._count: dict[str, int] = {}

    def _path(self, kind: str, name: str | None) -> Path:
        n = self._count[kind] = self._count.get(kind, 0) + 1
        return self.folder / (name or (kind.upper() if n == 1 else f"{kind.upper()}-{n}"))

    def system(self, name: str | None = None, **opts) -> Path:
        from rescue.samples.hives import build_system_hive
        return build_system_hive(self._path("system", name), **opts)

    def software(self, name: str | None = None, **opts) -> Path:
        from rescue.samples.hives import build_software_hive
        return build_software_hive(self._path("software", name), **opts)

    def bcd(self, name: str | None = None, **opts) -> Path:
        from rescue.samples.bcd_store import build_bcd_hive
        return build_bcd_hive(self._path("bcd", name), **opts)

    def broken_system(self, generation: str = "gen2", name: str | None = None) -> Path:
        """The SYSTEM hive of the gen1-broken / gen2-broken sample disk, exactly."""
        return self.sample_system(f"{generation}-broken", name)

    def healthy_system(self, generation: str = "gen2", name: str | None = None) -> Path:
        return self.sample_system(f"{generation}-healthy", name)

    def broken_bcd(self, generation: str = "gen2", name: str | None = None) -> Path:
        """The BCD store of the gen1-broken / gen2-broken sample disk, exactly."""
        return self.sample_bcd(f"{generation}-broken", name)

    def healthy_bcd(self, generation: str = "gen2", name: str | None = None) -> Path:
        return self.sample_bcd(f"{generation}-healthy", name)

    def sample_system(self, base: str, name: str | None = None) -> Path:
        """The SYSTEM hive of catalogue sample `base` ("gen1-broken", "two-windows", ...), exactly
        (except "dirty-hive", whose disk holds realdata's SYSTEM_B when that is present)."""
        from rescue.samples.disks import system_hive_options
        return self.system(name, **system_hive_options(base))

    def sample_bcd(self, base: str, name: str | None = None) -> Path:
        """The BCD store of catalogue sample `base`, exactly."""
        from rescue.samples.disks import bcd_hive_options
        return self.bcd(name, **bcd_hive_options(base))


@pytest.fixture
def sample_hives(tmp_path) -> SampleHives:
    folder = tmp_path / "hives"
    folder.mkdir(exist_ok=True)
    return SampleHives(folder)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, monkeypatch):
    """`cli("inspect", path, "--json")` -> CliResult(code, out, err) from rescue.cli.main.run.

    `input=` feeds stdin (prompts); otherwise stdin is empty and not a terminal, as in scripts.
    """
    from rescue.cli.main import run

    def invoke(*args, input: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.StringIO(input or ""))
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def pytest_report_header(config):
    try:
        from rescue.samples.cache import key_dir
        d = key_dir()
        state = "built" if (d / "raw.done").exists() else "not built yet (first appliance test builds them)"
        return f"rescue sample disks: {d} ({state})"
    except Exception as exc:  # a broken builder must not hide every other test
        return f"rescue sample disks: unavailable ({exc})"

