"""The safety engine on real sample disks through the real appliance.

Launches are expensive under TCG (tens of seconds each, minutes on a loaded machine), so each test
does as much as it honestly can per launch; 8 launches in all:
  - Gen1 round trip (VHDX, MBR): change SYSTEM and \\Boot\\BCD, read back, undo, byte-identical (1).
  - Gen2 (VHD, GPT) SIGKILL chain: the `rescue` process kills itself (RESCUE_FAULT test hook) at each
    step of an apply that changes SYSTEM on C: and the BCD on the ESP; the next run (a new launch,
    which must not find the image "in use" because of our own orphan appliance) checks the disk holds
    the old state, runs the undo and checks again, then applies with the next fault point. A final run
    undoes the after-rename kill and finds every file byte-identical to the start (4 + 1).
  - Hibernated and BitLocker volumes, both disks in one launch: refused, images unchanged (1).
  - The dirty-hive sample: logs replayed before editing, logs emptied, undo byte-identical (1).
  - Read-only image and image in use: refused before any launch, images unchanged (0).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rescue.report import Reporter

from rescue.errors import UnsafeStateError
from rescue.safety.apply import FILE_FAULT_POINTS as POINTS

pytestmark = pytest.mark.appliance

REPO = Path(__file__).resolve().parents[2]
CC = "ControlSet001\\Control\\CrashControl"


@pytest.fixture
def disk(sample_disk):
    return sample_disk


def image_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _touched(t):
    """SYSTEM (+ its logs) on the Windows volume and the BCD store the firmware uses, as FileRefs."""
    from rescue.safety.plan import FileRef

    root = t.layout.require_root()
    system = FileRef("\\Windows\\System32\\config\\SYSTEM", root.disk, root.partition)
    bcd = FileRef(t.layout.bcd.path, t.layout.bcd.disk, t.layout.bcd.partition)
    refs = [system, bcd] + [t.companion(r, s) for r in (system, bcd) for s in (".LOG", ".LOG1", ".LOG2")]
    return system, bcd, [r for r in refs if t.exists(r)]


def _state(t, refs) -> dict[str, str]:
    return {r.path: t.sha256(r) for r in refs}


def _plan(t, system, bcd, n: int):
    """Change one SYSTEM value and one BCD value (both read first, as commands do)."""
    from rescue.hive import Hive
    from rescue.hive.values import REG_DWORD, encode_dword
    from rescue.safety.apply import safe_hive_copy
    from rescue.safety.plan import Plan, SetValue, Step

    with Hive(safe_hive_copy(t, system)) as h:
        cur = h.get(CC, "CrashDumpEnabled")
    with Hive(safe_hive_copy(t, bcd)) as h:
        old = h.get("Description", "RescueTest")
    return Plan(f"safety test {n}", (
        Step("t.system", "crash dumps", (SetValue(system, CC, "CrashDumpEnabled", REG_DWORD, encode_dword(n),
                                                  cur.type if cur else None, cur.data if cur else None),)),
        Step("t.bcd", "bcd marker", (SetValue(bcd, "Description", "RescueTest", REG_DWORD, encode_dword(n),
                                              old.type if old else None, old.data if old else None),)),
    ))


# --- Gen1 round trip ------------------------------------------------------------------------------
def test_gen1_change_then_undo_is_byte_identical(disk):
    from rescue.cli.common import open_disks
    from rescue.hive import Hive
    from rescue.safety.apply import execute
    from rescue.safety.backup import list_backups
    from rescue.safety.undo import undo

    image = disk("gen1-broken.vhdx")
    with open_disks([str(image)], write=True, quiet=True) as t:
        system, bcd, refs = _touched(t)
        assert bcd.path.lower() == "\\boot\\bcd"
        before = _state(t, refs)
        result = execute(t, _plan(t, system, bcd, 5), dry_run=False, reporter=Reporter(assume_yes=True))
        assert result.applied and {system, bcd} <= set(result.files)
        changed = _state(t, refs)
        assert changed[system.path] != before[system.path] and changed[bcd.path] != before[bcd.path]
        with Hive(t.local_copy(system, fresh=True)) as h:
            assert h.get_value(CC, "CrashDumpEnabled") == 5
        [m] = list_backups(t)
        assert (m.id, m.status, m.kind) == (result.backup_id, "applied", "apply")
        assert {e.file.path: e.sha256 for e in m.files if e.stored} == before
        assert t.layout.letter_of(t.backup_root().disk, t.backup_root().partition) == "C:"

        r = undo(t, dry_run=False, reporter=Reporter(assume_yes=True))
        assert r.applied and r.backup_id == result.backup_id
        assert _state(t, refs) == before
        assert [(b.kind, b.status) for b in list_backups(t)] == [("apply", "undone"), ("undo", "applied")]


# --- Gen2 SIGKILL chain ---------------------------------------------------------------------------
_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[3])
from test_safety_disk import _plan, _state, _touched
from rescue.cli.common import open_disks
from rescue.report import Reporter
from rescue.safety.apply import execute
from rescue.safety.undo import undo

def emit(**kw):
    print("@@ " + json.dumps(kw), flush=True)

image, originals, n = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[4])
with open_disks([image], write=True, quiet=True) as t:
    emit(pid=os.getpid(), qemu=t.session.g.get_pid())
    system, bcd, refs = _touched(t)
    emit(state=_state(t, refs))
    if originals:
        # What a user does after a crash: `rescue undo` (restores, or finds every file identical).
        leftover = t.exists(t.companion(system, ".rescue-new"))
        undo(t, dry_run=False, reporter=Reporter(assume_yes=True))
        emit(leftover_temp=leftover, after_undo=_state(t, refs),
             temp_after_undo=t.exists(t.companion(system, ".rescue-new")))
    execute(t, _plan(t, system, bcd, n), dry_run=False, reporter=Reporter(assume_yes=True))
    emit(finished=True)
"""


def _qemu_gone(pid: int, timeout: float = 20) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def test_gen2_sigkill_at_each_step_then_undo_restores_byte_for_byte(disk):
    from rescue.cli.common import open_disks
    from rescue.disk.session import reap_orphans
    from rescue.safety.backup import list_backups
    from rescue.safety.undo import undo

    image = disk("gen2-broken.vhd")
    originals: dict = {}
    for n, point in enumerate(POINTS, start=1):
        env = {**os.environ, "RESCUE_FAULT": point}
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(image), json.dumps(originals),
                               str(Path(__file__).parent), str(n)],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
        lines = [json.loads(x[3:]) for x in proc.stdout.splitlines() if x.startswith("@@ ")]
        info = {k: v for line in lines for k, v in line.items()}
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        assert "finished" not in info
        if not originals:
            originals = info["state"]
        else:
            # The previous kill left the old state, or undo brought it back, byte for byte.
            assert info["after_undo"] == originals, POINTS[n - 2]
            assert not info["temp_after_undo"]
        # No appliance left behind: libguestfs' recovery process or our reaper ends it.
        if not _qemu_gone(info["qemu"]):
            reap_orphans()
            assert _qemu_gone(info["qemu"], 5), f"qemu {info['qemu']} left running after the kill at {point}"

    with open_disks([str(image)], write=True, quiet=True) as t:
        system, bcd, refs = _touched(t)
        killed = _state(t, refs)
        assert killed[system.path] != originals[system.path]      # after-rename: new SYSTEM in place
        assert killed[bcd.path] == originals[bcd.path]            # ... and the BCD not reached yet
        r = undo(t, dry_run=False, reporter=Reporter(assume_yes=True))
        assert r.applied and system in r.restored
        assert _state(t, refs) == originals
        statuses = [(b.kind, b.status) for b in list_backups(t)]
    # Each killed run left its backup "in-progress" until the undo after it marked it undone.
    assert statuses[:4] == [("apply", "undone")] * 4 and statuses[-1] == ("undo", "applied")


# --- refusals -------------------------------------------------------------------------------------
def test_hibernated_and_bitlocker_volumes_are_refused_and_images_unchanged(disk):
    from rescue.cli.common import open_disks
    from rescue.safety.apply import execute
    from rescue.safety.plan import FileRef, Plan, SetValue, Step
    from rescue.hive.values import REG_DWORD, encode_dword

    images = [disk("hibernated.vhd"), disk("bitlocker.vhd")]
    before = [image_sha(p) for p in images]
    messages = []
    # Each disk a VM of its own: with both in one set, the hibernated C: (where the backup would go)
    # is refused first, whichever volume the plan edits.
    for image in images:
        with open_disks([str(image)], write=True, quiet=True) as t:
            vol = next(v for v in t.layout.volumes if v.disk == 0 and v.role in ("windows", "bitlocker"))
            ref = FileRef("\\Windows\\System32\\config\\SYSTEM", 0, vol.partition)
            plan = Plan("x", (Step("t", "t", (SetValue(ref, "Select", "RescueTest", REG_DWORD, encode_dword(1)),)),))
            with pytest.raises(UnsafeStateError) as info:
                execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True))
            messages.append(str(info.value))
    assert "hibernated" in messages[0] and "shut it down fully" in messages[0]
    assert "BitLocker" in messages[1] and "nothing was written" in messages[1]
    assert [image_sha(p) for p in images] == before


def test_read_only_image_is_refused_before_launch(disk):
    from rescue.cli.common import open_disks

    image = disk("gen2-broken.vhd")
    image.chmod(0o444)
    before = image_sha(image)
    with pytest.raises(UnsafeStateError, match="read-only"):
        with open_disks([str(image)], write=True, quiet=True):
            pass
    assert image_sha(image) == before


def test_image_in_use_is_refused_before_launch(disk):
    from rescue.cli.common import open_disks

    image = disk("gen2-broken.vhd")
    before = image_sha(image)
    holder = subprocess.Popen(["qemu-io", "-f", "vpc", str(image)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)                                 # qemu-io has the image open read-write, locked
        with pytest.raises(UnsafeStateError, match="in use"):
            with open_disks([str(image)], write=True, quiet=True):
                pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert image_sha(image) == before


def test_dirty_hive_logs_are_replayed_before_editing_and_undo_restores_everything(disk):
    from rescue.cli.common import open_disks
    from rescue.hive import Hive
    from rescue.hive.regf import read_header
    from rescue.hive.values import REG_DWORD, encode_dword
    from rescue.safety.apply import execute, safe_hive_copy
    from rescue.safety.hivecheck import assess
    from rescue.safety.plan import Plan, SetValue, Step
    from rescue.safety.undo import undo
    from rescue.samples.disks import real_system_b

    image = disk("dirty-hive.vhd")
    with open_disks([str(image)], write=True, quiet=True) as t:
        system, _, refs = _touched(t)
        logs = [r for r in refs if r.path.startswith(system.path + ".LOG")]
        before = _state(t, refs)
        assert read_header(t.local_copy(system)).dirty and any(t.size(r) > 0 for r in logs)
        state = assess(t, system)
        with Hive(safe_hive_copy(t, system)) as h:
            cur = h.get(CC, "NMICrashDump")
        plan = Plan("nmi", (Step("t", "nmi", (SetValue(system, CC, "NMICrashDump", REG_DWORD, encode_dword(1),
                                                       cur.type if cur else None, cur.data if cur else None),)),))
        if state.verdict == "refused":
            # Logs rescue cannot replay: refused, nothing written; the override edits as last written.
            with pytest.raises(UnsafeStateError, match="--discard-hive-logs"):
                execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True))
            assert _state(t, refs) == before
            result = execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True), discard_hive_logs=True)
        else:
            assert state.verdict == "replayed", state.summary
            result = execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True))
        assert result.applied
        edited = t.local_copy(system, fresh=True)
        header = read_header(edited)
        assert not header.dirty
        with Hive(edited) as h:
            assert h.get_value(CC, "NMICrashDump") == 1
            if real_system_b() is not None:
                # The sample holds the real SYSTEM_B: this service key exists only in its logs.
                assert h.get_value("ControlSet001\\Services\\ad_driver", "DisplayName") == "AccessData Driver"
        for r in logs:
            assert t.size(r) == 0                     # emptied: never replayed over our change
        undo(t, dry_run=False, reporter=Reporter(assume_yes=True))
        assert _state(t, refs) == before
