"""Image format detection on real image files made with qemu-img (no appliance)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.disk.formats import detect
from rescue.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from image_helpers import set_vhd_current_size  # noqa: E402


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def mbr_raw(tmp_path):
    p = tmp_path / "disk.raw"
    with open(p, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
        fh.seek(510)
        fh.write(b"\x55\xaa")
    return p


@pytest.mark.parametrize("fmt,opts,label", [
    ("vpc", ["-o", "subformat=dynamic"], "VHD (dynamic)"),
    ("vpc", ["-o", "subformat=fixed,force_size=on"], "VHD (fixed)"),
    ("vhdx", [], "VHDX"),
    ("qcow2", [], "qcow2"),
    ("vmdk", [], "VMDK"),
])
def test_detects_each_format(tmp_path, mbr_raw, fmt, opts, label):
    out = tmp_path / f"disk.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", fmt, *opts, str(mbr_raw), str(out))
    img = detect(str(out))
    assert img.format == fmt
    assert img.format_label == label
    assert img.virtual_size >= 64 * 1024 * 1024


def test_vhd_size_is_what_qemu_shows_the_guest(tmp_path, mbr_raw):
    """The appliance is never asked for a disk's size: detect() must give the guest's view. For a
    VHD whose creator is Virtual PC or older qemu, qemu sizes it by CHS geometry, not by the
    footer's current_size (here rewritten to disagree)."""
    import json

    out = tmp_path / "chs.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(mbr_raw), str(out))
    set_vhd_current_size(out, 60 << 20)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(out)], check=True,
                                     capture_output=True, text=True).stdout)
    assert detect(str(out)).virtual_size == info["virtual-size"] != 60 << 20


def test_appliance_device_names_follow_the_order_disks_were_added(mbr_raw):
    from rescue.disk.session import DiskSession

    img = detect(str(mbr_raw))
    s = DiskSession([img] * 28)                  # not launched: names need no appliance
    assert [s.disks_device(i) for i in (0, 1, 25, 26, 27)] == \
        ["/dev/sda", "/dev/sdb", "/dev/sdz", "/dev/sdaa", "/dev/sdab"]
    with pytest.raises(IndexError):
        s.disks_device(28)


def test_raw_with_partition_table(mbr_raw):
    img = detect(str(mbr_raw))
    assert (img.format, img.virtual_size, img.is_block_device) == ("raw", 64 * 1024 * 1024, False)


def test_blank_raw_is_a_disk(tmp_path):
    p = tmp_path / "blank.img"
    p.write_bytes(b"\0" * 1024 * 1024)
    assert detect(str(p)).format == "raw"


def test_truncated_dynamic_vhd(tmp_path, mbr_raw):
    # Put data in the disk so the VHD has allocated blocks, then cut the file short.
    with open(mbr_raw, "r+b") as fh:
        fh.seek(8 * 1024 * 1024)
        fh.write(os.urandom(4 * 1024 * 1024))
    vhd = tmp_path / "disk.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", str(mbr_raw), str(vhd))
    size = vhd.stat().st_size
    with open(vhd, "r+b") as fh:
        fh.truncate(size - 3 * 1024 * 1024)
    with pytest.raises(InputError, match="truncated dynamic VHD"):
        detect(str(vhd))


def test_truncated_fixed_vhd(tmp_path, mbr_raw):
    vhd = tmp_path / "fixed.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", str(mbr_raw), str(vhd))
    data = vhd.read_bytes()
    # Keep the footer but drop data in front of it: size no longer matches the footer.
    vhd.write_bytes(data[: len(data) // 2] + data[-512:])
    with pytest.raises(InputError, match="truncated"):
        detect(str(vhd))


@pytest.mark.parametrize("content,match", [
    (b"hello, this is a text file\n", "not a disk image"),
    (b"%PDF-1.7" + b"x" * 1016, "not a disk image"),
    (b"", "empty"),
])
def test_not_a_disk(tmp_path, content, match):
    p = tmp_path / "file.bin"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        detect(str(p))


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        detect(str(tmp_path / "nope.vhd"))
    with pytest.raises(InputError, match="directory"):
        detect(str(tmp_path))


def test_forced_format_mismatch_and_unknown(tmp_path, mbr_raw):
    q = tmp_path / "d.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(mbr_raw), str(q))
    with pytest.raises(InputError, match="looks like qcow2, not vpc"):
        detect(str(q), "vhd")
    with pytest.raises(InputError, match="Unknown --format"):
        detect(str(q), "iso")
    assert detect(str(q), "qcow2").format == "qcow2"
