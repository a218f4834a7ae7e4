"""Growing image files on the host (rescue.space.imagegrow): real images made by qemu-img, read back
by qemu (virtual size, data, zeros in the new space, writes past the old end, qemu-img check), and the
journal restoring a file byte for byte. No appliance."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess

import pytest

from rescue.disk.formats import detect
from rescue.errors import UnsafeStateError, WriteFailedError
from rescue.space import imagegrow as ig

MiB, GiB, TiB = 1 << 20, 1 << 30, 1 << 40
SRC = 64 * MiB

VARIANTS = [
    ("vpc", "subformat=dynamic"),
    ("vpc", "subformat=fixed"),
    ("vpc", "subformat=dynamic,force_size=on"),
    ("vhdx", "subformat=dynamic"),
    ("vhdx", "subformat=fixed"),
    ("qcow2", ""),
    ("raw", ""),
]


def _qemu(*args) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """64 MiB raw disk: an MBR signature and random data at a few places (the rest zeros)."""
    p = tmp_path_factory.mktemp("src") / "src.raw"
    rng = random.Random(5)
    with open(p, "wb") as fh:
        fh.truncate(SRC)
        for off in (0, MiB, 5 * MiB, 30 * MiB, SRC - MiB):
            fh.seek(off)
            fh.write(rng.randbytes(MiB if off == SRC - MiB else 300_000))
        fh.seek(510)
        fh.write(b"\x55\xaa")
    return str(p)


def _make(source: str, tmp_path, fmt: str, opts: str) -> str:
    img = str(tmp_path / f"disk.{fmt}")
    _qemu("qemu-img", "convert", "-f", "raw", "-O", fmt, *(["-o", opts] if opts else []), source, img)
    return img


def _guest_bytes(img: str, fmt: str, mib: int) -> bytes:
    out = img + ".out"
    _qemu("qemu-img", "dd", "-f", fmt, "-O", "raw", f"if={img}", f"of={out}", "bs=1M", f"count={mib}")
    data = open(out, "rb").read()
    os.unlink(out)
    return data


def _sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("fmt,opts", VARIANTS)
def test_grow_keeps_data_and_reads_zeros_after(source, tmp_path, fmt, opts):
    img = _make(source, tmp_path, fmt, opts)
    new = 96 * MiB
    ig.grow(detect(img), new)
    assert detect(img).virtual_size == new
    data = _guest_bytes(img, fmt, 96)
    assert data[:SRC] == open(source, "rb").read()
    assert not data[SRC:].strip(b"\0") and len(data) == new
    # qemu can allocate and write in the new space, and reads it back
    for off in (new - MiB, SRC):
        _qemu("qemu-io", "-f", fmt, "-c", f"write -P 0x5a {off} 1M", img)
        assert "Pattern verification failed" not in _qemu("qemu-io", "-f", fmt, "-c", f"read -P 0x5a {off} 1M", img).stdout
    assert ig.qemu_check(img, fmt) is None


@pytest.mark.parametrize("fmt,opts,new", [
    ("vpc", "subformat=dynamic", 2040 * GiB),      # the VHD maximum: the block table outgrows its
    ("vhdx", "subformat=dynamic", 5 * TiB),        # room / region, blocks or the BAT are moved
    ("vhdx", "subformat=dynamic,block_size=1048576", 200 * GiB),
])
def test_grow_moves_what_is_in_the_way_of_a_larger_block_table(source, tmp_path, fmt, opts, new):
    img = _make(source, tmp_path, fmt, opts)
    ig.grow(detect(img), new)
    assert detect(img).virtual_size == new
    assert _guest_bytes(img, fmt, 64) == open(source, "rb").read()
    assert os.path.getsize(img) < 64 * MiB                     # metadata only, nothing proportional
    _qemu("qemu-io", "-f", fmt, "-c", f"write -P 0x33 {new - MiB} 1M", img)
    assert "Pattern verification failed" not in _qemu("qemu-io", "-f", fmt, "-c", f"read -P 0x33 {new - MiB} 1M", img).stdout
    assert ig.qemu_check(img, fmt) is None


@pytest.mark.parametrize("fmt,opts", [v for v in VARIANTS if v[0] in ("vpc", "vhdx")])
def test_journal_restores_byte_identical(source, tmp_path, fmt, opts):
    img = _make(source, tmp_path, fmt, opts)
    before = _sha(img)
    j = ig.Journal.start(img)
    new = 200 * MiB if "fixed" in opts else 3 * GiB        # dynamic: the block table must grow too
    (ig.grow_vhd if fmt == "vpc" else ig.grow_vhdx)(img, new, j)
    assert _sha(img) != before
    j.restore()
    assert _sha(img) == before


def test_failure_after_writing_restores_the_file(source, tmp_path, monkeypatch):
    """A read-back that does not match (simulated) makes grow() restore the file and say so."""
    img = _make(source, tmp_path, "vpc", "subformat=dynamic")
    before = _sha(img)
    monkeypatch.setattr(ig, "qemu_virtual_size", lambda path, fmt: 1)
    with pytest.raises(WriteFailedError, match="did not read back"):
        ig.grow(detect(img), 3 * GiB)
    assert _sha(img) == before


def test_vhdx_with_a_pending_log_is_refused_untouched(source, tmp_path):
    img = _make(source, tmp_path, "vhdx", "subformat=dynamic")
    with open(img, "r+b") as fh:              # give both headers a log GUID (checksums fixed up)
        for off in ig.HEADERS:
            fh.seek(off)
            h = bytearray(fh.read(4096))
            h[48:64] = b"\x11" * 16
            fh.seek(off)
            fh.write(ig._with_crc(bytes(h)))
    before = _sha(img)
    with pytest.raises(UnsafeStateError, match="log"):
        ig.grow_vhdx(img, 3 * GiB, ig.Journal.start(img))
    assert _sha(img) == before


@pytest.mark.parametrize("size", [64 * MiB, 3 * GiB, 30 * GiB, 127 * GiB, 200 * GiB])
def test_vhd_geometry_matches_qemu(tmp_path, size):
    """The spec's CHS algorithm, as qemu-img (which implements the same appendix) writes it."""
    img = str(tmp_path / "g.vhd")
    _qemu("qemu-img", "create", "-q", "-f", "vpc", img, str(size))
    with open(img, "rb") as fh:
        footer = fh.read(512)
    c, h, s = int.from_bytes(footer[56:58], "big"), footer[58], footer[59]
    assert ig.vhd_geometry(c * h * s * 512) == (c, h, s)


def test_crc32c_known_value():
    assert ig.crc32c(b"123456789") == 0xE3069283     # the standard CRC-32C check value


def test_ctrl_c_during_the_commit_keeps_the_overlay_and_says_how_to_finish(tmp_path, monkeypatch):
    """Ctrl-C in `qemu-img commit` leaves the image partly written: the overlay is the only full
    copy, so it stays, and the message gives the command that finishes the job (exit code 130)."""
    from rescue.errors import ExitCode, InterruptedWriteError
    from rescue.space import overlay, staging

    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(SRC)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    image = detect(str(raw))

    def interrupted(*_args):
        raise KeyboardInterrupt
    monkeypatch.setattr(overlay, "commit", interrupted)
    with pytest.raises(InterruptedWriteError) as info:
        with staging.staged(image, 2 * SRC, dry_run=False) as st:
            st.commit()
    err = info.value
    assert err.exit_code == ExitCode.INTERRUPTED and "may hold only part of them" in err.message
    assert st.overlay.exists() and f"qemu-img commit -f qcow2 {st.overlay}" in err.hint
