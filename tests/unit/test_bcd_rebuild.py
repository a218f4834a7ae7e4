"""The store `rescue fix rebuild-bcd` writes, checked against what Windows itself made: the real
BCD-Template of Windows 10 and the store bcdboot made from one on a UEFI machine
(realdata regipy_win10_uefi_BCD). Read back with python-hivex directly, not rescue's decoder."""

from __future__ import annotations

import struct
from pathlib import Path

import hivex
import pytest

from realdata import need
from rescue.bcd import constants as C
from rescue.bcd.model import BcdStore
from rescue.bcd.rebuild import (BootTarget, TemplateError, build_system_store, loader_description,
                                partition_device, read_template, system_store_objects)
from rescue.samples.bcd_store import build_bcd_template
from rescue.samples.hives import gpt_partition_device, mbr_partition_device

# The devices of regipy_win10_uefi_BCD: ESP and C: on one GPT disk.
DISK = "0b2394a9-095e-487d-8d48-719ecd4d78ca"
ESP = "36be3955-63bf-4068-a6ab-00195cca3a22"
OS = "8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b"


def dump(path: Path) -> dict:
    """{object guid: {"type": int, "elements": {code: (reg type, bytes)}}} straight from hivex."""
    h = hivex.Hivex(str(path))
    objects = h.node_get_child(h.root(), "Objects")
    out = {}
    for node in h.node_children(objects):
        desc = h.node_get_child(node, "Description")
        type_ = struct.unpack("<I", h.value_value(h.node_get_value(desc, "Type"))[1][:4])[0]
        elements = {}
        enode = h.node_get_child(node, "Elements")
        for el in (h.node_children(enode) if enode else ()):
            elements[int(h.node_name(el), 16)] = h.value_value(h.node_get_value(el, "Element"))
        out[h.node_name(node).lower()] = {"type": type_, "elements": elements}
    return out


def gen2_target() -> BootTarget:
    return BootTarget("gen2", partition_device(style="gpt", partition_guid=ESP, disk_guid=DISK),
                      partition_device(style="gpt", partition_guid=OS, disk_guid=DISK), "Windows 10")


def gen1_target() -> BootTarget:
    return BootTarget("gen1", partition_device(style="mbr", mbr_signature=0xDDBA6BBB, offset=1 << 20),
                      partition_device(style="mbr", mbr_signature=0xDDBA6BBB, offset=101 << 20), "Windows Server")


def test_partition_devices_are_the_88_byte_structures_windows_writes():
    assert partition_device(style="gpt", partition_guid=ESP, disk_guid=DISK) == gpt_partition_device(ESP, DISK)
    assert partition_device(style="mbr", mbr_signature=0xDDBA6BBB, offset=1 << 20) == \
        mbr_partition_device(0xDDBA6BBB, 1 << 20)
    # The MBR example of BCD-REFERENCE.md §6 (windeploy store): 1 MiB offset, signature 0xddba6bbb.
    assert partition_device(style="mbr", mbr_signature=0xDDBA6BBB, offset=1 << 20).hex() == (
        "00" * 16 + "06000000" "00000000" "48000000" "00000000" "0000100000000000" "0000000000000000"
        "00000000" "01000000" "bb6bbadd" + "00" * 28)


def test_builder_template_is_the_real_windows_10_template(tmp_path):
    real = dump(need("bcd/museum_win10_BCD-Template"))
    ours = dump(build_bcd_template(tmp_path / "BCD-Template"))
    assert ours == real


def test_gen2_store_equals_what_bcdboot_wrote(tmp_path):
    """Every object and element of bcdboot's store is in ours with the same type and bytes, apart
    from what other tools added later (reagentc's recovery elements, the firmware's NVRAM mirror)."""
    template = need("bcd/museum_win10_BCD-Template")
    real = dump(need("bcd/regipy_win10_uefi_BCD"))
    target = gen2_target()
    ours = dump(build_system_store(tmp_path / "BCD", template, target))
    real_loader, real_resume = "{733b62e5-f608-11eb-825c-c112f60133ab}", "{733b62e4-f608-11eb-825c-c112f60133ab}"
    rename = {real_loader: target.loader_guid, real_resume: target.resume_guid}

    def renamed(value):
        t, data = value
        if t in (1, 7):
            text = data.decode("utf-16le")
            for old, new in rename.items():
                text = text.replace(old, new)
            return t, text.encode("utf-16le")
        return value

    later = {0x14000008, 0x15000066, 0x16000009,    # reagentc: recoverysequence, recovery settings
             0x26000006}                             # debugoptionenabled, set by Windows on first boot
    for guid, obj in real.items():
        if obj["type"] in (C.TYPE_FW_APP, C.TYPE_DEVICE_OPTIONS) or guid == "{733b62e6-f608-11eb-825c-c112f60133ab}":
            continue            # firmware entries and the WinRE loader: not bcdboot's
        mine = ours[rename.get(guid, guid)]
        assert mine["type"] == obj["type"], guid
        want = {c: renamed(v) for c, v in obj["elements"].items() if c not in later}
        if guid == C.GUID_FWBOOTMGR:
            # bcdboot mirrors the firmware's whole boot order; offline there is only {bootmgr}.
            want[C.DISPLAYORDER] = (7, (C.GUID_BOOTMGR + "\0\0").encode("utf-16le"))
        if guid == C.GUID_BOOTMGR:
            # bcdboot wrote this path with two terminating NULs (BCD-REFERENCE.md §6: seen in real
            # stores, stripped by every reader); the template's value, copied, has one.
            t, data = want[C.PATH]
            assert data.endswith(b"\0\0\0\0")
            want[C.PATH] = (t, data[:-2])
        assert mine["elements"] == want, guid
    assert set(ours) == {rename.get(g, g) for g, o in real.items()
                         if o["type"] not in (C.TYPE_FW_APP, C.TYPE_DEVICE_OPTIONS)
                         and g != "{733b62e6-f608-11eb-825c-c112f60133ab}"}


def test_builder_template_makes_the_same_store_as_the_real_one(tmp_path):
    real = need("bcd/museum_win10_BCD-Template")
    ours = build_bcd_template(tmp_path / "BCD-Template")
    for target in (gen1_target(), gen2_target()):
        a = build_system_store(tmp_path / "a", real, target).read_bytes()
        b = build_system_store(tmp_path / "b", ours, target).read_bytes()
        assert dump(tmp_path / "a") == dump(tmp_path / "b")
        assert len(a) == len(b)


@pytest.mark.parametrize("generation", ["gen1", "gen2"])
def test_rebuilt_store_enumerates_as_bcdboot_makes_it(tmp_path, generation):
    """Without realdata: the builder's template, decoded by rescue's own model (what `bcd enum` shows)."""
    target = gen1_target() if generation == "gen1" else gen2_target()
    path = build_system_store(tmp_path / "BCD", build_bcd_template(tmp_path / "T"), target)
    store = BcdStore.open(path)
    assert all(e.ok for o in store.objects for e in o.elements)
    by_alias = {o.alias or o.identifier: o for o in store.objects}
    wanted = {"{bootmgr}", "{memdiag}", "{badmemory}", "{emssettings}", "{globalsettings}", "{bootloadersettings}",
              "{dbgsettings}", "{resumeloadersettings}", "{hypervisorsettings}", target.loader_guid, target.resume_guid}
    if generation == "gen2":
        wanted.add("{fwbootmgr}")
    assert set(by_alias) == wanted
    bootmgr, loader, resume = by_alias["{bootmgr}"], by_alias[target.loader_guid], by_alias[target.resume_guid]
    assert bootmgr.value(C.BOOTMGR_DEFAULT) == target.loader_guid
    assert bootmgr.value(C.DISPLAYORDER) == (target.loader_guid,)
    assert bootmgr.value(0x23000006) == target.resume_guid
    assert bootmgr.value(0x24000010) == (C.GUID_MEMDIAG,)
    assert bootmgr.value(C.TIMEOUT) == 30
    assert bootmgr.element(C.DEVICE).raw == target.system_device
    assert (bootmgr.value(C.PATH) is None) == (generation == "gen1")
    ext = "efi" if generation == "gen2" else "exe"
    assert loader.type == C.TYPE_OSLOADER and resume.type == C.TYPE_RESUME
    assert loader.value(C.PATH) == f"\\Windows\\system32\\winload.{ext}"
    assert loader.value(C.SYSTEMROOT) == "\\Windows"
    assert loader.element(C.DEVICE).raw == loader.element(C.OSDEVICE).raw == target.os_device
    assert loader.value(0x23000003) == target.resume_guid
    assert loader.value(C.INHERIT) == (C.GUID_BOOTLOADERSETTINGS,)
    assert resume.value(C.PATH) == f"\\Windows\\system32\\winresume.{ext}"
    assert resume.value(C.SYSTEMROOT) == "\\hiberfil.sys"
    memdiag = by_alias["{memdiag}"]
    assert memdiag.value(C.PATH) == ("\\EFI\\Microsoft\\Boot\\memtest.efi" if generation == "gen2" else "\\boot\\memtest.exe")
    assert memdiag.element(C.DEVICE).raw == target.system_device
    # No template-only (class 4) element, every integer 8 bytes wide, every key lower case.
    for o in store.objects:
        for e in o.elements:
            assert C.element_class(e.code) != 4
            assert e.key == e.key.lower()
            if C.element_format(e.code) == C.FMT_INTEGER:
                assert len(e.raw) == 8


def test_template_without_the_loader_template_is_refused(tmp_path):
    from rescue.hive import Hive

    path = build_bcd_template(tmp_path / "T")
    with Hive(path, write=True) as h:
        h.delete_key("Objects\\{b012b84d-c47c-4ed5-b722-c0c42163e569}")
        h.commit()
    with pytest.raises(TemplateError, match="b012b84d"):
        system_store_objects(read_template(path), gen2_target())
    system_store_objects(read_template(path), gen1_target())      # the PCAT one is still there


def test_a_non_hive_template_is_a_clear_error(tmp_path):
    bad = tmp_path / "BCD-Template"
    bad.write_bytes(b"not a hive" * 100)
    with pytest.raises(TemplateError, match="BCD-Template cannot be read"):
        read_template(bad)


@pytest.mark.parametrize("product,build,want", [
    ("Windows Server 2019 Datacenter", 17763, "Windows Server"),
    ("Windows 10 Pro", 19045, "Windows 10"),
    ("Windows 10 Pro", 22631, "Windows 11"),          # Windows 11 still says "Windows 10" in ProductName
    (None, None, "Windows 10"),
])
def test_loader_description(product, build, want):
    assert loader_description(product, build) == want
