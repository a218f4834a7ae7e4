"""`make deb`: the Debian package builds from this checkout and works from a throw-away root.

The package is built once per session with tools/build_deb.sh (what `make deb` runs; ~10 s), then
unpacked with `dpkg --root` into a temporary directory (its maintainer scripts only byte-compile,
which needs the root's own interpreter: the unpack is the installation) and its /usr/bin/rescue
run with this host's Debian python3, whose dist-packages hold the package's dependencies
(python3-click, python3-rich, python3-guestfs, python3-hivex, ...; `make setup` installs them).
So the run uses Debian's click and rich and the typer the package vendors, never the .venv's.
The full `apt install` into a fresh Debian 12 root is the bootable image's toolkit step
(`make image-test`).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rescue import __version__

REPO = Path(__file__).resolve().parents[2]
DEPENDS = ("python3-guestfs", "python3-hivex", "libguestfs-tools", "ntfs-3g", "qemu-utils",
           "python3-click", "python3-rich")

pytestmark = pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None,
                                reason="dpkg-dev is not installed (make setup installs it)")


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    r = subprocess.run(["bash", str(REPO / "tools" / "build_deb.sh"), str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    path = out / f"rescue_{__version__}_all.deb"
    assert path.exists(), sorted(p.name for p in out.iterdir())
    return path


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    r = subprocess.run(["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--unpack", str(deb)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return root


def _rescue(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["PATH"] = f"{root}/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(["/usr/bin/python3", str(root / "usr/bin/rescue"), *args], capture_output=True,
                          text=True, env=env, **kw)


def test_control_fields(deb) -> None:
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Depends"],
                          capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(": ", 1) for line in info.strip().splitlines())
    assert fields["Package"] == "rescue" and fields["Version"] == __version__
    assert fields["Architecture"] == "all"
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    for name in DEPENDS:
        assert name in depends, fields["Depends"]
    assert "python3-typer" not in depends      # too old in Debian 12: vendored


def test_layout_follows_debian_python_policy(root) -> None:
    private = root / "usr/share/rescue"
    assert (root / "usr/bin/rescue").stat().st_mode & 0o111
    assert (private / "rescue/cli/main.py").is_file()
    assert (private / "typer/__init__.py").is_file()                 # vendored, private
    assert list(private.glob("typer-*.dist-info/licenses/LICENSE"))
    assert not list(root.glob("usr/lib/python3*/dist-packages/rescue"))   # no public module
    assert not list(private.rglob("__pycache__"))                    # compiled at install time
    assert (root / "usr/share/doc/rescue/copyright").is_file()


def test_installed_command_runs_version_and_bcd_enum(root, sample_hives) -> None:
    r = _rescue(root, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"rescue {__version__}"
    bcd = sample_hives.bcd()
    r = _rescue(root, "bcd", "enum", str(bcd), "all")
    assert r.returncode == 0, r.stderr
    assert "Windows Boot Manager" in r.stdout and "{bootmgr}" in r.stdout
    # the same store as the development tree reads it, byte for byte (JSON)
    mine = subprocess.run([str(REPO / ".venv/bin/rescue"), "bcd", "enum", str(bcd), "all", "--json"],
                          capture_output=True, text=True)
    theirs = _rescue(root, "bcd", "enum", str(bcd), "all", "--json")
    assert theirs.returncode == 0 and theirs.stdout == mine.stdout


def test_installed_command_uses_its_vendored_typer(root) -> None:
    r = _rescue(root, "--help")
    assert r.returncode == 0, r.stderr
    code = (f"import sys; sys.path.insert(0, '{root}/usr/share/rescue'); import typer, click; "
            "print(typer.__file__); print(click.__file__)")
    where = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True, check=True)
    typer_file, click_file = where.stdout.split()
    assert typer_file.startswith(str(root / "usr/share/rescue/typer"))
    assert click_file.startswith("/usr/lib/python3/dist-packages/")   # Debian's click


def test_installed_diagnose_has_the_scenario_options(root) -> None:
    # Built from the scenario registry on first use, on Debian's click with the vendored typer.
    r = _rescue(root, "diagnose", "--help")
    assert r.returncode == 0, r.stderr
    assert "--ram" in r.stdout and "--scenario" in r.stdout


def test_bash_completion_completes_subcommands(root) -> None:
    script = root / "usr/share/bash-completion/completions/rescue"
    assert (root / "usr/share/zsh/vendor-completions/_rescue").is_file()
    assert (root / "usr/share/fish/vendor_completions.d/rescue.fish").is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    # /usr/bin/rescue's shebang is /usr/bin/python3; put the unpacked one first on PATH.
    env["PATH"] = f"{root}/usr/bin:/usr/bin:/bin"
    bash = (f"source {script}; COMP_WORDS=(rescue bcd e); COMP_CWORD=2; _rescue_completion rescue; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "-c", bash], capture_output=True, text=True, env=env)
    words = set(r.stdout.split())
    assert {"enum", "ems", "emssettings"} <= words, r.stdout + r.stderr
    assert "set" not in words


def test_man_page_renders_and_covers_every_command(root) -> None:
    page = root / "usr/share/man/man1/rescue.1.gz"
    r = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="100", MANPAGER="cat", PAGER="cat"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""
    text = r.stdout
    for heading in ("NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT"):
        assert re.search(rf"^{heading}$", text, re.M), heading
    for command in ("rescue inspect", "rescue bcd enum", "rescue reg query", "rescue fix no-memory",
                    "rescue doctor", "rescue undo"):
        assert command in text, command
    roff = gzip.decompress(page.read_bytes()).decode()
    assert "\\-\\-dry\\-run" in roff                       # options come from the CLI's parameters
    # diagnose's scenario options are built on first use (not by `rescue --help`): the page has them.
    diagnose = roff.split(".SS rescue diagnose", 1)[1].split(".SS ", 1)[0]
    assert "\\-\\-ram" in diagnose and "\\-\\-scenario" in diagnose
    assert re.search(r"^\s+10\s+the libguestfs appliance", text, re.M)   # exit codes from errors.py
