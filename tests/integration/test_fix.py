"""`rescue fix no-memory` end to end on the sample disks, checked in the image's own files.

Launch budget (TCG, ~20-40 s each): every command is one launch (asserted through RESCUE_LAUNCH_LOG);
the checks open the pristine sample, the fixed snapshot and the undone disk in ONE read-only session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json

import readme_contract as R
import shutil
from pathlib import Path

import pytest
from orphans import orphan_holding

from rescue.bcd import constants as C
from rescue.bcd.model import BcdStore
from rescue.disk.formats import detect
from rescue.disk.session import DiskSession
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.layout import discover
from rescue.target import win_to_posix

pytestmark = pytest.mark.appliance

ARTICLE_IDS = {"bcd-badmemory", "ems-off", "pagefile-not-on-temp-drive", "crashdump-disabled", "nmi-crashdump-off"}
CRASH = "Control\\CrashControl"
MM = "Control\\Session Manager\\Memory Management"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(cli, monkeypatch, tmp_path, *args):
    """Run one command, returning (result, number of appliance launches it made)."""
    log = tmp_path / f"launches-{len(list(tmp_path.glob('launches-*')))}.log"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    result = cli(*args)
    launches = len(log.read_text().splitlines()) if log.exists() else 0
    return result, launches


class DiskFiles:
    """Read-only view of one attached disk's Windows files, through a shared session."""

    def __init__(self, session: DiskSession, disk: int, workdir: Path):
        self.s, self.disk, self.dir = session, disk, workdir
        self.parts = {p.number: p for p in session.partitions() if p.disk == disk}

    def _path(self, part: int, path: str) -> str | None:
        mp = self.s.mount(self.parts[part], write=False)
        return self.s.resolve(mp + win_to_posix(path))

    def exists(self, part: int, path: str) -> bool:
        return self._path(part, path) is not None

    def fetch(self, part: int, path: str) -> Path:
        local = self.dir / f"d{self.disk}p{part}-{path.replace(chr(92), '_')}"
        self.s.download(self._path(part, path), local)
        return local

    def listdir(self, part: int, path: str) -> list[str]:
        p = self._path(part, path)
        return self.s.listdir(p) if p else []


def open_three(*images: Path):
    return DiskSession([detect(str(p)) for p in images], write=False)


def layout_of(name: str):
    """(windows partition, bcd partition, bcd path) of a sample, from its generation."""
    if name.startswith("gen2"):
        return 3, 1, "\\EFI\\Microsoft\\Boot\\BCD"
    return 2, 1, "\\Boot\\BCD"


def check_article_outcome(files: DiskFiles, name: str) -> None:
    """Every article outcome, read from the image's files (not from our own report)."""
    win, sysp, bcd_path = layout_of(name)
    store = BcdStore.open(files.fetch(sysp, bcd_path))
    bad = store.get(C.GUID_BADMEMORY)
    assert bad is not None and bad.element(C.BADMEMORYLIST) is None           # step 3
    default = store.get(store.default_id)
    ems = default.element(C.OSLOADER_EMS)                                      # step 5: /ems {default} on
    assert (ems.reg_type, ems.raw) == (V.REG_BINARY, b"\x01")
    emsset = store.get(C.GUID_EMSSETTINGS)                                     # /emssettings EMSPORT:1 ...
    port, baud = emsset.element(C.EMSPORT), emsset.element(C.EMSBAUDRATE)
    assert (port.reg_type, port.raw) == (V.REG_BINARY, (1).to_bytes(8, "little"))
    assert (baud.reg_type, baud.raw) == (V.REG_BINARY, (115200).to_bytes(8, "little"))

    system = Hive(files.fetch(win, "\\Windows\\System32\\config\\SYSTEM"))
    for cs in ("ControlSet001", "ControlSet002"):                              # step 5c, both sets
        got = {n: (system.get(f"{cs}\\{CRASH}", n).type, system.get(f"{cs}\\{CRASH}", n).data)
               for n in ("CrashDumpEnabled", "DumpFile", "NMICrashDump")}
        assert got == {"CrashDumpEnabled": (V.REG_DWORD, V.encode_dword(1)),
                       "DumpFile": (V.REG_EXPAND_SZ, V.encode_sz("%SystemRoot%\\MEMORY.DMP")),
                       "NMICrashDump": (V.REG_DWORD, V.encode_dword(1))}
        pf = system.get(f"{cs}\\{MM}", "PagingFiles")                          # step 4
        assert (pf.type, pf.value) == (V.REG_MULTI_SZ, ["D:\\pagefile.sys 0 0"])
    assert not files.exists(win, "\\pagefile.sys")                             # deleted from the VHD


@pytest.mark.parametrize("name", ["gen2-broken.vhd", "gen1-broken.vhdx", "gen1-broken.vhd", "gen2-broken.vhdx"])
def test_fix_then_undo(name, sample_disk, cli, monkeypatch, tmp_path):
    pristine = sample_disk(name, dest=tmp_path / "pristine")
    disk = sample_disk(name)
    before = sha(disk)

    old_size = detect(str(disk)).virtual_size
    # The command diagnose prints for the broken sample (article step 2 included: C: is under 300 MB
    # and cleanup alone cannot fix it).
    fix = ["fix", "no-memory", str(disk), "--cleanup", "--expand", "4G"]
    if name.endswith(".vhd"):  # dry run: plan shown, not one byte changed, no overlay left behind
        res, n = run_cli(cli, monkeypatch, tmp_path, *fix, "--dry-run", "--json")
        assert res.code == 0, res.err
        assert n == 1 and sha(disk) == before
        assert not list(disk.parent.glob("*rescue-stage*"))                 # no overlay left behind
        plan = json.loads(res.out)["plan"]
        actions = {s["action"] for s in plan["steps"] if s["changes"]}
        assert {"bcd.badmemory", "bcd.ems", "bcd.emssettings"} <= actions
        assert plan["prelude"]["action"] == "space.expand"
        assert plan["prelude"]["expand"]["new_disk_size"] == 4 << 30

    with contextlib.ExitStack() as stack:
        holder = None
        if name == "gen2-broken.vhd":
            # An appliance orphaned by a killed run still holds the image's lock: fix --expand
            # reaps it before its in-use check instead of refusing.
            holder = stack.enter_context(orphan_holding(disk, "vpc"))
        res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "0xC0000017", *fix[2:], "--yes", "--json")
        assert res.code == 0, res.err
        assert holder is None or holder.poll() is not None              # reaped, not left holding
    assert n == 1                                                   # one appliance launch for the whole article
    report = json.loads(res.out)
    # The README's key lists are the contract (a key the output lost fails here).
    assert R.check_keys(R.json_keys("`rescue fix SCENARIO --json` prints one document:"), report) == []
    assert R.check_keys(R.json_keys("`rescue diagnose --json`:"), report["after"]) == []
    found_before = {f["id"] for f in report["before"]["findings"] if f["status"] == "found"}
    assert ARTICLE_IDS | {"space-low", "space-expand"} <= found_before
    after = {f["id"]: f["status"] for f in report["after"]["findings"]}
    assert all(after[i] == "ok" for i in ARTICLE_IDS | {"space-low", "space-expand"}), after
    assert report["after"]["healthy"] is True
    backup_id = report["backup"]
    assert backup_id
    assert report["result"]["prelude"]["free_after"] > 3 << 30
    assert report["commit"]["image_grown"] is True and report["commit"]["verified_extents"] > 0
    assert (old_size, detect(str(disk)).virtual_size) == (1 << 30, 4 << 30)
    assert not list(disk.parent.glob("*rescue-stage*"))                     # the overlay is gone

    snapshot = tmp_path / "fixed" / name
    snapshot.parent.mkdir()
    shutil.copyfile(disk, snapshot)

    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
    assert res.code == 0, res.err
    assert n == 1
    if name == "gen2-broken.vhd":
        # The grow has its own backup (kind "expand"); undo took the fix's, and now says the truth.
        res, _ = run_cli(cli, monkeypatch, tmp_path, "backups", str(disk), "--json")
        kinds = [(b["kind"], b["status"]) for b in json.loads(res.out)]
        assert kinds == [("expand", "applied"), ("apply", "undone"), ("undo", "applied")], kinds
        res, _ = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
        err = " ".join(res.err.split())          # the terminal may wrap the sentence
        assert res.code == 7 and "grew the disk" in err and "cannot be undone by `rescue undo`" in err, err

    win, sysp, bcd_path = layout_of(name)
    with open_three(pristine, snapshot, disk) as s:
        orig, fixed, undone = (DiskFiles(s, i, tmp_path) for i in range(3))
        check_article_outcome(fixed, name)
        assert backup_id in fixed.listdir(win, "\\rescue-backup")
        mp = s.mount(fixed.parts[win], write=False)                  # step 2: C: grew with the disk
        assert s.usage(mp).free_bytes > 3 << 30
        cab = "\\Windows\\SoftwareDistribution\\Download\\9c1f3b7e2d\\windows10.0-kb5031361-x64.cab"
        assert orig.exists(win, cab) and not fixed.exists(win, cab)  # --cleanup removed the update cache
        for part, path in ((win, "\\Windows\\System32\\config\\SYSTEM"), (sysp, bcd_path)):
            assert sha(orig.fetch(part, path)) == sha(undone.fetch(part, path)), path   # byte-identical


def test_healthy_disk_needs_nothing(sample_disk, cli, monkeypatch, tmp_path):
    disk = sample_disk("gen2-healthy.vhd")
    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
    assert n == 1
    diag = json.loads(res.out)
    assert R.check_keys(R.json_keys("`rescue diagnose --json`:"), diag) == []
    article = [f for f in diag["findings"] if f["id"] in ARTICLE_IDS]
    assert article and all(f["status"] == "ok" for f in article), article
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "no-memory", str(disk), "--yes", "--json")
    assert res.code == 0, res.err
    assert n == 1
    assert json.loads(res.out)["result"]["nothing_to_do"] is True
    assert sha(disk) == before                                      # no backup folder, no byte changed


@pytest.mark.parametrize("name,needle", [
    ("bitlocker.vhd", "BitLocker"),
    ("hibernated.vhd", "hibernat"),
])
def test_unsafe_disks_are_refused(name, needle, sample_disk, cli, monkeypatch, tmp_path):
    disk = sample_disk(name)
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "no-memory", str(disk), "--yes")
    assert res.code in (4, 5), (res.code, res.err)
    assert needle.lower() in res.err.lower()
    assert "Traceback" not in res.err and n <= 1
    assert sha(disk) == before
