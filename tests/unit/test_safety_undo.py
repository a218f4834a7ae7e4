"""`rescue undo` / `rescue backups` on bare files (HostFileTarget): byte-identical round trips, undo of
an undo, file deletions and writes, the CLI's exit codes, and SIGKILL at each step of an apply."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.report import Reporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from safety_helpers import make_hive  # noqa: E402

from rescue.cli.main import run  # noqa: E402
from rescue.errors import ExitCode, NotFoundError  # noqa: E402
from rescue.hive import Hive  # noqa: E402
from rescue.hive.values import REG_DWORD, encode_dword  # noqa: E402
from rescue.safety.apply import FILE_FAULT_POINTS, execute  # noqa: E402
from rescue.safety.backup import MANIFEST_FORMAT, list_backups  # noqa: E402
from rescue.safety.plan import DeleteFile, FileRef, Plan, SetValue, Step, WriteFile  # noqa: E402
from rescue.safety.undo import undo  # noqa: E402
from rescue.target import HostFileTarget  # noqa: E402

CC = "ControlSet001\\Control\\CrashControl"
REPO = Path(__file__).resolve().parents[2]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(folder: Path, skip: str = ".rescue-backup") -> dict[str, str]:
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and skip not in str(p)}


def set_plan(ref: FileRef, value: int = 1, before: int | None = 0) -> Plan:
    return Plan("crash dumps", (Step("t", "crash dumps", (
        SetValue(ref, CC, "CrashDumpEnabled", REG_DWORD, encode_dword(value),
                 None if before is None else REG_DWORD, None if before is None else encode_dword(before)),)),))


def apply(hive: Path, plan_for):
    with HostFileTarget(str(hive), write=True) as t:
        return execute(t, plan_for(t.main), dry_run=False, reporter=Reporter(assume_yes=True))


def do_undo(hive: Path, **kw):
    # Through the CLI's reporter, so what a person sees (the preview table) is tested too.
    from rescue.cli.common import ConsoleReporter

    with HostFileTarget(str(hive), write=not kw.get("dry_run", False),
                        reporter=ConsoleReporter(assume_yes=True)) as t:
        return undo(t, **{"dry_run": False, **kw})


@pytest.fixture
def hive(tmp_path):
    return make_hive(tmp_path / "SYSTEM")


def test_change_then_undo_is_byte_identical_and_undo_of_undo_reapplies(hive):
    original = sha(hive)
    first = apply(hive, set_plan)
    changed = sha(hive)
    assert changed != original
    r1 = do_undo(hive)
    assert (r1.backup_id, r1.applied) == (first.backup_id, True) and sha(hive) == original
    with pytest.raises(NotFoundError, match="already undone"):
        do_undo(hive)                               # repeated undo steps back; nothing older here
    r2 = do_undo(hive, backup_id=r1.undo_backup_id)  # undo of the undo: named explicitly
    assert r2.backup_id == r1.undo_backup_id and sha(hive) == changed
    with HostFileTarget(str(hive)) as t:
        ms = list_backups(t)
    assert [(m.kind, m.status) for m in ms] == [("apply", "undone"), ("undo", "undone"), ("undo", "applied")]
    assert ms[0].undone_by == ms[1].id and ms[1].undoes == ms[0].id


def test_undo_dry_run_changes_nothing(hive, capsys):
    apply(hive, set_plan)
    before = tree(hive.parent, skip="\0")
    r = do_undo(hive, dry_run=True)
    assert r.dry_run and not r.applied
    assert "restore from backup" in capsys.readouterr().out
    assert tree(hive.parent, skip="\0") == before


def test_named_backup_and_incomplete_backups(hive):
    original = sha(hive)
    first = apply(hive, set_plan)
    after_first = sha(hive)
    apply(hive, lambda ref: set_plan(ref, 2, 1))
    # A folder without a manifest is a run killed while backing up: never chosen, never restorable.
    (hive.parent / "SYSTEM.rescue-backup" / "29991231T235959Z").mkdir()
    do_undo(hive)                                   # latest in effect: the second apply
    assert sha(hive) == after_first
    do_undo(hive, backup_id=first.backup_id)
    assert sha(hive) == original


def test_file_deletes_and_writes_round_trip(tmp_path, hive):
    old = tmp_path / "old.txt"
    old.write_bytes(b"old contents")
    keep = tmp_path / "keep.bin"
    keep.write_bytes(os.urandom(5000))
    pagefile = tmp_path / "pagefile.sys"
    pagefile.write_bytes(b"\0" * 8192)
    new = tmp_path / "new.txt"
    before = tree(tmp_path)

    def plan(_ref):
        return Plan("files", (Step("t.files", "files", (
            WriteFile(FileRef(str(old)), b"new contents"),
            WriteFile(FileRef(str(new)), b"created"),
            DeleteFile(FileRef(str(keep)), 5000, backup=True),
            DeleteFile(FileRef(str(pagefile)), 8192, backup=False),
            DeleteFile(FileRef(str(tmp_path / "already-gone.tmp")), 1, backup=False),
        )),))

    result = apply(hive, plan)
    assert old.read_bytes() == b"new contents" and new.read_bytes() == b"created"
    assert not keep.exists() and not pagefile.exists()
    assert len(result.files) == 5
    r = do_undo(hive)
    assert r.not_kept == 2                          # the page file and the file that was already gone
    assert {Path(f.path).name for f in r.restored} == {"old.txt", "keep.bin"}
    assert {Path(f.path).name for f in r.removed} == {"new.txt"}
    after = tree(tmp_path)
    del before["pagefile.sys"]
    assert after == before


def _expand_backup(hive: Path, backup_id: str) -> None:
    """What `rescue expand` leaves in the backup root: its saved table bytes and manifest."""
    from rescue.space.expand import ExpandPlan, expand_manifest

    plan = ExpandPlan(disk="osdisk.vhd", format_label="dynamic VHD", old_disk_size=1 << 30, new_disk_size=4 << 30,
                      table="gpt", partition=3, letter="C:", part_start=1 << 20, old_part_size=900 << 20,
                      new_part_size=(4 << 30) - (2 << 20), fs_size=None, fs_free=None)
    folder = hive.parent / "SYSTEM.rescue-backup" / backup_id
    folder.mkdir(parents=True)
    (folder / "disk-first-1MiB.bin").write_bytes(bytes(1 << 20))
    m = expand_manifest(plan, backup_id, saved={"disk-first-1MiB.bin": 1 << 20})
    (folder / "manifest.json").write_text(json.dumps(m.to_json()))


def test_an_expand_backup_is_listed_as_such_and_undo_says_growing_cannot_be_undone(hive, capsys):
    original = sha(hive)
    first = apply(hive, set_plan)
    after_first = sha(hive)
    _expand_backup(hive, "29991231T235959Z")           # the newest run grew the disk
    capsys.readouterr()
    assert run(["backups", str(hive), "--json"]) == 0
    listed = {b["id"]: b for b in json.loads(capsys.readouterr().out)}
    grow = listed["29991231T235959Z"]
    assert (grow["kind"], grow["status"], grow["files"], grow["kept"]) == ("expand", "applied", 0, 0)
    assert "partition 3 (C:)" in grow["title"] and "1 GiB -> 4 GiB" in grow["title"]
    assert listed[first.backup_id]["kind"] == "apply"

    # Named or as the latest run: refused with the truth, nothing restored, the earlier run named.
    for args in (["--backup", "29991231T235959Z"], []):
        assert run(["undo", str(hive), "--yes", *args]) == ExitCode.NOT_FOUND
        err = " ".join(capsys.readouterr().err.split())
        assert "grew the disk" in err and "cannot be undone by `rescue undo`" in err, err
        assert "nothing was restored" in err and "Shrink Volume" in err
        if not args:
            assert f"--backup {first.backup_id}" in err
        assert sha(hive) == after_first
    do_undo(hive, backup_id=first.backup_id)              # the earlier run still undoes by name
    assert sha(hive) == original


def test_cli_backups_and_undo_exit_codes(hive, capsys):
    assert run(["backups", str(hive), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert run(["undo", str(hive), "--yes"]) == ExitCode.NOT_FOUND
    assert "no backup to undo" in capsys.readouterr().err
    original = sha(hive)
    apply(hive, set_plan)
    capsys.readouterr()
    assert run(["backups", str(hive), "--json"]) == 0
    [b] = json.loads(capsys.readouterr().out)
    assert set(b) == {"id", "created", "kind", "status", "title", "files", "kept", "undoes", "undone_by",
                      "tool_version"}
    assert (b["kind"], b["status"], b["files"], b["kept"]) == ("apply", "applied", 1, 1)
    assert run(["undo", str(hive), "--backup", "19990101T000000Z", "--yes"]) == ExitCode.NOT_FOUND
    assert run(["undo", str(hive), "--json", "--yes"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"]["applied"] is True and data["backup"]["id"] == b["id"]
    assert sha(hive) == original
    assert run(["backups", str(hive)]) == 0
    assert "undone" in capsys.readouterr().out


# --- SIGKILL at each step of an apply ---------------------------------------------------------------
_CHILD = """
import sys
from rescue.hive.values import REG_DWORD, encode_dword
from rescue.report import Reporter
from rescue.safety.apply import execute
from rescue.safety.plan import Plan, SetValue, Step
from rescue.target import HostFileTarget
with HostFileTarget(sys.argv[1], write=True) as t:
    c = SetValue(t.main, r"ControlSet001\\Control\\CrashControl", "CrashDumpEnabled", REG_DWORD,
                 encode_dword(1), REG_DWORD, encode_dword(0))
    execute(t, Plan("p", (Step("t", "t", (c,)),)), dry_run=False, reporter=Reporter(assume_yes=True))
"""


@pytest.mark.parametrize("point", FILE_FAULT_POINTS)
def test_sigkill_at_each_step_leaves_old_state_or_undo_restores_it(tmp_path, point):
    hive = make_hive(tmp_path / "SYSTEM")
    original = sha(hive)
    env = {**os.environ, "RESCUE_FAULT": point}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(hive)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Hive(hive):                                # whatever is there is a whole hive, never half of one
        pass
    if point == "after-rename":
        assert sha(hive) != original                # the new hive is in place; the run was not finished
    else:
        assert sha(hive) == original
    with HostFileTarget(str(hive)) as t:
        [m] = list_backups(t)
    assert m.status == "in-progress"                # killed: neither applied nor rolled back
    assert run(["undo", str(hive), "--yes"]) == 0
    assert sha(hive) == original
    assert not list(tmp_path.glob("*.rescue-new"))  # a half-written temporary is cleaned up by undo


@pytest.mark.parametrize("written", [MANIFEST_FORMAT + 1, "two"])
def test_undo_refuses_a_backup_in_a_newer_format(hive, capsys, written):
    # A newer rescue may keep things this one cannot put back (format 2 added disk sectors):
    # undoing only the files it knows would leave the disk half restored.
    first = apply(hive, set_plan)
    after = sha(hive)
    folder = next(p for p in hive.parent.rglob(first.backup_id) if p.is_dir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT
    manifest.update(format=written, tool_version="9.9.9")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    for args in ([], ["--backup", first.backup_id]):
        assert run(["undo", str(hive), "--yes", *args]) == ExitCode.UNSAFE
        err = " ".join(capsys.readouterr().err.split())
        assert "newer backup format" in err and "rescue 9.9.9 or newer" in err and "nothing was restored" in err, err
        assert sha(hive) == after
    manifest.update(format=1)                 # an older format is still undone
    (folder / "manifest.json").write_text(json.dumps(manifest))
    do_undo(hive)
    assert sha(hive) != after


def test_legacy_expand_folders_are_listed_as_grown_in_time_order(hive, capsys):
    # Early `rescue expand` runs left "expand-<time>" folders with the table bytes and no manifest.
    root = hive.parent / "SYSTEM.rescue-backup"
    first = apply(hive, set_plan)
    after = sha(hive)
    for stamp in ("19990101T000000Z", "29991231T235959Z"):
        (root / f"expand-{stamp}").mkdir()
        (root / f"expand-{stamp}" / "gpt-primary.bin").write_bytes(bytes(512))
    capsys.readouterr()
    assert run(["backups", str(hive), "--json"]) == 0
    listed = [(b["id"], b["kind"], b["status"]) for b in json.loads(capsys.readouterr().out)]
    assert listed == [("expand-19990101T000000Z", "expand", "applied"), (first.backup_id, "apply", "applied"),
                      ("expand-29991231T235959Z", "expand", "applied")]
    # The newest change grew the disk: undo says so (not "incomplete") and restores nothing.
    assert run(["undo", str(hive), "--yes"]) == ExitCode.NOT_FOUND
    err = " ".join(capsys.readouterr().err.split())
    assert "grew the disk" in err and "older rescue" in err and f"--backup {first.backup_id}" in err, err
    assert sha(hive) == after
    shutil.rmtree(root / "expand-29991231T235959Z")
    do_undo(hive)                                  # an older grow does not stand in the way
    assert sha(hive) != after
