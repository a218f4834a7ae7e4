"""The safety engine's MBR change (SetActivePartition) on a host-file "disk": the sector is read and
written through the target's two sector methods, here over sector 0 of a real file, so the
engine's order, backup, read-back, rollback and undo are checked without an appliance (the real
appliance path is tests/integration/test_rebuild_bcd_disk.py)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from safety_helpers import make_hive  # noqa: E402
from test_rebuild_bcd import mbr  # noqa: E402  (a real-format sector 0)

from rescue.disk import ptable  # noqa: E402
from rescue.errors import UnsafeStateError, UsageError, WriteFailedError  # noqa: E402
from rescue.hive.values import REG_DWORD, encode_dword  # noqa: E402
from rescue.report import Reporter  # noqa: E402
from rescue.safety.apply import execute  # noqa: E402
from rescue.safety.backup import list_backups  # noqa: E402
from rescue.safety.plan import FileRef, Plan, SetActivePartition, SetValue, Step  # noqa: E402
from rescue.safety.undo import undo  # noqa: E402
from rescue.target import HostFileTarget  # noqa: E402

CC = "ControlSet001\\Control\\CrashControl"


class DiskFileTarget(HostFileTarget):
    """A hive file target whose disk 0 is `disk` (a host file): sector 0 read and written in place."""

    def __init__(self, hive: Path, disk: Path, **kw):
        super().__init__(str(hive), **kw)
        self.disk = disk
        self.sector_writes = 0

    def read_boot_sector(self, disk):
        return self.disk.read_bytes()[:512]

    def write_boot_sector(self, disk, sector):
        assert len(sector) == 512
        self.sector_writes += 1
        with open(self.disk, "r+b") as fh:
            fh.write(sector)

    def disk_label(self, disk):
        return self.disk.name


@pytest.fixture
def files(tmp_path):
    hive = make_hive(tmp_path / "SYSTEM")
    disk = tmp_path / "os.raw"
    disk.write_bytes(mbr(0, 0) + b"\xa5" * 4096)
    return hive, disk


def plan_for(t, sector: bytes) -> Plan:
    return Plan("active", (
        Step("t.value", "crash dumps", (SetValue(t.main, CC, "CrashDumpEnabled", REG_DWORD, encode_dword(1),
                                                 REG_DWORD, encode_dword(0)),)),
        Step("mbr.active", "mark partition 1 active",
             (SetActivePartition.of(0, 1, sector, disk_label="os.raw", reason="test"),))))


def apply(hive: Path, disk: Path, *, sector: bytes | None = None, dry_run: bool = False):
    with DiskFileTarget(hive, disk, write=not dry_run) as t:
        plan = plan_for(t, sector if sector is not None else disk.read_bytes()[:512])
        return execute(t, plan, dry_run=dry_run, reporter=Reporter(assume_yes=True)), t.sector_writes


def do_undo(hive: Path, disk: Path, **kw):
    with DiskFileTarget(hive, disk, write=True) as t:
        return undo(t, dry_run=False, reporter=Reporter(assume_yes=True), **kw)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_sets_one_byte_keeps_the_sector_and_undo_writes_it_back(files):
    hive, disk = files
    disk_before, hive_before = disk.read_bytes(), sha(hive)
    result, writes = apply(hive, disk)
    assert writes == 1
    now = disk.read_bytes()
    assert [i for i in range(len(now)) if now[i] != disk_before[i]] == [446] and now[446] == 0x80
    assert [e.label for e in result.sectors] == ["os.raw sector 0 (MBR)"]
    assert result.to_json()["sectors"] == [{"disk": 0, "disk_path": "os.raw", "offset": 0, "size": 512, "role": "mbr"}]
    # The manifest lists the sector with its kind; the kept file is the original sector.
    folder = Path(str(hive) + ".rescue-backup") / result.backup_id
    doc = json.loads((folder / "manifest.json").read_text())
    (entry,) = doc["sectors"]
    assert entry["role"] == "mbr" and entry["size"] == 512
    assert (folder / entry["stored"]).read_bytes() == disk_before[:512]
    assert entry["sha256"] == hashlib.sha256(disk_before[:512]).hexdigest()
    assert entry["after_sha256"] == hashlib.sha256(now[:512]).hexdigest()
    assert doc["plan"]["steps"][1]["changes"][0]["kind"] == "set-active-partition"

    r = do_undo(hive, disk)
    assert disk.read_bytes() == disk_before and sha(hive) == hive_before       # byte-identical
    assert [e.disk_path for e in r.restored_sectors] == ["os.raw"]
    do_undo(hive, disk, backup_id=r.undo_backup_id)                              # undo the undo
    assert disk.read_bytes() == now


def test_dry_run_writes_nothing(files):
    hive, disk = files
    before, hive_before = disk.read_bytes(), sha(hive)
    result, writes = apply(hive, disk, dry_run=True)
    assert result.dry_run and writes == 0 and disk.read_bytes() == before and sha(hive) == hive_before
    assert not Path(str(hive) + ".rescue-backup").exists()


@pytest.mark.parametrize("fault", ["raise:before-mbr-write", "raise:after-mbr-write"])
def test_failure_at_the_mbr_rolls_back_sector_and_files(files, monkeypatch, fault):
    hive, disk = files
    before, hive_before = disk.read_bytes(), sha(hive)
    monkeypatch.setenv("RESCUE_FAULT", fault)
    with pytest.raises(WriteFailedError, match="Rolled back"):
        apply(hive, disk)
    assert disk.read_bytes() == before and sha(hive) == hive_before
    with HostFileTarget(str(hive)) as t:
        [m] = list_backups(t)
    assert m.status == "rolled-back"


def test_sector_changed_since_the_plan_is_refused_before_anything_is_written(files):
    hive, disk = files
    before, hive_before = disk.read_bytes(), sha(hive)
    stale = mbr(0, 0x80)                 # the plan was made from another table
    with pytest.raises(UnsafeStateError, match="changed since the plan"):
        apply(hive, disk, sector=stale)
    assert disk.read_bytes() == before and sha(hive) == hive_before
    assert not Path(str(hive) + ".rescue-backup").exists()


def test_undo_refuses_a_disk_repartitioned_since(files):
    hive, disk = files
    apply(hive, disk)
    data = bytearray(disk.read_bytes())
    data[446 + 12] ^= 0x01               # partition 1 now starts elsewhere
    disk.write_bytes(bytes(data))
    hive_now = sha(hive)
    with pytest.raises(UnsafeStateError, match="more than the active flag"):
        do_undo(hive, disk)
    assert disk.read_bytes() == bytes(data) and sha(hive) == hive_now      # nothing restored


def test_gpt_protective_mbr_and_bad_entries_are_refused():
    with pytest.raises(UsageError, match="GPT"):
        SetActivePartition.of(0, 1, mbr(gpt=True), disk_label="os.raw")
    with pytest.raises(UsageError, match="not a primary partition"):
        SetActivePartition.of(0, 5, mbr(0, 0), disk_label="os.raw")
    with pytest.raises(UsageError, match="entry 3 is empty"):
        SetActivePartition.of(0, 3, mbr(0, 0), disk_label="os.raw")
    with pytest.raises(UsageError, match="no MBR"):
        SetActivePartition.of(0, 1, bytes(512), disk_label="os.raw")


def test_with_active_clears_the_other_flag_and_nothing_else():
    before = mbr(0, 0x80)
    after = ptable.with_active(before, 1)
    assert ptable.boot_indicators(after) == (0x80, 0, 0, 0)
    assert [i for i in range(512) if before[i] != after[i]] == [446, 462]
    assert ptable.only_boot_indicators_differ(before, after)
    assert not ptable.only_boot_indicators_differ(before, after[:450] + b"\x01" + after[451:])
