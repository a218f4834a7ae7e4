"""The sample hive builders (rescue.samples.hives) read back with exactly the values, registry types
and byte lengths Windows uses, and laid out like the real hives in ../shared/realdata where present."""

from __future__ import annotations

import struct
import uuid

import pytest

from realdata import need
from rescue.bcd import constants as C
from rescue.disk.session import DiskInfo, Partition
from rescue.hive import Hive, read_header
from rescue.hive import values as V
from rescue.layout import parse_mounted_devices
from rescue.samples import BROKEN_PFNS, CATALOGUE, identity
from rescue.samples import bcd_store as B
from rescue.samples import hives as H
from rescue.samples.disks import TEMP_DISK_SIGNATURE, ids_for, mounted_devices

MM = "Control\\Session Manager\\Memory Management"
CC = "Control\\CrashControl"
LOADER = B.LOADER_GUID
MiB = 1 << 20


def _raw(h: Hive, key: str, name: str) -> tuple[int, bytes]:
    v = h.get(key, name)
    assert v is not None, f"{key}\\{name} missing"
    return v.type, v.data


def _element(h: Hive, obj: str, code: int) -> tuple[int, bytes] | None:
    v = h.get(f"Objects\\{obj}\\Elements\\{code:08x}", "Element")
    return None if v is None else (v.type, v.data)


# --- SYSTEM --------------------------------------------------------------------------------------
def test_broken_system_is_the_articles_broken_state(sample_hives):
    h = Hive(sample_hives.broken_system("gen2"))
    assert [(v.name, v.type, v.data) for v in h.values(h.node("Select"))] == [
        ("Current", V.REG_DWORD, b"\x01\0\0\0"), ("Default", V.REG_DWORD, b"\x01\0\0\0"),
        ("Failed", V.REG_DWORD, b"\0\0\0\0"), ("LastKnownGood", V.REG_DWORD, b"\x02\0\0\0")]
    assert h.child_names("") == ["ControlSet001", "ControlSet002", "MountedDevices", "RNG", "Select",
                                 "Setup", "WPA"]
    for cs in ("ControlSet001", "ControlSet002"):
        assert _raw(h, f"{cs}\\{MM}", "PagingFiles") == (V.REG_MULTI_SZ, "C:\\pagefile.sys 0 0\0\0".encode("utf-16-le"))
        assert _raw(h, f"{cs}\\{MM}", "ExistingPageFiles") == (V.REG_MULTI_SZ, "\\??\\C:\\pagefile.sys\0\0".encode("utf-16-le"))
        assert _raw(h, f"{cs}\\{CC}", "CrashDumpEnabled") == (V.REG_DWORD, b"\0\0\0\0")
        assert h.get(f"{cs}\\{CC}", "NMICrashDump") is None
        assert _raw(h, f"{cs}\\{CC}", "DumpFile") == (V.REG_EXPAND_SZ, "%SystemRoot%\\MEMORY.DMP\0".encode("utf-16-le"))
        assert h.find(f"{cs}\\Control\\WHEA") is None


def test_healthy_system_is_the_articles_end_state(sample_hives):
    h = Hive(sample_hives.healthy_system("gen1"))
    for cs in ("ControlSet001", "ControlSet002"):
        assert _raw(h, f"{cs}\\{MM}", "PagingFiles") == (V.REG_MULTI_SZ, "D:\\pagefile.sys\0\0".encode("utf-16-le"))
        assert _raw(h, f"{cs}\\{MM}", "ExistingPageFiles") == (V.REG_MULTI_SZ, "\\??\\D:\\pagefile.sys\0\0".encode("utf-16-le"))
        assert _raw(h, f"{cs}\\{CC}", "CrashDumpEnabled") == (V.REG_DWORD, b"\x01\0\0\0")
        assert _raw(h, f"{cs}\\{CC}", "NMICrashDump") == (V.REG_DWORD, b"\x01\0\0\0")
        assert h.get_value(f"{cs}\\Control\\ComputerName\\ComputerName", "ComputerName").startswith("WINSRV-")
    hdr = read_header(h.path)
    assert hdr.checksum_ok and not hdr.dirty and hdr.minor == 5


def test_current_control_set_2_and_options(sample_hives):
    h = Hive(sample_hives.system(current=2, control_sets=(1, 2, 3), pagefile_on="?:", crash_dumps=7,
                                 whea_bad_pages=b"\x38\xfe\x0f\0\0\0\0\0"))
    assert h.get_value("Select", "Current") == 2 and h.get_value("Select", "LastKnownGood") == 1
    assert h.get_value("Select", "Default") == 2
    assert [n for n in h.child_names("") if n.startswith("ControlSet")] == ["ControlSet001", "ControlSet002", "ControlSet003"]
    assert h.get_value(f"ControlSet003\\{MM}", "PagingFiles") == ["?:\\pagefile.sys"]
    assert h.get_value(f"ControlSet003\\{MM}", "ExistingPageFiles") == ["\\??\\C:\\pagefile.sys"]
    assert h.get_value(f"ControlSet002\\{CC}", "CrashDumpEnabled") == 7
    assert _raw(h, "ControlSet002\\Control\\WHEA", "BadPages") == (V.REG_BINARY, b"\x38\xfe\x0f\0\0\0\0\0")
    none = Hive(sample_hives.system(pagefile_on=None))
    assert _raw(none, f"ControlSet001\\{MM}", "PagingFiles") == (V.REG_MULTI_SZ, b"\0\0")


def _disks_for(base: str) -> list[DiskInfo]:
    """The partitions the sample disk really has, as DiskSession would report them."""
    ids = ids_for(base)
    o = CATALOGUE[base].windows
    if o.generation == "gen1":
        parts = (Partition(0, 1, "/dev/sda1", MiB, 100 * MiB, mbr_type=7, bootable=True),
                 Partition(0, 2, "/dev/sda2", 101 * MiB, 256 * MiB, mbr_type=7))
        return [DiskInfo(0, None, "/dev/sda", 1024 * MiB, "mbr", ids.mbr_signature, None, parts)]
    parts = (Partition(0, 1, "/dev/sda1", MiB, 100 * MiB, gpt_guid=ids.esp_guid.upper()),
             Partition(0, 3, "/dev/sda3", 117 * MiB, 256 * MiB, gpt_guid=ids.os_guid.upper()))
    data = ids_for("data-disk")
    dparts = (Partition(1, 2, "/dev/sdb2", 17 * MiB, 495 * MiB, gpt_guid=data.data_guid.upper()),)
    return [DiskInfo(0, None, "/dev/sda", 1024 * MiB, "gpt", None, ids.disk_guid.upper(), parts),
            DiskInfo(1, None, "/dev/sdb", 512 * MiB, "gpt", None, data.disk_guid.upper(), dparts)]


@pytest.mark.parametrize("base", ["gen1-broken", "gen2-broken", "gen2-healthy"])
def test_mounted_devices_name_the_sample_disks_partitions(sample_hives, base):
    h = Hive(sample_hives.system(mounted_devices=mounted_devices(base)))
    vals = [(v.name, v.data) for v in h.values(h.node("MountedDevices"))]
    assert all(v.type == V.REG_BINARY for v in h.values(h.node("MountedDevices")))
    ids = identity(base)
    c = dict(vals)["\\DosDevices\\C:"]
    if ids.generation == "gen1":
        assert c == struct.pack("<IQ", ids.mbr_signature, 101 * MiB) and len(c) == 12
    else:
        assert c == b"DMIO:ID:" + uuid.UUID(ids.os_guid).bytes_le and len(c) == 24
    assert dict(vals)["\\DosDevices\\D:"] == struct.pack("<IQ", TEMP_DISK_SIGNATURE, MiB)
    letters = {m.letter: (m.disk, m.partition) for m in parse_mounted_devices(vals, _disks_for(base))}
    assert letters["C:"] == ((0, 2) if ids.generation == "gen1" else (0, 3))
    assert letters["D:"] == (None, None)            # the Azure temporary disk is never attached
    assert letters["E:"] == ((None, None) if ids.generation == "gen1" else (1, 2))
    assert sum(1 for n, _ in vals if n.startswith("\\??\\Volume{")) == 4


def test_memory_management_and_crashcontrol_laid_out_like_real_hives(sample_hives):
    real = Hive(need("system/regipy_win7_x86_SYSTEM"))
    ours = Hive(sample_hives.broken_system())
    mm_real = [v.name for v in real.values(real.node(f"ControlSet001\\{MM}"))]
    mm_ours = [v.name for v in ours.values(ours.node(f"ControlSet001\\{MM}"))]
    assert mm_ours == mm_real
    types_real = {v.name: v.type for v in real.values(real.node(f"ControlSet001\\{CC}"))}
    types_ours = {v.name: v.type for v in ours.values(ours.node(f"ControlSet001\\{CC}"))}
    assert {n: types_ours[n] for n in types_real} == types_real   # every real value, same type
    assert real.child_names(f"ControlSet001\\{MM}") == ours.child_names(f"ControlSet001\\{MM}")


# --- SOFTWARE ------------------------------------------------------------------------------------
def test_software_current_version(sample_hives):
    h = Hive(sample_hives.software())
    cv = "Microsoft\\Windows NT\\CurrentVersion"
    expect = {"ProductName": (V.REG_SZ, "Windows Server 2019 Datacenter"), "CurrentVersion": (V.REG_SZ, "6.3"),
              "CurrentBuildNumber": (V.REG_SZ, "17763"), "CurrentBuild": (V.REG_SZ, "17763"),
              "CurrentMajorVersionNumber": (V.REG_DWORD, 10), "CurrentMinorVersionNumber": (V.REG_DWORD, 0),
              "EditionID": (V.REG_SZ, "ServerDatacenter"), "InstallationType": (V.REG_SZ, "Server"),
              "ReleaseId": (V.REG_SZ, "1809"), "UBR": (V.REG_DWORD, 5830),
              "SystemRoot": (V.REG_SZ, "C:\\Windows")}
    for name, (t, value) in expect.items():
        v = h.get(cv, name)
        assert (v.type, v.value) == (t, value), name
    assert h.get_value(f"{cv}\\ProfileList\\{H.AZURE_USER_SID}", "ProfileImagePath") == "C:\\Users\\azureuser"
    assert h.get(f"{cv}\\ProfileList\\{H.AZURE_USER_SID}", "ProfileImagePath").type == V.REG_EXPAND_SZ
    h16 = Hive(sample_hives.software(product="Windows Server 2016 Datacenter", build=14393, release_id="1607"))
    assert h16.get_value(cv, "CurrentBuildNumber") == "14393" and h16.get_value(cv, "ReleaseId") == "1607"


# --- BCD -----------------------------------------------------------------------------------------
GEN2_OBJECTS = {C.GUID_BOOTMGR: C.TYPE_BOOTMGR, C.GUID_FWBOOTMGR: C.TYPE_FWBOOTMGR, LOADER: C.TYPE_OSLOADER,
                B.RESUME_GUID: C.TYPE_RESUME, C.GUID_MEMDIAG: C.TYPE_MEMDIAG,
                C.GUID_BADMEMORY: C.TYPE_INHERIT_ANY, C.GUID_EMSSETTINGS: C.TYPE_INHERIT_ANY,
                C.GUID_GLOBALSETTINGS: C.TYPE_INHERIT_ANY, C.GUID_DBGSETTINGS: C.TYPE_INHERIT_ANY,
                C.GUID_BOOTLOADERSETTINGS: C.TYPE_INHERIT_OSLOADER,
                C.GUID_HYPERVISORSETTINGS: C.TYPE_INHERIT_OSLOADER,
                C.GUID_RESUMELOADERSETTINGS: C.TYPE_INHERIT_RESUME}


@pytest.mark.parametrize("gen", ["gen1", "gen2"])
def test_bcd_objects_types_and_description(sample_hives, gen):
    h = Hive(sample_hives.broken_bcd(gen))
    assert h.root_name() == "NewStoreRoot" and h.child_names("") == ["Description", "Objects"]
    assert [(v.name, v.type, v.value) for v in h.values(h.node("Description"))] == [
        ("KeyName", V.REG_SZ, "BCD00000000"), ("System", V.REG_DWORD, 1), ("TreatAsSystem", V.REG_DWORD, 1)]
    want = dict(GEN2_OBJECTS)
    if gen == "gen1":
        del want[C.GUID_FWBOOTMGR]
    assert sorted(h.child_names("Objects")) == sorted(want)
    for guid, t in want.items():
        assert _raw(h, f"Objects\\{guid}\\Description", "Type") == (V.REG_DWORD, struct.pack("<I", t))
    hdr = read_header(h.path)
    assert hdr.minor == 3 and hdr.checksum_ok
    assert hdr.file_name.endswith("\\EFI\\Microsoft\\Boot\\BCD" if gen == "gen2" else "\\Boot\\BCD")


@pytest.mark.parametrize("which", ["broken", "healthy"])
def test_every_element_has_windows_type_and_length(sample_hives, which):
    h = Hive(getattr(sample_hives, f"{which}_bcd")("gen2"))
    seen = 0
    for obj in h.child_names("Objects"):
        assert obj == obj.lower() and obj.startswith("{") and uuid.UUID(obj)
        for key in h.child_names(f"Objects\\{obj}\\Elements"):
            assert key == key.lower() and len(key) == 8
            code = int(key, 16)
            t, data = _element(h, obj, code)
            fmt = C.element_format(code)
            seen += 1
            if fmt == C.FMT_DEVICE:
                assert t == V.REG_BINARY and len(data) == 88
            elif fmt == C.FMT_STRING:
                assert t == V.REG_SZ and data.endswith(b"\0\0") and len(data) % 2 == 0
            elif fmt == C.FMT_OBJECT:
                text = V.decode_sz(data)
                assert t == V.REG_SZ and text == text.lower() and uuid.UUID(text) and data.endswith(b"\0\0")
            elif fmt == C.FMT_OBJECT_LIST:
                assert t == V.REG_MULTI_SZ and len(data) == 78 * len(V.decode_multi_sz(data)) + 2
            elif fmt == C.FMT_INTEGER:
                assert t == V.REG_BINARY and len(data) == 8
            elif fmt == C.FMT_BOOLEAN:
                assert t == V.REG_BINARY and data in (b"\0", b"\x01")
            elif fmt == C.FMT_INTEGER_LIST:
                assert t == V.REG_BINARY and len(data) % 8 == 0 and data
            else:
                pytest.fail(f"unexpected format in {key}")
    assert seen >= 50


def test_broken_bcd_bad_memory_and_ems_off(sample_hives):
    h = Hive(sample_hives.broken_bcd("gen2"))
    assert _element(h, C.GUID_BADMEMORY, C.BADMEMORYLIST) == (
        V.REG_BINARY, b"".join(struct.pack("<Q", p) for p in BROKEN_PFNS))
    assert _element(h, LOADER, C.OSLOADER_EMS) is None
    assert _element(h, C.GUID_EMSSETTINGS, C.BOOTEMS) == (V.REG_BINARY, b"\0")
    assert _element(h, C.GUID_EMSSETTINGS, C.EMSPORT) is None
    assert _element(h, C.GUID_EMSSETTINGS, C.EMSBAUDRATE) is None
    assert _element(h, C.GUID_BOOTMGR, C.BOOTEMS) is None


def test_healthy_bcd_ems_on_and_no_bad_memory(sample_hives):
    h = Hive(sample_hives.healthy_bcd("gen2"))
    assert h.child_names(f"Objects\\{C.GUID_BADMEMORY}\\Elements") == []
    assert _element(h, LOADER, C.OSLOADER_EMS) == (V.REG_BINARY, b"\x01")
    assert _element(h, C.GUID_EMSSETTINGS, C.EMSPORT) == (V.REG_BINARY, struct.pack("<Q", 1))
    assert _element(h, C.GUID_EMSSETTINGS, C.EMSBAUDRATE) == (V.REG_BINARY, struct.pack("<Q", 115200))
    assert _element(h, C.GUID_BOOTMGR, C.BOOTEMS) == (V.REG_BINARY, b"\x01")


@pytest.mark.parametrize("gen", ["gen1", "gen2"])
def test_bcd_boot_chain(sample_hives, gen):
    h = Hive(sample_hives.broken_bcd(gen))
    ids = identity(f"{gen}-broken")
    multi = lambda *g: V.encode_multi_sz(list(g))  # noqa: E731
    assert _element(h, C.GUID_BOOTMGR, C.BOOTMGR_DEFAULT) == (V.REG_SZ, V.encode_sz(LOADER))
    assert _element(h, C.GUID_BOOTMGR, C.DISPLAYORDER) == (V.REG_MULTI_SZ, multi(LOADER))
    assert _element(h, C.GUID_BOOTMGR, C.TIMEOUT) == (V.REG_BINARY, struct.pack("<Q", 5))
    assert _element(h, C.GUID_BOOTMGR, C.DEVICE) == (V.REG_BINARY, ids.system_device())
    path = _element(h, C.GUID_BOOTMGR, C.PATH)
    winload = "\\Windows\\system32\\winload." + ("efi" if gen == "gen2" else "exe")
    if gen == "gen2":
        assert path == (V.REG_SZ, V.encode_sz("\\EFI\\Microsoft\\Boot\\bootmgfw.efi"))
    else:
        assert path is None                           # BIOS stores: bootmgr has no path
    assert _element(h, LOADER, C.PATH) == (V.REG_SZ, V.encode_sz(winload))
    assert _element(h, LOADER, C.DEVICE) == _element(h, LOADER, C.OSDEVICE) == (V.REG_BINARY, ids.os_device())
    assert _element(h, LOADER, C.SYSTEMROOT) == (V.REG_SZ, V.encode_sz("\\Windows"))
    assert _element(h, LOADER, C.INHERIT) == (V.REG_MULTI_SZ, multi(C.GUID_BOOTLOADERSETTINGS))
    assert _element(h, C.GUID_GLOBALSETTINGS, C.INHERIT) == (
        V.REG_MULTI_SZ, multi(C.GUID_DBGSETTINGS, C.GUID_EMSSETTINGS, C.GUID_BADMEMORY))
    assert _element(h, C.GUID_BOOTLOADERSETTINGS, C.INHERIT) == (
        V.REG_MULTI_SZ, multi(C.GUID_GLOBALSETTINGS, C.GUID_HYPERVISORSETTINGS))


def test_partition_devices_exact_bytes():
    gpt = H.gpt_partition_device("8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b", "0b2394a9-095e-487d-8d48-719ecd4d78ca")
    assert gpt.hex() == ("00" * 16 + "06000000" "00000000" "48000000" "00000000"
                         "382c0f8eeae4ba47b7fc9d8c74dccf0b" "00000000" "00000000"
                         "a994230b5e097d488d48719ecd4d78ca" + "00" * 16)
    mbr = H.mbr_partition_device(0xDDBA6BBB, MiB)
    assert mbr.hex() == ("00" * 16 + "06000000" "00000000" "48000000" "00000000"
                         "0000100000000000" "0000000000000000" "00000000" "01000000"
                         "bb6bbadd" + "00" * 12 + "00" * 16)
    assert H.boot_device() == bytes(16) + struct.pack("<IIII", 5, 0, 72, 0) + bytes(56)


@pytest.mark.parametrize("store,obj,builder", [
    ("bcd/regipy_win10_uefi_BCD", "{733b62e5-f608-11eb-825c-c112f60133ab}",
     lambda: H.gpt_partition_device("8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b", "0b2394a9-095e-487d-8d48-719ecd4d78ca")),
    ("bcd/windeploy_win10_bios_mbr_BCD", "{b2721d73-1db4-4c62-bf78-c548a880142d}",
     lambda: H.mbr_partition_device(0xDDBA6BBB, MiB)),
])
def test_our_devices_equal_real_ones(store, obj, builder):
    real = Hive(need(store)).get(f"Objects\\{obj}\\Elements\\11000001", "Element").data
    assert builder() == real


def test_layout_matches_the_real_uefi_store(sample_hives):
    """Every well-known object the real Windows 10 UEFI store has, ours has with the same type and
    the same inherit list; the loader and resume objects carry the same element codes and more."""
    real = Hive(need("bcd/regipy_win10_uefi_BCD"))
    ours = Hive(sample_hives.healthy_bcd("gen2"))
    for guid in C.ALIAS_OF_GUID:
        if real.find(f"Objects\\{guid}") is None:
            continue
        assert ours.find(f"Objects\\{guid}") is not None, C.ALIAS_OF_GUID[guid]
        assert ours.get_value(f"Objects\\{guid}\\Description", "Type") == real.get_value(f"Objects\\{guid}\\Description", "Type")
        r, o = _element(real, guid, C.INHERIT), _element(ours, guid, C.INHERIT)
        assert r == o, C.ALIAS_OF_GUID[guid]
    real_loader = {int(k, 16) for k in real.child_names("Objects\\{733b62e5-f608-11eb-825c-c112f60133ab}\\Elements")}
    ours_loader = {int(k, 16) for k in ours.child_names(f"Objects\\{LOADER}\\Elements")}
    # WinRE (recoverysequence) and Win10-client-only elements aside, the same elements.
    assert real_loader - ours_loader <= {0x14000008, 0x15000066, 0x16000060, 0x16000009}
    assert {0x11000001, 0x12000002, 0x12000004, 0x12000005, 0x14000006, 0x21000001, 0x22000002,
            0x23000003, 0x25000020, 0x250000c2} <= ours_loader


def test_bcd_model_decodes_every_element(sample_hives):
    from rescue.bcd import model

    for gen in ("gen1", "gen2"):
        for which in ("broken", "healthy"):
            store = model.BcdStore.open(getattr(sample_hives, f"{which}_bcd")(gen))
            bad = [(o.identifier, e.code_hex, e.error) for o in store.objects for e in o.elements if e.error]
            assert bad == []


def test_extra_loaders_and_options(sample_hives):
    ids = identity("two-windows")
    dev2 = H.gpt_partition_device("11111111-2222-4333-8444-555555555555", ids.disk_guid)
    h = Hive(sample_hives.bcd(generation="gen2", disk=ids, extra_loaders=[(B.SECOND_LOADER_GUID, "Second", dev2)],
                              ems=True, azure_prepared=False, bad_memory_pfns=[0x1234]))
    assert h.get_value(f"Objects\\{C.GUID_BOOTMGR}\\Elements\\24000001", "Element") == [LOADER, B.SECOND_LOADER_GUID]
    assert _element(h, B.SECOND_LOADER_GUID, C.OSDEVICE) == (V.REG_BINARY, dev2)
    assert _element(h, B.SECOND_LOADER_GUID, C.OSLOADER_EMS) == (V.REG_BINARY, b"\x01")
    assert _element(h, LOADER, B.BOOTSTATUSPOLICY) is None and _element(h, C.GUID_BOOTMGR, B.DISPLAYBOOTMENU) is None
    assert _element(h, C.GUID_BADMEMORY, C.BADMEMORYLIST) == (V.REG_BINARY, struct.pack("<Q", 0x1234))


def test_dirty_helpers(tmp_path, sample_hives):
    p = sample_hives.system()
    before = read_header(p)
    H.make_dirty(p)
    after = read_header(p)
    assert after.dirty and after.checksum_ok
    assert after.primary_sequence == before.secondary_sequence + 1
    log = tmp_path / "SYSTEM.LOG1"
    H.synthetic_log(p, log)
    lh = read_header(log)
    assert lh.file_type == 6 and lh.checksum_ok and lh.primary_sequence == after.primary_sequence
    assert Hive(p).get_value("Select", "Current") == 1      # still readable by hivex


# --- the shared fixtures themselves ---------------------------------------------------------------
def test_cli_fixture_captures_output_and_exit_code(cli, tmp_path):
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("rescue ") and r.err == ""
    missing = cli("inspect", tmp_path / "nothing.vhd")
    assert missing.code == 3 and "does not exist" in missing.err and "Traceback" not in missing.err


def test_sample_hives_fixture_names_files_apart(sample_hives):
    a, b = sample_hives.system(), sample_hives.system(current=2)
    assert a.name == "SYSTEM" and b.name == "SYSTEM-2" and a.parent == b.parent
    assert Hive(b).get_value("Select", "Current") == 2
