"""expand's host-side rules (sizes, limits refused before anything is done), the partition-table
identity check, and the plan's wording. No appliance."""

from __future__ import annotations

import struct
import uuid

import pytest

from rescue.disk.formats import DiskImage
from rescue.errors import UsageError
from rescue.space import expand as ex

MiB, GiB, TiB = 1 << 20, 1 << 30, 1 << 40


def _img(fmt="raw", size=2 * GiB, block=False, sub=""):
    return DiskImage(path="/x/os.img", format=fmt, virtual_size=size, is_block_device=block, subformat=sub)


@pytest.mark.parametrize("text,value", [("1T", TiB), ("127G", 127 * GiB), ("20GiB", 20 * GiB), ("512m", 512 * MiB),
                                        ("1.5G", 3 * GiB // 2), ("4096", 4096), ("2 TB", 2 * TiB)])
def test_parse_size(text, value):
    assert ex.parse_size(text) == value


def test_parse_size_rejects_garbage():
    with pytest.raises(UsageError, match="is not a size"):
        ex.parse_size("lots")


def test_target_size_rounds_up_to_whole_mib_and_adds():
    assert ex.target_size(2 * GiB, size="3G", add=None) == 3 * GiB
    assert ex.target_size(2 * GiB, size=None, add="20G") == 22 * GiB
    assert ex.target_size(2 * GiB, size="3000000000", add=None) == 2862 * MiB   # 2861.02 MiB up
    assert ex.target_size(2 * GiB, size=None, add=None) == 2 * GiB
    with pytest.raises(UsageError, match="either --size or --add"):
        ex.target_size(2 * GiB, size="3G", add="1G")


def test_limits_refused_on_the_host():
    with pytest.raises(UsageError, match="never shrinks"):
        ex.host_checks(_img(size=4 * GiB), 3 * GiB, allow_large=False)
    with pytest.raises(UsageError, match="article's 1 TB"):
        ex.host_checks(_img(), 2 * TiB, allow_large=False)
    ex.host_checks(_img(), TiB, allow_large=False)                    # exactly 1 TiB is fine
    with pytest.raises(UsageError, match="cannot be larger than 2040 GiB"):
        ex.host_checks(_img("vpc", sub="dynamic"), 2041 * GiB, allow_large=True)
    ex.host_checks(_img("vpc", sub="dynamic"), 2040 * GiB, allow_large=True)
    ex.host_checks(_img("vhdx"), 4 * TiB, allow_large=True)
    with pytest.raises(UsageError, match="az disk update .* --size-gb 64"):
        ex.host_checks(_img(block=True, size=32 * GiB), 64 * GiB, allow_large=False)
    ex.host_checks(_img(block=True, size=32 * GiB), 32 * GiB, allow_large=False)   # fill existing space


def _gpt_disk(entries):
    """First 34 sectors of a GPT disk with the given (start, end, type GUID) entries."""
    head = bytearray(34 * 512)
    head[510:512] = b"\x55\xaa"
    hdr = bytearray(92)
    hdr[:8] = b"EFI PART"
    struct.pack_into("<QQQQ", hdr, 24, 1, 2 * 1024 * 2048 - 1, 34, 2 * 1024 * 2048 - 34)
    hdr[56:72] = uuid.uuid4().bytes_le
    struct.pack_into("<QII", hdr, 72, 2, 128, 128)
    head[512:512 + 92] = hdr
    for i, (start, end, t) in enumerate(entries):
        e = 1024 + 128 * i
        head[e:e + 16] = uuid.UUID(t).bytes_le
        head[e + 16:e + 32] = uuid.uuid4().bytes_le
        struct.pack_into("<QQQ", head, e + 32, start, end, 0x8000000000000001 if i == 0 else 0)
        head[e + 56:e + 56 + 8] = "Basic".encode("utf-16-le")
    return bytes(head)


def test_table_identity_sees_only_what_must_not_change():
    data = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    head = _gpt_disk([(2048, 206847, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), (206848, 409599, data)])
    before = ex.table_identity(head, "gpt", 2)
    grown = bytearray(head)
    struct.pack_into("<Q", grown, 1024 + 128 + 40, 4000000)          # partition 2's end moves
    assert ex.table_identity(bytes(grown), "gpt", 2) == before
    other = bytearray(grown)
    struct.pack_into("<Q", other, 1024 + 48, 0)                       # partition 1's attributes lost
    assert ex.table_identity(bytes(other), "gpt", 2) != before
    start = bytearray(grown)
    struct.pack_into("<Q", start, 1024 + 128 + 32, 206849)            # partition 2's start moved
    assert ex.table_identity(bytes(start), "gpt", 2) != before


def test_table_identity_mbr():
    s = bytearray(512)
    s[440:444] = b"\x12\x34\x56\x78"
    s[510:512] = b"\x55\xaa"
    for i, (boot, typ, start, size) in enumerate([(0x80, 7, 2048, 1024000), (0, 7, 1026048, 2000000)]):
        e = 446 + 16 * i
        s[e], s[e + 4] = boot, typ
        struct.pack_into("<II", s, e + 8, start, size)
    before = ex.table_identity(bytes(s), "mbr", 2)
    g = bytearray(s)
    struct.pack_into("<I", g, 446 + 16 + 12, 5000000)                # size of partition 2
    g[446 + 16 + 5:446 + 16 + 8] = b"\xfe\xff\xff"                   # its CHS end
    assert ex.table_identity(bytes(g), "mbr", 2) == before
    sig = bytearray(g)
    sig[440] = 0
    assert ex.table_identity(bytes(sig), "mbr", 2) != before        # disk signature: BCD + letters
    boot = bytearray(g)
    boot[446] = 0
    assert ex.table_identity(bytes(boot), "mbr", 2) != before       # active flag of partition 1


def test_plan_steps_say_what_happens_and_what_cannot_be_undone():
    p = ex.ExpandPlan(disk="os.vhd", format_label="VHD (dynamic)", old_disk_size=2 * GiB, new_disk_size=4 * GiB,
                      table="gpt", partition=3, letter="C:", part_start=117 * MiB, old_part_size=1930 * MiB,
                      new_part_size=3978 * MiB, fs_size=None, fs_free=None)
    steps = " | ".join(p.steps())
    assert "not undoable" in steps and "GPT backup header" in steps and "ntfsresize" in steps
    assert p.grows_image and not p.nothing_to_do
    assert p.to_json()["new_partition_size"] == 3978 * MiB
    same = ex.ExpandPlan(disk="os.raw", format_label="raw", old_disk_size=2 * GiB, new_disk_size=2 * GiB,
                         table="mbr", partition=2, letter="C:", part_start=MiB, old_part_size=2047 * MiB,
                         new_part_size=2047 * MiB, fs_size=None, fs_free=None)
    assert same.nothing_to_do and "GPT" not in " ".join(same.steps())


def test_mbr_resize_changes_only_the_entry_size_and_chs_end():
    s = bytearray(512)
    s[:446] = bytes(range(256)) + bytes(190)            # boot code that must survive
    s[440:444] = b"\x12\x34\x56\x78"
    s[510:512] = b"\x55\xaa"
    for i, (boot, typ, start, size) in enumerate([(0x80, 7, 2048, 204800), (0, 7, 206848, 524288)]):
        e = 446 + 16 * i
        s[e], s[e + 4] = boot, typ
        struct.pack_into("<II", s, e + 8, start, size)
    new = ex.mbr_resized(bytes(s), 2, 2 * GiB // 512 - 1)
    assert struct.unpack_from("<II", new, 446 + 16 + 8) == (206848, 2 * GiB // 512 - 206848)
    assert new[:446] == bytes(s[:446]) and new[446:462] == bytes(s[446:462]) and new[510:] == b"\x55\xaa"
    assert ex.table_identity(new, "mbr", 2) == ex.table_identity(bytes(s), "mbr", 2)
    # LBA 4194303 = cylinder 261, head 21, sector 16: bytes head, sector | (cyl >> 2 & 0xC0), cyl & 0xFF
    assert new[446 + 16 + 5:446 + 16 + 8] == bytes([21, 16 | 0x40, 261 & 0xFF])
    assert ex.mbr_resized(bytes(s), 2, 20 * GiB // 512)[446 + 16 + 5:446 + 16 + 8] == b"\xfe\xff\xff"


# --- `fix no-memory --expand`: limits are checked on the host, before any launch or write ----------
@pytest.mark.parametrize("size,needle", [
    ("128M", "only grows disks"),          # smaller than the disk
    ("2T", "more than the article's 1 TB"),
    ("lots", "is not a size"),
])
def test_fix_expand_refused_on_the_host_before_any_launch(tmp_path, monkeypatch, capsys, size, needle):
    import hashlib

    from rescue.cli.main import run
    from rescue.errors import ExitCode

    disk = tmp_path / "os.raw"
    with open(disk, "wb") as fh:                # 256 MiB, sparse: no appliance is ever started for it
        fh.truncate(256 << 20)
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    log = tmp_path / "launches.log"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    assert run(["fix", "no-memory", str(disk), "--expand", size, "--yes"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not log.exists()                                           # no launch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["os.raw"]   # no overlay left behind
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before
