"""Volumes Windows did not dismount cleanly, through the real appliance: the state told right, every
write refused without the flag (image bytes unchanged), and with it the log reset, the volume
written by ntfs-3g, the reset and the dirty bit visible, undo byte-exact, and a kill -9 during the
reset leaving the old or the reset restart area.

Disks: the samples crashed (unclean v2.0 log, no hiberfil), fast-startup (hiberfil "HIBR",
HiberbootEnabled 1, unclean log), hibernated ("HIBR", Fast Startup setting absent) and
chkdsk-scheduled (dirty bit only), and GPT disks around the Windows-made volumes in
../shared/realdata/ntfs (skipped when absent). Launches are batched (about 11 in all).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.ntfs.reset import read_state
from rescue.ntfs.state import NtfsState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402

pytestmark = pytest.mark.appliance

REPO = Path(__file__).resolve().parents[2]
CC = "HKLM\\SYSTEM\\ControlSet001\\Control\\CrashControl"
SYSTEM = "/Windows/System32/config/SYSTEM"


def image_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def part_start(image: Path, number: int) -> int:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True).stdout)
    return table["partitiontable"]["partitions"][number - 1]["start"] * 512


def host_state(image: Path, number: int, hiberfil=None, hiberboot=None):
    """The volume's state read on the host, straight from the image file (no appliance)."""
    base = part_start(image, number)
    with open(image, "rb") as fh:
        def read(off, n):
            fh.seek(base + off)
            return fh.read(n)
        return read_state(read, hiberfil, hiberboot)


def host_bytes(image: Path, number: int, offset: int, size: int) -> bytes:
    with open(image, "rb") as fh:
        fh.seek(part_start(image, number) + offset)
        return fh.read(size)


def restart_area(image: Path, number: int) -> tuple[int, bytes]:
    from rescue.ntfs.mft import MFT_RECORD_LOGFILE, NtfsVolume

    base = part_start(image, number)
    with open(image, "rb") as fh:
        def read(off, n):
            fh.seek(base + off)
            return fh.read(n)
        vol = NtfsVolume(read)
        (off, n), = vol.extents(MFT_RECORD_LOGFILE, 0, 8192)
        return off, read(off, n)


def rescue(*args, env=None, timeout=1800):
    """The CLI in a child process, as a user runs it (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from rescue.cli.main import run; sys.exit(run())",
                           *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc


@pytest.fixture
def real_disks(tmp_path):
    """GPT disks around the Windows-made volumes: unclean (v2.0 log) and clean."""
    from rescue.samples.ntfs_states import wrap_volume

    out = {}
    for n, name in enumerate(("velociraptor_win_unclean_lfs2", "dissect_win10_clean_compressed"), 1):
        src = need(f"ntfs/{name}.ntfs.gz")
        vol = tmp_path / f"{name}.ntfs"
        with gzip.open(src) as fi, open(vol, "wb") as fo:
            shutil.copyfileobj(fi, fo)
        out[name] = wrap_volume(vol, tmp_path / f"{name}.raw", disk_guid=f"5C0E2A61-7F3B-4C8E-9D21-00000000000{n}",
                                part_guid=f"5C0E2A61-7F3B-4C8E-9D21-10000000000{n}")
        vol.unlink()
    return out


# --- the state, told right -----------------------------------------------------------------------
def test_inspect_tells_every_state_apart(sample_disk, real_disks, cli):
    disks = [sample_disk(n) for n in ("crashed.raw", "fast-startup.raw", "hibernated.raw", "chkdsk-scheduled.raw",
                                      "gen2-healthy.raw")]
    disks += [real_disks["velociraptor_win_unclean_lfs2"], real_disks["dissect_win10_clean_compressed"]]
    before = [image_sha(p) for p in disks]
    r = cli("inspect", *disks, "--root", "0:3", "--json")
    assert r.code in (0, 1), r.err
    vols = {(v["disk"], v["partition"]): v for v in r.json()["volumes"]}
    want = {(0, 3): ("unclean", "unclean"), (1, 3): ("fast-startup", "fast-startup"),
            (2, 3): ("hibernated", "hibernated"), (3, 3): ("dirty", "dirty"), (4, 3): ("ok", "clean"),
            (5, 1): ("unclean", "unclean"), (6, 1): ("ok", "clean")}
    for (d, p), (state, ntfs_state) in want.items():
        v = vols[(str(disks[d]), p)]
        assert (v["state"], v["ntfs"]["state"]) == (state, ntfs_state), (disks[d].name, v)
    crash = vols[(str(disks[0]), 3)]["ntfs"]
    assert crash["log_version"] == "2.0" and crash["log_clean"] is False and crash["restart_flags"] == 0
    assert crash["hiberfil_signature"] is None and crash["dirty"] is False
    fast = vols[(str(disks[1]), 3)]["ntfs"]
    assert fast["hiberfil_signature"] == "HIBR" and fast["hiberboot_enabled"] is True
    assert vols[(str(disks[2]), 3)]["ntfs"]["hiberboot_enabled"] is None
    assert vols[(str(disks[3]), 3)]["ntfs"]["dirty"] is True and vols[(str(disks[3]), 3)]["ntfs"]["log_clean"]
    real = vols[(str(disks[5]), 1)]["ntfs"]
    assert real["log_version"] == "2.0" and real["log_clients_in_use"] is True
    assert "not shut down cleanly" in vols[(str(disks[0]), 3)]["note"]
    assert [image_sha(p) for p in disks] == before          # looking never writes


# --- refused without the flag, bytes unchanged ------------------------------------------------------
@pytest.mark.parametrize("sample,args,expect", [
    ("crashed.raw", ["reg", "add", "{disk}", CC, "/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "--yes"],
     "--reset-ntfs-log"),
    ("crashed.raw", ["bcd", "set", "{disk}", "{bootmgr}", "timeout", "10", "--yes"], "--reset-ntfs-log"),
    ("crashed.raw", ["expand", "{disk}", "--add", "256M", "--yes"], "--reset-ntfs-log"),
    ("fast-startup.raw", ["cleanup", "{disk}", "--yes", "--reset-ntfs-log"], "--discard-hibernation"),
])
def test_writing_commands_refuse_without_the_flag(sample_disk, sample, args, expect):
    disk = sample_disk(sample)
    before = image_sha(disk)
    r = rescue(*[str(disk) if a == "{disk}" else a for a in args])
    assert r.returncode == 5, (r.stdout[-1500:], r.stderr[-1500:])
    text = " ".join(r.stderr.split())
    assert expect in text and "Nothing was written" in text and "ntfsfix" not in text
    assert ("Fast Startup" in text) == (sample == "fast-startup.raw")
    assert image_sha(disk) == before


def test_engine_refuses_every_unclean_volume_then_resets_the_real_one(sample_disk, real_disks):
    """One read-write launch over the crashed sample and the real Windows-made unclean volume: a
    plan on each is refused and changes nothing; then the real volume's log is reset, ntfs-3g
    mounts it read-write, a new file is written and read back and every old file reads the same."""
    from rescue.cli.common import open_disks
    from rescue.errors import UnsafeStateError
    from rescue.hive.values import REG_DWORD, encode_dword
    from rescue.report import Reporter
    from rescue.safety import ntfs_reset
    from rescue.safety.apply import execute
    from rescue.safety.plan import FileRef, Plan, SetValue, Step, WriteFile

    crashed, real = sample_disk("crashed.raw"), real_disks["velociraptor_win_unclean_lfs2"]
    before = {p: image_sha(p) for p in (crashed, real)}
    old_off, old_restart = restart_area(real, 1)
    with open_disks([str(crashed), str(real)], write=True, quiet=True) as t:
        plans = [Plan("x", (Step("t", "t", (SetValue(FileRef("\\Windows\\System32\\config\\SYSTEM", 0, 3), "Select",
                                                        "RescueTest", REG_DWORD, encode_dword(1)),)),)),
                 Plan("y", (Step("t", "t", (WriteFile(FileRef("\\rescue-test.txt", 1, 1), b"x"),)),))]
        for plan in plans:
            with pytest.raises(UnsafeStateError, match="not shut down cleanly"):
                execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True))
        part = t.session.partition(1, 1)
        ro = t.session.mounted(part)
        old_files = {e.path[len(ro):]: (e.kind, e.size) for e in t.session.lstat_tree(ro)[0]
                     if "$" not in e.path and "System Volume Information" not in e.path}
        small = {p: t.session.read_file(ro + p) for p, (kind, size) in old_files.items()
                 if kind == "file" and size <= 1 << 20}
        assert old_files and small
        with pytest.raises(UnsafeStateError):
            ntfs_reset.plan_resets(t, [(1, 1)], ntfs_reset.NtfsOptions(discard_hibernation=False))
        planned = ntfs_reset.plan_resets(t, [(1, 1)], ntfs_reset.NtfsOptions(reset_log=True))
        (record,) = ntfs_reset.perform(t, planned)
        saved = {name: (off, data) for name, off, data in record.saved}
        assert saved["logfile-restart.bin"] == (old_off, old_restart)
        mp = t.session.mount(part, write=True)
        t.session.write_file(mp + "/rescue-test.txt", b"written after the log reset\r\n")
        t.session.sync()
        t.session.umount(part)
        mp = t.session.mount(part, write=False)
        assert t.session.read_file(mp + "/rescue-test.txt") == b"written after the log reset\r\n"
        for p, data in small.items():
            assert t.session.read_file(mp + p) == data, p
        assert t.layout.volume(1, 1).state == "dirty"
    assert image_sha(crashed) == before[crashed]
    ev = host_state(real, 1)
    assert ev.state is NtfsState.DIRTY and ev.log_empty and ev.dirty
    assert restart_area(real, 1)[1] == b"\xff" * len(old_restart)
    host_copy = Path(record.host_copy)
    assert (host_copy / "logfile-restart.bin").read_bytes() == old_restart


# --- with the flag: applied, undone ---------------------------------------------------------------------
def test_reset_ntfs_log_then_undo_on_the_crashed_sample(sample_disk):
    disk = sample_disk("crashed.raw")
    _off, old_restart = restart_area(disk, 3)
    r = rescue("reg", "add", disk, CC, "/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "--yes",
               "--reset-ntfs-log", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    (planned,) = doc["plan"]["ntfs_resets"]
    assert planned["evidence"]["state"] == "unclean" and planned["discard_hibernation"] is False
    (done,) = doc["result"]["ntfs_resets"]
    assert done["state_before"] == "unclean" and done["log_version_before"] == "2.0"
    assert done["volume_flags_after"] & 1 and not done["hibernation_discarded"]
    assert {s["file"] for s in done["saved"]} == {"ntfs-d0p3-logfile-restart.bin", "ntfs-d0p3-volume-record.bin"}
    ev = host_state(disk, 3)
    assert ev.state is NtfsState.DIRTY and ev.log_empty and ev.dirty
    backup = doc["result"]["backup_id"]

    r = rescue("undo", disk, "--yes", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    undo = json.loads(r.stdout)
    assert undo["result"]["backup_id"] == backup and undo["result"]["restored"]
    assert "is not undone" in undo["result"]["not_undone"][0]
    assert host_state(disk, 3).state is NtfsState.DIRTY          # the reset stays; chkdsk at next boot

    # One read-only launch: the SYSTEM hive is the original again, byte for byte, the backup holds
    # the old restart area and the manifest says what was reset.
    from rescue.cli.common import open_disks

    orig = sample_disk("crashed.raw", dest=disk.parent / "orig")
    with open_disks([str(disk), str(orig)], write=False, quiet=True, root="0:3") as t:
        mps = [t.session.mounted(t.session.partition(d, 3)) for d in (0, 1)]
        assert t.session.sha256(mps[0] + SYSTEM) == t.session.sha256(mps[1] + SYSTEM)
        folder = f"{mps[0]}/rescue-backup/{backup}"
        assert t.session.read_file(f"{folder}/ntfs-d0p3-logfile-restart.bin") == old_restart
        manifest = json.loads(t.session.read_file(f"{folder}/manifest.json"))
        assert manifest["ntfs_resets"][0]["state_before"] == "unclean"


def test_discard_hibernation_on_fast_startup_then_undo(sample_disk):
    disk = sample_disk("fast-startup.raw")
    r = rescue("crashdump", "enable", disk, "--yes", "--reset-ntfs-log", "--discard-hibernation", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    (done,) = doc["result"]["ntfs_resets"]
    assert done["state_before"] == "fast-startup" and done["hibernation_discarded"] is True
    hib = next(s for s in done["saved"] if s["file"].endswith("hiberfil-header.bin"))
    assert host_bytes(disk, 3, hib["volume_offset"], 4096) == bytes(4096)     # Windows cold-boots
    ev = host_state(disk, 3)
    assert ev.state is NtfsState.DIRTY and ev.log_empty
    r = rescue("undo", disk, "--yes", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["result"]["not_undone"]
    assert host_bytes(disk, 3, hib["volume_offset"], 4096) == bytes(4096)     # never resumes a changed disk


# --- kill -9 during the reset ---------------------------------------------------------------------------
def test_kill_during_reset_leaves_old_or_reset_restart_area(sample_disk):
    disk = sample_disk("crashed.raw")
    off, old = restart_area(disk, 3)
    args = ("reg", "add", disk, CC, "/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "--yes", "--reset-ntfs-log")
    r = rescue(*args, env={"RESCUE_FAULT": "ntfs-reset"})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert restart_area(disk, 3) == (off, old)                  # the body went, the restart area is whole
    assert host_state(disk, 3).state is NtfsState.UNCLEAN
    r = rescue(*args, env={"RESCUE_FAULT": "after-ntfs-reset"})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert restart_area(disk, 3) == (off, b"\xff" * len(old))   # reset, whole
    ev = host_state(disk, 3)
    assert ev.state is NtfsState.DIRTY and ev.log_empty and ev.dirty


# --- diagnose and fix no-memory: the issue's own path ------------------------------------------------------
def test_diagnose_then_fix_no_memory_on_a_crashed_vm(sample_disk):
    """What a new user does on the disk of a VM that crashed: diagnose names the crash (not
    hibernation) and prints the fix command with --reset-ntfs-log; the fix without it is refused
    with that advice and writes nothing; with it the fix applies and the diagnosis after is clean."""
    disk = sample_disk("crashed.raw")
    before = image_sha(disk)
    r = rescue("diagnose", disk, "--json")
    assert r.returncode == 1, r.stderr[-2000:]
    diag = json.loads(r.stdout)
    crash = next(f for f in diag["findings"] if f["id"] == "unsafe-unclean-ntfs")
    assert crash["status"] == "found" and crash["fix_option"] == "--reset-ntfs-log" and not crash["blocker"]
    assert "hibernat" not in crash["evidence"].lower() and "log 2.0 not clean" in crash["evidence"]
    assert diag["fix_command"].startswith(f"rescue fix no-memory {disk}") and "--reset-ntfs-log" in diag["fix_command"]
    assert len(diag["fix_notes"]) == 1 and "chkdsk" in diag["fix_notes"][0]

    r = rescue("fix", "no-memory", disk, "--yes")
    assert r.returncode == 5, r.stderr[-2000:]
    text = " ".join(r.stderr.split())
    assert "not shut down cleanly" in text and "--reset-ntfs-log" in text and "is hibernated" not in text
    assert image_sha(disk) == before

    r = rescue("fix", "no-memory", disk, "--yes", "--reset-ntfs-log", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["plan"]["ntfs_resets"][0]["evidence"]["state"] == "unclean"
    assert doc["result"]["applied"] and doc["result"]["ntfs_resets"][0]["state_before"] == "unclean"
    after = {f["id"]: f for f in doc["after"]["findings"]}
    assert "unsafe-unclean-ntfs" not in after
    ev = host_state(disk, 3)
    assert ev.state is NtfsState.DIRTY and ev.log_empty


def test_expand_with_reset_ntfs_log_grows_the_crashed_volume(sample_disk):
    """The reset goes first (no dirty bit yet: ntfsresize refuses a dirty volume), the resize, then
    the dirty bit; the saved restart area lands in the expand backup folder."""
    disk = sample_disk("crashed.raw")
    size = disk.stat().st_size
    _off, old = restart_area(disk, 3)
    r = rescue("expand", disk, "--add", "256M", "--yes", "--reset-ntfs-log", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)["expand"]
    (done,) = doc["ntfs_resets"]
    assert done["state_before"] == "unclean" and done["volume_flags_after"] & 1
    assert disk.stat().st_size == size + (256 << 20)
    assert doc["filesystem_size_after"] > doc["filesystem_size_before"]
    ev = host_state(disk, 3)
    assert ev.state is NtfsState.DIRTY and ev.log_empty and ev.dirty
