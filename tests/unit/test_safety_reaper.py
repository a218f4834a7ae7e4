"""The orphan-appliance reaper (rescue.disk.processes.reap_orphans) with real processes: an appliance
whose rescue process died is killed; a live owner's is not; a recorded pid now used by another
process (pids are reused) is never killed."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from rescue.disk import processes as S


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RESCUE_CACHE_DIR", str(tmp_path))
    d = tmp_path / "appliances"
    d.mkdir()
    return d


def fake_qemu() -> subprocess.Popen:
    """A process whose command line says qemu (argv[0]), as an appliance's does."""
    return subprocess.Popen(["bash", "-c", "exec -a qemu-system-x86_64-fake sleep 60"])


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def record(d, owner, qemu, **extra):
    (d / f"{owner}-{qemu}.json").write_text(json.dumps({"owner": owner, "qemu": qemu, "disks": [], **extra}))


def wait_dead(p: subprocess.Popen, timeout=5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.poll() is not None:
            return True
        time.sleep(0.05)
    return False


def test_the_appliance_of_a_dead_owner_is_killed_and_its_record_removed(runs):
    q = fake_qemu()
    time.sleep(0.2)
    try:
        record(runs, dead_pid(), q.pid, qemu_start=S.start_time(q.pid))
        assert S.reap_orphans() == 1
        assert wait_dead(q)
        assert not list(runs.glob("*.json"))
    finally:
        q.kill()


def test_a_live_owners_appliance_is_left_alone(runs):
    q = fake_qemu()
    time.sleep(0.2)
    try:
        record(runs, os.getpid(), q.pid, owner_start=S.start_time(os.getpid()), qemu_start=S.start_time(q.pid))
        assert S.reap_orphans() == 0
        assert q.poll() is None and list(runs.glob("*.json"))
    finally:
        q.kill()


def test_a_reused_qemu_pid_is_not_killed(runs):
    q = fake_qemu()
    time.sleep(0.2)
    try:
        record(runs, dead_pid(), q.pid, qemu_start=S.start_time(q.pid) - 1)   # another process's start
        assert S.reap_orphans() == 0
        assert q.poll() is None and not list(runs.glob("*.json"))
    finally:
        q.kill()


def test_a_reused_owner_pid_does_not_keep_the_orphan_alive(runs):
    q = fake_qemu()
    time.sleep(0.2)
    try:
        # The owner's pid is alive, but it is another process now (different start time).
        record(runs, os.getpid(), q.pid, owner_start=S.start_time(os.getpid()) - 1,
               qemu_start=S.start_time(q.pid))
        assert S.reap_orphans() == 1 and wait_dead(q)
    finally:
        q.kill()


# --- the in-use check reaps first ------------------------------------------------------------------
# Every writing command (fix, expand, fix --expand, reg/bcd writes) runs check_not_in_use before its
# launch; an orphan of a killed run holding the image's lock must not make it refuse.
@pytest.fixture
def vhd(tmp_path):
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(16 << 20)
    out = tmp_path / "disk.vhd"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", str(raw), str(out)], check=True)
    return out


def test_the_in_use_check_reaps_an_orphan_holding_the_lock_then_passes(runs, vhd):
    from orphans import orphan_holding
    from rescue.disk.formats import check_not_in_use, detect

    with orphan_holding(vhd) as holder:
        check_not_in_use(detect(str(vhd)))
        assert wait_dead(holder) and not list(runs.glob("*.json"))


def test_the_in_use_check_still_refuses_a_live_process_lock(runs, vhd):
    from orphans import orphan_holding
    from rescue.disk.formats import check_not_in_use, detect
    from rescue.errors import UnsafeStateError

    with orphan_holding(vhd, owner=os.getpid()) as holder:      # its rescue process is alive: not ours to kill
        with pytest.raises(UnsafeStateError, match="in use by another process"):
            check_not_in_use(detect(str(vhd)))
        assert holder.poll() is None
