"""NTFS metadata reader (rescue.space.ntfs) against real NTFS volumes made on the host by mkntfs and
filled with ntfscp, cross-checked with ntfsinfo; runlists and $Bitmap statistics against brute force."""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess

import pytest

from rescue.space import ntfs

def _tool(name: str) -> str:
    """An ntfs-3g tool (package ntfs-3g, in the Makefile's apt list); some live in /sbin only."""
    path = shutil.which(name) or shutil.which(name, path="/sbin:/usr/sbin")
    assert path, f"{name} is missing: install ntfs-3g (`make setup` does)"
    return path


@pytest.fixture
def volume(tmp_path):
    img = tmp_path / "ntfs.img"
    with open(img, "wb") as fh:
        fh.truncate(32 << 20)
    subprocess.run([_tool("mkntfs"), "-F", "-Q", "-q", str(img)], check=True, capture_output=True)
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(1).randbytes(300_000))
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    for src, dst in ((big, "big.bin"), (small, "small.bin")):
        subprocess.run([_tool("ntfscp"), "-q", str(img), str(src), dst], check=True, capture_output=True)
    return img


def _reader(img):
    data = img.read_bytes()
    return lambda off, n: data[off:off + n]


def _ntfsinfo(img, *args) -> str:
    return subprocess.run([_tool("ntfsinfo"), *args, str(img)], capture_output=True, text=True).stdout


def test_boot_sector_and_clean_volume(volume):
    v = ntfs.Volume(_reader(volume))
    info = _ntfsinfo(volume, "-m")
    assert v.boot.cluster_size == int(re.search(r"Cluster Size: (\d+)", info).group(1))
    assert v.boot.total_clusters == int(re.search(r"Volume Size in Clusters: (\d+)", info).group(1))
    assert v.boot.record_size == int(re.search(r"MFT Record Size: (\d+)", info).group(1))
    assert v.volume_flags() == int(re.search(r"Volume Flags: (0x[0-9a-f]+)", info).group(1), 16)
    assert not v.is_dirty()


def test_dirty_flag_is_seen(volume):
    """Set VOLUME_IS_DIRTY in $Volume's $VOLUME_INFORMATION on disk (respecting the update sequence
    array) and read it back; ntfsinfo agrees."""
    v = ntfs.Volume(_reader(volume))
    rec = v.record(ntfs.MFT_RECORD_VOLUME)
    pos = struct.unpack_from("<H", rec, 0x14)[0]
    while True:
        atype, alen = struct.unpack_from("<II", rec, pos)
        if atype == ntfs.AT_VOLUME_INFORMATION:
            break
        pos += alen
    voff = struct.unpack_from("<H", rec, pos + 0x14)[0]
    flags_at = pos + voff + 10
    assert flags_at % 512 < 510            # not a fixed-up position
    with open(volume, "r+b") as fh:
        for lcn in (v.boot.mft_lcn, v.boot.mftmirr_lcn):    # $MFTMirr must keep matching records 0-3
            fh.seek(lcn * v.boot.cluster_size + 3 * v.boot.record_size + flags_at)
            fh.write(struct.pack("<H", ntfs.VOLUME_IS_DIRTY))
    assert ntfs.Volume(_reader(volume)).is_dirty()
    assert "Volume Flags: 0x0001" in _ntfsinfo(volume, "-f", "-m")   # ntfsinfo needs -f on a dirty volume


def test_file_runs_match_ntfsinfo(volume):
    v = ntfs.Volume(_reader(volume))
    dump = _ntfsinfo(volume, "-F", "/big.bin", "-v")
    inode = int(re.search(r"Dumping Inode (\d+)", dump).group(1))
    runs = v.data_runs(inode)
    m = re.findall(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*$", dump, re.M)
    assert [(int(lcn, 16), int(ln, 16)) for _, lcn, ln in m] == runs
    assert ntfs.fragments(runs) == int(re.search(r"fragments: (\d+)", dump).group(1))
    # a 100-byte file lives inside its MFT record: no runs, 0 fragments
    small = int(re.search(r"Dumping Inode (\d+)", _ntfsinfo(volume, "-F", "/small.bin")).group(1))
    assert v.data_runs(small) is None and ntfs.fragments(None) == 0
    # $MFT itself
    assert ntfs.fragments(v.data_runs(ntfs.MFT_RECORD_MFT)) >= 1


def test_bitmap_matches_ntfsinfo_free_clusters(volume):
    v = ntfs.Volume(_reader(volume))
    fs = ntfs.bitmap_free_space(v.bitmap(), v.boot.total_clusters)
    info = _ntfsinfo(volume, "-m")
    assert fs.free_clusters == int(re.search(r"Free Clusters: (\d+)", info).group(1))
    assert 1 <= fs.free_extents and fs.largest_free_extent <= fs.free_clusters


def test_runlist_decoding_and_fragments():
    # 0x21: 1-byte length, 2-byte offset. Runs: 16 @ 0x1000, 8 @ +0x10 (=0x1010, contiguous with the
    # first), sparse 4, 2 @ -0x800 (0x810), then end.
    data = bytes([0x21, 16, 0x00, 0x10, 0x21, 8, 0x10, 0x00, 0x01, 4, 0x21, 2, 0x00, 0xF8, 0x00])
    runs = ntfs.decode_runlist(data, 0)
    assert runs == [(0x1000, 16), (0x1010, 8), (None, 4), (0x810, 2)]
    assert ntfs.fragments(runs) == 2          # the first two runs are one extent; sparse runs skipped


def _brute(bm: bytes, total: int):
    bits = [(bm[i // 8] >> (i % 8)) & 1 for i in range(total)]
    free = bits.count(0)
    extents = sum(1 for i, b in enumerate(bits) if b == 0 and (i == 0 or bits[i - 1] == 1))
    largest = run = 0
    for b in bits:
        run = run + 1 if b == 0 else 0
        largest = max(largest, run)
    return free, extents, largest


def test_bitmap_statistics_against_brute_force():
    rng = random.Random(7)
    for _ in range(2000):
        total = rng.randint(1, 400)
        n = (total + 7) // 8
        bm = bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range(n))
        fs = ntfs.bitmap_free_space(bm, total)
        assert (fs.free_clusters, fs.free_extents, fs.largest_free_extent) == _brute(bm, total)


def test_bitmap_bits_past_the_volume_are_ignored():
    fs = ntfs.bitmap_free_space(b"\x00\x00", 12)      # 12 clusters, all free; 4 padding bits
    assert (fs.free_clusters, fs.free_extents, fs.largest_free_extent) == (12, 1, 12)
    assert fs.largest_percent == 100.0


def test_not_ntfs_is_a_clear_error():
    with pytest.raises(ntfs.NtfsFormatError):
        ntfs.Volume(lambda off, n: bytes(n))


def test_file_attributes_in_bulk_match_ntfsinfo(volume):
    v = ntfs.Volume(_reader(volume))
    want = {}
    for name in ("/big.bin", "/small.bin"):
        dump = _ntfsinfo(volume, "-F", name)
        inode = int(re.search(r"Dumping Inode (\d+)", dump).group(1))
        want[inode] = int(re.search(r"File attributes:.*\((0x[0-9a-f]+)\)", dump).group(1), 16)
    assert v.file_attributes(want) == want
    assert len(v.records(range(0, 16))) == 16       # the system files: one read
