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


# --- a block device this host is using ------------------------------------------------------------------
@pytest.fixture
def loop_disk(tmp_path):
    """A real partitioned block device: a loop device over a 40 MiB file, one ext4 partition (a
    filesystem every Linux kernel mounts; NTFS through ntfs-3g would claim it the same way)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("needs root and losetup to make a loop device (CI runs as root)")
    img = tmp_path / "disk.img"
    img.write_bytes(b"")
    os.truncate(img, 40 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", "-P", str(img)], capture_output=True, text=True,
                         check=True).stdout.strip()
    mnt = tmp_path / "mnt point"                  # a space: mountinfo escapes it as \040
    try:
        subprocess.run(["sfdisk", "-q", dev], input=",,L\n", text=True, check=True, capture_output=True)
        subprocess.run(["partx", "-u", dev], capture_output=True)
        subprocess.run(["mkfs.ext4", "-q", f"{dev}p1"], check=True, capture_output=True)
        mnt.mkdir()
        yield dev, mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def test_a_block_device_with_a_mounted_partition_is_refused_for_writing(loop_disk):
    import subprocess

    from rescue.disk.formats import check_not_in_use, detect, host_mounts
    from rescue.errors import UnsafeStateError

    dev, mnt = loop_disk
    image = detect(dev)
    assert image.is_block_device
    check_not_in_use(image)                       # nothing mounted: free to write
    subprocess.run(["mount", f"{dev}p1", str(mnt)], check=True)
    assert host_mounts(dev) == [(f"{dev}p1", str(mnt))]
    with pytest.raises(UnsafeStateError) as info:
        check_not_in_use(image)
    text = str(info.value)
    assert f"{dev} is in use on this host ({dev}p1 on {mnt})" in text and f"umount {mnt}" in text
    assert "nothing was written" in text and info.value.exit_code == 5
    subprocess.run(["umount", str(mnt)], check=True)
    check_not_in_use(image)                       # unmounted: free again


def test_an_image_another_process_writes_is_refused_and_a_reader_is_not(tmp_path):
    """A running VM's qemu on a raw image holds it open read-write; qemu's locks let `qemu-img info`
    through, so the check looks at who has the file open for writing (/proc). A reader is fine."""
    from rescue.disk.formats import check_not_in_use, detect
    from rescue.errors import UnsafeStateError

    img = tmp_path / "os.img"
    img.write_bytes(bytes(1 << 20))
    image = detect(str(img))
    hold = "import sys, time; f = open(sys.argv[1], sys.argv[2]); print('open', flush=True); time.sleep(60)"
    reader = subprocess.Popen([sys.executable, "-c", hold, str(img), "rb"], stdout=subprocess.PIPE, text=True)
    try:
        reader.stdout.readline()
        check_not_in_use(image)                   # a reader (diagnose elsewhere, a backup copy): fine
        writer = subprocess.Popen([sys.executable, "-c", hold, str(img), "r+b"], stdout=subprocess.PIPE, text=True)
        try:
            writer.stdout.readline()
            with pytest.raises(UnsafeStateError) as info:
                check_not_in_use(image)
            assert "is open for writing by python" in str(info.value) and f"(pid {writer.pid})" in str(info.value)
            assert "nothing was written" in str(info.value) and info.value.exit_code == 5
        finally:
            writer.kill()
            writer.wait()
        check_not_in_use(image)                   # the writer is gone: free again
    finally:
        reader.kill()
        reader.wait()
