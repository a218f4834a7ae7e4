"""The appliance launch: KVM→TCG fallback remembered, a bounded launch, no qemu left behind."""

import os
import time

import pytest

from rescue.disk import accel
from rescue.disk.formats import detect
from rescue.disk.processes import descendant_qemu_pids
from rescue.disk.session import DiskSession
from rescue.errors import ApplianceError

pytestmark = pytest.mark.appliance


@pytest.fixture
def tiny_disk(tmp_path):
    p = tmp_path / "tiny.raw"
    with open(p, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    return detect(str(p))


@pytest.mark.skipif(not accel.kvm_usable(), reason="no usable /dev/kvm: auto goes straight to TCG")
def test_auto_falls_back_to_tcg_once_and_remembers(tiny_disk, tmp_path, monkeypatch):
    """On this CI host nested KVM cannot run the appliance; `auto` must still work, say so once,
    and not try KVM again next time. (On a host where KVM works, it must simply use KVM.)"""
    monkeypatch.setenv("RESCUE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LIBGUESTFS_BACKEND_SETTINGS", raising=False)
    monkeypatch.setenv("RESCUE_KVM_TIMEOUT", "60")
    messages = []
    with DiskSession([tiny_disk], accel="auto", notify=messages.append) as s:
        first = s.accel_used
        assert s.disks()[0].table is None
    if first == "kvm":
        assert messages == [] and accel.remembered() == "kvm"
        return
    assert first == "tcg"
    assert len(messages) == 1 and "retrying with TCG" in messages[0]
    assert accel.remembered() == "tcg"
    messages.clear()
    with DiskSession([tiny_disk], accel="auto", notify=messages.append) as s:
        assert s.accel_used == "tcg"
    assert messages == []  # said once, not on every run
    assert descendant_qemu_pids(os.getpid()) == []


def test_launch_that_does_not_finish_is_killed(tiny_disk, monkeypatch):
    """A launch slower than the bound is stopped, reported in one sentence, and leaves no qemu."""
    monkeypatch.setenv("RESCUE_LAUNCH_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(ApplianceError, match="did not start within 2 s"):
        DiskSession([tiny_disk], accel="tcg").launch()
    assert time.monotonic() - started < 60
    assert descendant_qemu_pids(os.getpid()) == []


def test_launch_that_stops_printing_is_killed_as_hung(tiny_disk):
    """The KVM try of `auto` is cut short by silence, not by total time: the appliance kernel's
    silent boot (~5 s under TCG) outlasts a 1 s stall limit, so the watchdog kills qemu while a
    60 s overall bound is far away. (Hung nested KVM is exactly such a silence, forever.)"""
    s = DiskSession([tiny_disk], accel="tcg")
    g = s._new_handle("tcg")
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            s._launch_with_timeout(g, 60, stall=1)
    finally:
        s._close_handle(g)
    assert time.monotonic() - started < 30
    assert descendant_qemu_pids(os.getpid()) == []


def test_a_hung_call_after_the_launch_is_stopped(tiny_disk, monkeypatch):
    """Every call after the launch is bounded too (RESCUE_CALL_TIMEOUT): a call that does not
    return (here the appliance's own `sleep`) gets qemu killed and ends as ApplianceError, one
    sentence, within seconds of the bound; the session still closes and leaves no qemu."""
    monkeypatch.setenv("RESCUE_CALL_TIMEOUT", "3")
    with DiskSession([tiny_disk], accel="tcg") as s:
        assert s.disks()[0].table is None              # ordinary calls are not disturbed
        started = time.monotonic()
        with pytest.raises(ApplianceError, match=r"stopped responding: `sleep` ran for more than 3 s"):
            s.g.sleep(600)
        assert time.monotonic() - started < 30
        with pytest.raises(ApplianceError):            # the appliance is gone: later calls say so too
            s.g.ls("/")
    assert descendant_qemu_pids(os.getpid()) == []
