"""Device elements: the BCD-REFERENCE.md §6 examples, byte for byte, and naming the partition."""

from __future__ import annotations

import struct
import uuid

import pytest

from rescue.bcd.devices import DeviceContext, decode_device, device_text
from rescue.disk.session import DiskInfo, Partition
from rescue.layout import LetterMapping

# Values as they are in the real stores (hex copied from the hives; see realdata/README.md).
GPT_BOOTMGR = bytes.fromhex(  # windeploy_win10_uefi_locate_BCD-efi {bootmgr} 11000001
    "00000000000000000000000000000000" "06000000000000004800000000000000"
    "af34c4856078b34985c3b70316081b7b" "00000000000000007730ac20cdf7474c"
    "95d553fbf8b752b50000000000000000" "0000000000000000")
MBR_1MIB = bytes.fromhex(     # windeploy_win10_bios_mbr_BCD {memdiag} 11000001 (signature 0xddba6bbb)
    "00000000000000000000000000000000" "06000000000000004800000000000000"
    "00001000000000000000000000000000" "0000000001000000bb6bbadd00000000"
    "00000000000000000000000000000000" "0000000000000000")
BOOT = bytes(16) + struct.pack("<IIII", 5, 0, 72, 0) + bytes(56)
LOCATE = bytes.fromhex(       # windeploy_win10_uefi_locate_BCD-efi loader 11000001, 46 bytes
    "00000000000000000000000000000000" "08000000000000001e00000000000000"
    "0000000002000012000000000000")
RAMDISK_WINRE = bytes.fromhex(  # regipy_win10_uefi_BCD WinRE loader 11000001, 200 bytes
    "e7623b7308f6eb11825cc112f60133ab" "0000000001000000b800000000000000"
    "03000000000000000000000000000000" "00000000000000000100000090000000"
    "05000000060000000000000048000000" "0000000069cddf6c75de90448f995a84"
    "bf2649170000000000000000a994230b" "5e097d488d48719ecd4d78ca00000000"
    "000000000000000000000000") + "\\Recovery\\WindowsRE\\Winre.wim\x00".encode("utf-16-le")


def test_example_bytes_are_the_documented_lengths():
    assert (len(GPT_BOOTMGR), len(MBR_1MIB), len(BOOT), len(LOCATE), len(RAMDISK_WINRE)) == (88, 88, 88, 46, 200)


def test_gpt_partition():
    d = decode_device(GPT_BOOTMGR)
    assert (d.kind, d.style, d.options) == ("partition", "gpt", None)
    assert d.partition_guid == "85c434af-7860-49b3-85c3-b70316081b7b"
    assert d.disk_guid == "20ac3077-f7cd-4c47-95d5-53fbf8b752b5"
    assert device_text(d) == ("partition=(GPT disk 20ac3077-f7cd-4c47-95d5-53fbf8b752b5, "
                              "partition 85c434af-7860-49b3-85c3-b70316081b7b)")


def test_mbr_partition_is_signature_plus_byte_offset():
    d = decode_device(MBR_1MIB)
    assert (d.kind, d.style, d.mbr_signature, d.partition_offset) == ("partition", "mbr", 0xDDBA6BBB, 0x100000)
    assert d.to_json() == {"kind": "partition", "options": None, "style": "mbr",
                           "mbr_signature": "0xddba6bbb", "partition_offset": 1048576, "location": None}


def test_boot_and_locate():
    assert decode_device(BOOT).kind == "boot" and device_text(decode_device(BOOT)) == "boot"
    d = decode_device(LOCATE)
    assert (d.kind, d.locate_type, d.locate_element, d.path) == ("locate", 0, 0x12000002, None)
    assert device_text(d) == "locate=custom:12000002"


def test_ramdisk_with_nested_partition_and_options():
    d = decode_device(RAMDISK_WINRE)
    assert (d.kind, d.path, d.options) == ("ramdisk", "\\Recovery\\WindowsRE\\Winre.wim",
                                          "{733b62e7-f608-11eb-825c-c112f60133ab}")
    assert d.parent.kind == "partition" and d.parent.partition_guid == "6cdfcd69-de75-4490-8f99-5a84bf264917"
    assert d.parent.disk_guid == "0b2394a9-095e-487d-8d48-719ecd4d78ca"
    assert device_text(d).startswith("ramdisk=[GPT disk 0b2394a9-095e-487d-8d48-719ecd4d78ca, partition 6cdfcd69")


def test_unknown_kinds_and_bad_lengths_are_kept_raw():
    serial = bytes(16) + struct.pack("<IIII", 3, 0, 24, 0) + b"\x01\x02\x03\x04\x05\x06\x07\x08"
    d = decode_device(serial)
    assert d.kind == "unknown" and d.raw == serial and d.device_type == 3
    assert serial.hex() in device_text(d)
    j = d.to_json()
    assert (j["kind"], j["raw"], j["device_type"]) == ("unknown", serial.hex(), 3)
    # Size says 72 but 8 more bytes follow: the boot manager rejects that, so do we (shown raw).
    longer = decode_device(MBR_1MIB + bytes(8))
    assert longer.kind == "unknown" and "does not match" in longer.note
    assert decode_device(b"\x00" * 10).kind == "unknown"
    truncated = decode_device(MBR_1MIB[:60])
    assert truncated.kind == "unknown" and truncated.raw == MBR_1MIB[:60]


def _disks():
    mbr = DiskInfo(index=0, image=None, device="/dev/sda", size=10 << 30, table="mbr", mbr_signature=0xDDBA6BBB,
                   gpt_guid=None, partitions=(
                       Partition(0, 1, "/dev/sda1", 0x100000, 500 << 20, mbr_type=7, bootable=True),
                       Partition(0, 2, "/dev/sda2", 0x1F500000, 9 << 30, mbr_type=7)))
    gpt = DiskInfo(index=1, image=None, device="/dev/sdb", size=10 << 30, table="gpt", mbr_signature=None,
                   gpt_guid="20AC3077-F7CD-4C47-95D5-53FBF8B752B5", partitions=(
                       Partition(1, 1, "/dev/sdb1", 0x100000, 100 << 20,
                                 gpt_guid="85C434AF-7860-49B3-85C3-B70316081B7B"),
                       Partition(1, 3, "/dev/sdb3", 0x8000000, 9 << 30, gpt_guid=str(uuid.uuid4()).upper())))
    return [mbr, gpt]


def test_partition_on_attached_disks_with_letter():
    letters = [LetterMapping("C:", 0, 1, raw=""), LetterMapping("D:", None, None, raw="")]
    ctx = DeviceContext(_disks(), letters, ["os.vhd", "data.vhd"])
    mbr = decode_device(MBR_1MIB)
    assert device_text(mbr, ctx) == "partition=C:"
    assert mbr.to_json(ctx)["location"] == {"disk": "os.vhd", "partition": 1, "letter": "C:"}
    gpt = decode_device(GPT_BOOTMGR)       # an ESP has no drive letter
    assert device_text(gpt, ctx) == "partition=disk 1 partition 1"
    assert gpt.to_json(ctx)["location"] == {"disk": "data.vhd", "partition": 1, "letter": None}


@pytest.mark.parametrize("mutate", ["signature", "offset"])
def test_partition_not_on_attached_disks(mutate):
    raw = bytearray(MBR_1MIB)
    if mutate == "signature":
        raw[56] ^= 0xFF
    else:
        raw[34] = 0x20          # offset 2 MiB: no partition starts there
    ctx = DeviceContext(_disks(), [], ["os.vhd", "data.vhd"])
    d = decode_device(bytes(raw))
    assert ctx.locate(d) is None
    assert device_text(d, ctx).endswith("[not on the attached disks]")


def test_gpt_partition_guid_on_a_different_disk_guid_is_not_matched():
    disks = _disks()
    clone = DiskInfo(**{**disks[1].__dict__, "gpt_guid": "00000000-0000-0000-0000-000000000001"})
    assert DeviceContext([clone]).locate(decode_device(GPT_BOOTMGR)) is None


# --- encoding: the bytes bcdedit writes for partition=X: -----------------------------------------
def test_encoders_write_the_real_stores_bytes():
    from rescue.bcd.devices import gpt_partition_device, mbr_partition_device

    gpt = decode_device(GPT_BOOTMGR)
    assert gpt_partition_device(gpt.partition_guid, gpt.disk_guid) == GPT_BOOTMGR
    assert gpt_partition_device("{" + gpt.partition_guid.upper() + "}", gpt.disk_guid.upper()) == GPT_BOOTMGR
    assert mbr_partition_device(0xDDBA6BBB, 1 << 20) == MBR_1MIB


def test_partition_device_from_the_disk_records():
    from rescue.bcd.devices import partition_device

    gpt = decode_device(GPT_BOOTMGR)
    part = Partition(0, 1, "/dev/sda1", 1 << 20, 100 << 20, gpt_guid=gpt.partition_guid.upper())
    disk = DiskInfo(0, None, "/dev/sda", 1 << 30, "gpt", None, gpt.disk_guid.upper(), (part,))
    assert partition_device(disk, part) == GPT_BOOTMGR
    mpart = Partition(0, 1, "/dev/sda1", 1 << 20, 100 << 20, mbr_type=7)
    mdisk = DiskInfo(0, None, "/dev/sda", 1 << 30, "mbr", 0xDDBA6BBB, None, (mpart,))
    assert partition_device(mdisk, mpart) == MBR_1MIB
    # What the encoder writes, the locator finds again (the check after a fix relies on it).
    assert DeviceContext([mdisk]).locate(decode_device(partition_device(mdisk, mpart))).partition == 1
    with pytest.raises(ValueError, match="no disk signature"):
        partition_device(DiskInfo(0, None, "/dev/sda", 1 << 30, "mbr", 0, None, (mpart,)), mpart)


def test_every_partition_device_of_the_real_stores_reencodes_byte_for_byte():
    from realdata import need
    from rescue.bcd.devices import gpt_partition_device, mbr_partition_device
    from rescue.bcd.model import BcdStore

    seen = 0
    for name in ("regipy_win10_uefi_BCD", "windeploy_win10_bios_mbr_BCD", "galton_win7_bios_mbr_BCD",
                 "windeploy_win10_uefi_locate_BCD-efi"):
        store = BcdStore.open(need(f"bcd/{name}"))
        for obj in store.objects:
            for e in obj.elements:
                d = e.value
                if e.ok and getattr(d, "kind", None) == "partition" and d.options is None and d.note is None:
                    again = (gpt_partition_device(d.partition_guid, d.disk_guid) if d.style == "gpt"
                             else mbr_partition_device(d.mbr_signature, d.partition_offset))
                    assert again == e.raw, (name, obj.identifier, e.code_hex)
                    seen += 1
    assert seen >= 8
