"""NTFS states and the log reset on real volumes, without the appliance: Windows-made volumes from
../shared/realdata/ntfs (skipped when absent), volumes mkntfs makes here, and ntfs-3g's own verdict
(ntfs-3g.probe on the host image file) before and after."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.ntfs.logfile import RESTART_VOLUME_IS_CLEAN, assess
from rescue.ntfs.mft import MFT_RECORD_LOGFILE, NtfsFormatError, NtfsVolume, protect, unprotect, usn_of
from rescue.ntfs.reset import dirty_writes, plan_reset, read_state
from rescue.ntfs.state import NtfsState, classify, hiberfil_signature
from rescue.safety.ntfs_reset import NtfsOptions, PlannedReset, plan_resets, refusal
from rescue.samples.ntfs_states import make_dirty, make_unclean, unclean_restart_pages, wrap_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402

PROBE = shutil.which("ntfs-3g.probe")
MKNTFS = shutil.which("mkntfs") or "/usr/sbin/mkntfs"


def _reader(path: Path):
    data = path.read_bytes()
    return lambda off, n: data[off:off + n]


def _apply(path: Path, writes) -> None:
    with open(path, "r+b") as fh:
        for w in writes:
            for off, data in w.pieces():
                fh.seek(off)
                fh.write(data)


def _probe_rw(path: Path) -> int:
    if not PROBE:
        pytest.skip("ntfs-3g.probe is not installed")
    return subprocess.run([PROBE, "--readwrite", str(path)], capture_output=True).returncode


def _real(tmp_path: Path, name: str) -> Path:
    src = need(f"ntfs/{name}.ntfs.gz")
    dest = tmp_path / f"{name}.ntfs"
    with gzip.open(src) as fi, open(dest, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    return dest


@pytest.fixture
def mkntfs_volume(tmp_path) -> Path:
    if not Path(MKNTFS).exists():
        pytest.skip("mkntfs is not installed")
    path = tmp_path / "vol.ntfs"
    with open(path, "wb") as fh:
        fh.truncate(32 << 20)
    subprocess.run([MKNTFS, "-F", "-q", "-f", "-L", "Windows", str(path)], check=True, capture_output=True)
    return path


# --- states from Windows-made volumes -------------------------------------------------------------
def test_real_unclean_volume_is_a_crash(tmp_path):
    vol = _real(tmp_path, "velociraptor_win_unclean_lfs2")
    ev = read_state(_reader(vol), None, None)
    assert ev.state is NtfsState.UNCLEAN
    assert (ev.log_version, ev.log_clean, ev.log_empty, ev.restart_flags) == ("2.0", False, False, 0)
    assert ev.log_clients_in_use is True and ev.dirty is False and ev.hiberfil_signature is None
    assert "log 2.0 not clean" in ev.summary() and "no hiberfil.sys" in ev.summary()
    assert _probe_rw(vol) == 14          # ntfs-3g: "Metadata kept in Windows cache, refused to mount"


def test_real_clean_volumes_are_clean(tmp_path):
    vol = _real(tmp_path, "dissect_win10_clean_compressed")
    ev = read_state(_reader(vol), None, None)
    assert ev.state is NtfsState.CLEAN
    assert ev.log_version == "1.1" and ev.restart_flags & RESTART_VOLUME_IS_CLEAN and ev.log_clean
    disk = need("ntfs/ntfssamples_win10_18348_mbr_disk.raw.gz")
    start = 128 * 512                    # its one partition starts at sector 128
    with gzip.open(disk) as fh:
        def read(off, n):
            fh.seek(start + off)
            return fh.read(n)
        ev = read_state(read, None, None)
    assert ev.state is NtfsState.CLEAN and ev.log_version == "1.1"


def test_bitlocker_volume_is_not_read_as_ntfs(tmp_path):
    src = need("ntfs/fve_win10_bitlocker_aes128.bde.gz")
    with gzip.open(src) as fh:
        data = fh.read(1 << 20)
    assert data[3:11] == b"-FVE-FS-"
    ev = read_state(lambda off, n: data[off:off + n], None, None)
    assert ev.state is NtfsState.UNKNOWN and "NTFS" in ev.problem


# --- the reset ------------------------------------------------------------------------------------
def test_reset_real_unclean_volume_makes_ntfs3g_write(tmp_path):
    vol = _real(tmp_path, "velociraptor_win_unclean_lfs2")
    before = vol.read_bytes()
    plan = plan_reset(_reader(vol))
    # Order: dirty bit ($MFT, $MFTMirr), then the body, the restart pages LAST in one write.
    assert [w.what for w in plan.writes] == ["$Volume", "$MFTMirr $Volume", "log body", "restart pages"]
    assert plan.writes[-1].length == 8192 and plan.log_size == 2 << 20
    saved = {s.name: s for s in plan.saved}
    assert saved["logfile-restart.bin"].data == before[saved["logfile-restart.bin"].offset:][:8192]
    assert saved["logfile-restart.bin"].data[:4] == b"RSTR"
    _apply(vol, plan.writes)
    ev = read_state(_reader(vol), None, None)
    assert ev.state is NtfsState.DIRTY and ev.log_empty and ev.dirty
    assert ev.volume_flags == plan.flags_before | 1
    assert _probe_rw(vol) == 0
    # Only the log and the two $Volume copies changed.
    after = vol.read_bytes()
    changed = [i for i in range(0, len(before), 4096) if before[i:i + 4096] != after[i:i + 4096]]
    allowed = NtfsVolume(_reader(vol)).extents(MFT_RECORD_LOGFILE, 0, plan.log_size)
    allowed += [(w.offset, w.length) for w in plan.writes if w.what.endswith("$Volume")]
    for i in changed:
        assert any(o < i + 4096 and i < o + n for o, n in allowed), f"unexpected change at {i}"


@pytest.mark.parametrize("stop", range(5))
def test_crash_during_reset_leaves_old_or_reset_restart_area(tmp_path, stop):
    """A crash after any number of the reset's writes: the restart area is whole, old or gone."""
    vol = _real(tmp_path, "velociraptor_win_unclean_lfs2")
    plan = plan_reset(_reader(vol))
    old = next(s for s in plan.saved if s.name == "logfile-restart.bin")
    _apply(vol, plan.writes[:stop])
    now = vol.read_bytes()[old.offset:old.offset + len(old.data)]
    ev = read_state(_reader(vol), None, None)
    if stop < len(plan.writes):
        assert now == old.data and ev.state is NtfsState.UNCLEAN
        # ntfs-3g still refuses: the old log (14), or, killed between the $Volume record and its
        # $MFTMirr copy, the two differing (13). Running the reset again finishes it either way.
        assert _probe_rw(vol) in (13, 14)
        _apply(vol, plan_reset(_reader(vol)).writes)
    assert vol.read_bytes()[old.offset:old.offset + len(old.data)] == b"\xff" * len(old.data)
    assert read_state(_reader(vol), None, None).state is NtfsState.DIRTY
    assert _probe_rw(vol) == 0


def test_reset_of_a_second_run_is_stable(mkntfs_volume):
    make_unclean(mkntfs_volume, 0)
    _apply(mkntfs_volume, plan_reset(_reader(mkntfs_volume)).writes)
    again = plan_reset(_reader(mkntfs_volume))
    assert [w.what for w in again.writes] == ["log body", "restart pages"]   # dirty already
    assert read_state(_reader(mkntfs_volume), None, None).state is NtfsState.DIRTY


def test_sample_unclean_stamp_is_what_windows_leaves(mkntfs_volume, tmp_path):
    assert read_state(_reader(mkntfs_volume), None, None).state is NtfsState.CLEAN   # mkntfs: empty log
    make_unclean(mkntfs_volume, 0)
    ev = read_state(_reader(mkntfs_volume), None, None)
    assert ev.state is NtfsState.UNCLEAN and ev.log_version == "2.0" and ev.restart_flags == 0
    assert _probe_rw(mkntfs_volume) == 14


def test_sample_unclean_stamp_matches_the_real_restart_area(tmp_path):
    vol = _real(tmp_path, "velociraptor_win_unclean_lfs2")
    real = NtfsVolume(_reader(vol))
    head = real.read_extents(real.extents(MFT_RECORD_LOGFILE, 0, 8192))
    mine = unclean_restart_pages(2 << 20)
    a, b = assess(head).page, assess(mine).page
    assert (a.magic, a.version, a.system_page_size, a.log_page_size, a.client_in_use_list, a.flags) == \
           (b.magic, b.version, b.system_page_size, b.log_page_size, b.client_in_use_list, b.flags)
    # Restart-area fields other than the LSNs and the open count are those of the real page.
    pa, pb = unprotect(head[:4096], "real"), unprotect(mine[:4096], "mine")
    assert pa[0x30 + 8:0x30 + 0x28] == pb[0x30 + 8:0x30 + 0x28]


def test_dirty_stamp_only_sets_the_dirty_bit(mkntfs_volume):
    make_dirty(mkntfs_volume, 0)
    ev = read_state(_reader(mkntfs_volume), None, None)
    assert ev.state is NtfsState.DIRTY and ev.log_clean and ev.dirty
    assert dirty_writes(_reader(mkntfs_volume)) == ()
    assert _probe_rw(mkntfs_volume) == 0          # ntfs-3g writes to a dirty volume: nothing to reset


def test_hibernation_header_is_zeroed_first(mkntfs_volume, tmp_path):
    hib = tmp_path / "hiberfil.sys"
    hib.write_bytes(b"HIBR" + bytes(range(256)) * 255 + bytes(64 * 1024 - 4 - 256 * 255))
    subprocess.run([shutil.which("ntfscp") or "/usr/sbin/ntfscp", "-f", str(mkntfs_volume), str(hib),
                    "hiberfil.sys"], check=True, capture_output=True)
    info = subprocess.run([shutil.which("ntfsinfo") or "/usr/sbin/ntfsinfo", "-F", "/hiberfil.sys",
                           str(mkntfs_volume)], capture_output=True, text=True).stdout
    record = int(re.search(r"Dumping Inode (\d+)", info).group(1))
    make_unclean(mkntfs_volume, 0)
    plan = plan_reset(_reader(mkntfs_volume), hiberfil_record=record)
    assert plan.writes[0].what == "hiberfil header" and plan.writes[-1].what == "restart pages"
    assert next(s for s in plan.saved if s.name == "hiberfil-header.bin").data[:4] == b"HIBR"
    _apply(mkntfs_volume, plan.writes)
    vol = NtfsVolume(_reader(mkntfs_volume))
    head = vol.read_extents(vol.extents(record, 0, 4096))
    assert hiberfil_signature(head) == "zeroed"
    assert _probe_rw(mkntfs_volume) == 0


# --- pieces -----------------------------------------------------------------------------------------
def test_hiberfil_signatures_and_states():
    assert hiberfil_signature(None) is None
    assert hiberfil_signature(bytes(4096)) == "zeroed"
    assert hiberfil_signature(b"HIBR" + bytes(100)) == "HIBR"
    assert hiberfil_signature(b"wake" + bytes(100)) == "wake"
    log = assess(b"\xff" * 8192)
    assert log.empty and log.clean
    assert classify(log, 0, "HIBR", True).state is NtfsState.FAST_STARTUP
    assert classify(log, 0, "HIBR", None).state is NtfsState.HIBERNATED
    assert classify(log, 0, "hibr", False).state is NtfsState.HIBERNATED
    assert classify(log, 0, "wake", True).state is NtfsState.CLEAN        # used image: not resumable
    assert classify(log, 0, "zeroed", None).state is NtfsState.CLEAN
    assert classify(log, 1, None, None).state is NtfsState.DIRTY
    unclean = assess(unclean_restart_pages(4 << 20))
    assert classify(unclean, 0, None, None).state is NtfsState.UNCLEAN
    assert classify(unclean, 1, None, None).state is NtfsState.UNCLEAN    # the log decides first


def test_torn_restart_page_is_refused():
    pages = bytearray(unclean_restart_pages(4 << 20))
    pages[1022:1024] = b"\x00\x00"                     # a sector's sequence number lost
    with pytest.raises(NtfsFormatError):
        assess(bytes(pages))
    with pytest.raises(NtfsFormatError):
        assess(b"\x00" * 8192)                          # neither restart pages nor empty


def test_protect_round_trip():
    page = unclean_restart_pages(4 << 20)[:4096]
    plain = unprotect(page, "page")
    again = protect(plain, usn_of(page))
    back = unprotect(again, "again")
    assert usn_of(again) == usn_of(page) + 1 and back[:0x1E] == plain[:0x1E] and back[0x20:] == plain[0x20:]


def test_refusals_name_the_true_state_and_the_flag():
    crash = classify(assess(unclean_restart_pages(4 << 20)), 0, None, None)
    e = refusal("C: (osdisk.vhd partition 3)", crash, NtfsOptions())
    text = str(e)
    assert e.exit_code == 5 and "not shut down cleanly" in text and "--reset-ntfs-log" in text
    assert "hibernat" not in text.lower() and "ntfsfix" not in text and "Nothing was written" in text
    fast = classify(assess(b"\xff" * 8192), 0, "HIBR", True)
    text = str(refusal("C:", fast, NtfsOptions(reset_log=True)))
    assert "Fast Startup" in text and "--discard-hibernation" in text and "alone is not enough" in text
    hib = classify(assess(b"\xff" * 8192), 0, "HIBR", None)
    assert "is hibernated" in str(refusal("C:", hib, NtfsOptions()))


class _Layout:
    disk_paths = ("osdisk.vhd",)

    def __init__(self, ev):
        from rescue.layout import Volume

        self.volumes = (Volume(0, 3, "ntfs", "Windows", 1, 1, "C:", "windows", "unclean", ntfs=ev),)

    def volume(self, d, p):
        return next((v for v in self.volumes if (v.disk, v.partition) == (d, p)), None)

    def letter_of(self, d, p):
        return "C:"


class _Target:
    def __init__(self, ev):
        self.layout = _Layout(ev)


def test_plan_resets_needs_the_right_flag():
    crash = classify(assess(unclean_restart_pages(4 << 20)), 0, None, None)
    t = _Target(crash)
    with pytest.raises(Exception) as e:
        plan_resets(t, [(0, 3)], NtfsOptions())
    assert e.value.exit_code == 5
    (p,) = plan_resets(t, [(0, 3)], NtfsOptions(reset_log=True))
    assert isinstance(p, PlannedReset) and not p.discard_hibernation and p.where == "C: (osdisk.vhd partition 3)"
    assert any("chkdsk" in line for line in p.lines())
    assert plan_resets(t, [(0, 1)], NtfsOptions()) == ()        # another volume: nothing to do
    fast = classify(assess(b"\xff" * 8192), 0, "HIBR", True)
    with pytest.raises(Exception):
        plan_resets(_Target(fast), [(0, 3)], NtfsOptions(reset_log=True))
    (p,) = plan_resets(_Target(fast), [(0, 3)], NtfsOptions(discard_hibernation=True))
    assert p.discard_hibernation and "hiberfil.sys" in p.lines()[0]


def test_wrap_volume_puts_a_gpt_around_it(tmp_path, mkntfs_volume):
    disk = wrap_volume(mkntfs_volume, tmp_path / "disk.raw", disk_guid="6F1A2B3C-0000-4000-8000-000000000001",
                       part_guid="6F1A2B3C-0000-4000-8000-000000000002")
    data = disk.read_bytes()
    assert data[512:520] == b"EFI PART" and data[(1 << 20) + 3:(1 << 20) + 11] == b"NTFS    "
    ev = read_state(lambda off, n: data[(1 << 20) + off:(1 << 20) + off + n], None, None)
    assert ev.state is NtfsState.CLEAN


# --- diagnose: the fixing command carries the flag ---------------------------------------------------
def test_crashed_volume_is_a_fixable_finding_whose_flag_the_fix_command_carries():
    from rescue.layout import Volume
    from rescue.repairs.findings import FOUND, Diagnosis, Finding
    from rescue.repairs.runner import volume_blockers

    crash = classify(assess(unclean_restart_pages(4 << 20)), 0, None, None)

    class Root:
        disk, partition = 0, 3

    class Layout(_Layout):
        root, bcd = Root(), None

        def __init__(self, ev, state):
            self.volumes = (Volume(0, 3, "ntfs", "Windows", 1, 1, "C:", "windows", state, note="n", ntfs=ev),)

    class Ctx:
        def __init__(self, layout):
            self.layout = layout

    (f,) = volume_blockers(Ctx(Layout(crash, "unclean")))
    assert (f.id, f.fixable, f.blocker, f.fix_option) == ("unsafe-unclean-ntfs", True, False, "--reset-ntfs-log")
    assert "chkdsk" in f.fix_note and "replay" in f.fix_note
    fast = classify(assess(b"\xff" * 8192), 0, "HIBR", True)
    (g,) = volume_blockers(Ctx(Layout(fast, "fast-startup")))
    assert g.fix_option == "--discard-hibernation" and not g.blocker
    bitlocker = volume_blockers(Ctx(Layout(None, "bitlocker")))
    assert bitlocker[0].blocker

    other = Finding("bcd-badmemory", "no bad memory", FOUND, "3 pages", fixable=True, scenario="no-memory")
    diag = Diagnosis(("osdisk.vhd",), (f, other), scenarios=("no-memory",))
    assert diag.fix_commands() == ["rescue fix no-memory osdisk.vhd --reset-ntfs-log"]
    assert diag.fix_notes() == [f.fix_note] and diag.to_json()["fix_notes"] == [f.fix_note]
    alone = Diagnosis(("osdisk.vhd",), (f,), scenarios=("no-memory",))
    assert alone.fix_commands() == [] and alone.fix_notes() == []      # nothing else to fix: no command
    blocked = Diagnosis(("osdisk.vhd",), (f, other, bitlocker[0]), scenarios=("no-memory",))
    assert blocked.fix_commands() == []
