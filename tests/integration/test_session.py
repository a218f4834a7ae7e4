"""The appliance launch: KVM→TCG fallback remembered, a bounded launch, no qemu left behind."""

import os
import time

import pytest

from rescue.disk import accel, filesystem, walk
from rescue.disk.appliance import Appliance
from rescue.disk.builder import DiskBuilder
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
    appliance = Appliance([tiny_disk], accel="tcg")
    g = appliance.new_handle("tcg")
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            appliance.launch_with_timeout(g, 60, stall=1)
    finally:
        appliance.close_handle(g)
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


def test_cheap_file_calls_match_the_streaming_ones_on_real_ntfs(tmp_path):
    """The file methods use pread/write chunks, host-side hashing and an ls walk instead of
    download/upload/checksum/find0 (much cheaper under TCG). On a real NTFS volume they must give
    exactly what the streaming calls give: at chunk boundaries (0 bytes, exactly 2 MiB, 2 MiB + 1),
    past the host-hashing bound (9 MiB), for a folder hashed either way, and for a tree small
    enough to walk and one big enough to go to find0. One launch."""
    import hashlib
    import random

    raw = tmp_path / "scratch.raw"
    with open(raw, "wb") as fh:
        fh.truncate(96 << 20)
    rng = random.Random(7)
    chunk = filesystem.CHUNK
    sizes = {"empty": 0, "one-chunk": chunk, "chunk-plus-one": chunk + 1, "big": 9 << 20, "small": 45056}
    blobs = {name: rng.randbytes(size) for name, size in sizes.items()}
    with DiskSession([detect(str(raw))], write=True, accel="tcg") as s:
        build = DiskBuilder(s)
        build.init_table(0, "mbr")
        build.add_partition(0, 2048, (96 << 11) - 1)
        build.mkfs(0, 1, "ntfs")
        mp = s.mount(s.partition(0, 1), write=True)
        s.makedirs(f"{mp}/files")
        for name, data in blobs.items():
            if name == "chunk-plus-one":
                host = tmp_path / name
                host.write_bytes(data)
                s.upload(host, f"{mp}/files/{name}")              # from a host file
            else:
                s.write_file(f"{mp}/files/{name}", data)          # from memory
        s.sync()
        g = s.g
        for name, data in blobs.items():
            path = f"{mp}/files/{name}"
            assert s.read_file(path) == data, name
            s.download(path, tmp_path / f"got-{name}")
            assert (tmp_path / f"got-{name}").read_bytes() == data, name
            assert s.sha256(path) == g.checksum("sha256", path) == hashlib.sha256(data).hexdigest(), name
        # Folder hashes: the big file sends it to checksums_out, a folder of small files is hashed here.
        want = {n: hashlib.sha256(d).hexdigest() for n, d in blobs.items()}
        assert s.sha256_folder(f"{mp}/files") == want
        s.makedirs(f"{mp}/small")
        for n in ("a", "b"):
            s.write_file(f"{mp}/small/{n}", n.encode())
        assert s.sha256_folder(f"{mp}/small") == {n: hashlib.sha256(n.encode()).hexdigest() for n in "ab"}
        # Trees: 3 folders (walked) and 20 folders (find0), with a file in each and a link.
        for top, n in (("few", 3), ("many", 20)):
            for i in range(n):
                s.makedirs(f"{mp}/{top}/d{i}/sub")
                s.write_file(f"{mp}/{top}/d{i}/sub/f", b"x" * i)
            g.ln_s("/etc", f"{mp}/{top}/link")

            def key(entries):
                return sorted((e.path, e.kind, e.size) for e in entries)
            tree, cut = s.lstat_tree(f"{mp}/{top}")
            ref, ref_cut = walk._lstat_tree_find0(g, f"{mp}/{top}", None)
            assert not cut and not ref_cut and key(tree) == key(ref) and len(tree) == 3 * n + 1
            assert [e.kind for e in tree if e.path.endswith("/link")] == ["link"]      # never followed
            top_only, _ = s.lstat_tree(f"{mp}/{top}", recursive=False)
            assert key(top_only) == key(e for e in ref if e.path.count("/") == f"{mp}/{top}".count("/") + 1)
            limited, cut = s.lstat_tree(f"{mp}/{top}", limit=5)
            assert cut and len(limited) == 5
