"""The sample BCD store: the system store bcdboot makes for one Windows install, object by object as
in realdata/bcd/regipy_win10_uefi_BCD (Gen2) and windeploy_win10_bios_mbr_BCD /
galton_win7_bios_mbr_BCD (Gen1), with the Azure image preparation settings (Microsoft, "Prepare a
Windows VHD or VHDX to upload to Azure": recoveryenabled Off, bootstatuspolicy IgnoreAllFailures,
integrityservices, `{bootmgr}` displaybootmenu/timeout 5/bootems, `/ems {current} ON`,
`/emssettings EMSPORT:1 EMSBAUDRATE:115200`). Encodings per BCD-REFERENCE.md §6: integers 8 bytes
LE, booleans 1 byte, objects REG_SZ "{guid}" lower case, object lists REG_MULTI_SZ, devices the
88-byte partition structure. The registry hives are rescue.samples.hives.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Sequence

from rescue.bcd import constants as C
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.samples.hives import DiskIds, _dword, _new_hive, _sz

# Element codes the store needs that rescue.bcd.constants names only in its name tables
# (GC-EL names; codes checked against the real stores, BCD-REFERENCE.md §3).
LOCALE = 0x12000005
RECOVERYENABLED = 0x16000009
BADMEMORYACCESS = 0x1600000B
DEBUGTYPE = 0x15000011
INTEGRITYSERVICES = 0x1500004B
ALLOWEDINMEMORYSETTINGS = 0x17000077
BOOTMGR_RESUMEOBJECT = 0x23000006
OSLOADER_RESUMEOBJECT = 0x23000003
TOOLSDISPLAYORDER = 0x24000010
DISPLAYBOOTMENU = 0x26000020       # in {bootmgr}
NX = 0x25000020                    # in an OS loader: 0 OptIn, 1 OptOut, 2 AlwaysOff, 3 AlwaysOn
BOOTMENUPOLICY = 0x250000C2        # 0 Legacy, 1 Standard
BOOTSTATUSPOLICY = 0x250000E0      # 1 IgnoreAllFailures
SAFEBOOT = 0x25000080              # 0 Minimal, 1 Network, 2 DsRepair
SAFEBOOTALTERNATESHELL = 0x26000081
RESUME_BOOTMENUPOLICY = 0x25000008
HYPERVISORDEBUGTYPE, HYPERVISORDEBUGPORT, HYPERVISORBAUDRATE = 0x250000F3, 0x250000F4, 0x250000F5

# Fixed GUIDs of the non-well-known objects in our stores (bcdedit makes random ones per machine;
# fixed ones let tests name them). 00155d is Hyper-V's MAC prefix, a nod to where Azure VMs run.
LOADER_GUID = "{0ee1c3a2-9f4b-11ee-8c1a-00155d010203}"
RESUME_GUID = "{0ee1c3a1-9f4b-11ee-8c1a-00155d010203}"
SECOND_LOADER_GUID = "{0ee1c3a3-9f4b-11ee-8c1a-00155d010203}"

# --- BCD -----------------------------------------------------------------------------------------
def _element_value(code: int, value) -> tuple[int, bytes]:
    """(registry type, data) for an element value, chosen by the element's format (§2, §6)."""
    fmt = C.element_format(code)
    if fmt == C.FMT_DEVICE:
        return V.REG_BINARY, bytes(value)
    if fmt in (C.FMT_STRING, C.FMT_OBJECT):
        text = value.lower() if fmt == C.FMT_OBJECT else value
        return V.REG_SZ, V.encode_sz(text)
    if fmt == C.FMT_OBJECT_LIST:
        return V.REG_MULTI_SZ, V.encode_multi_sz([g.lower() for g in value])
    if fmt == C.FMT_INTEGER:
        return V.REG_BINARY, struct.pack("<Q", int(value))
    if fmt == C.FMT_BOOLEAN:
        return V.REG_BINARY, b"\x01" if value else b"\x00"
    if fmt == C.FMT_INTEGER_LIST:
        vals = list(value)
        if not vals:
            raise ValueError("an integer list element needs at least one value")
        return V.REG_BINARY, b"".join(struct.pack("<Q", int(v)) for v in vals)
    raise ValueError(f"element 0x{code:08x} has unknown format {fmt}")


class _Store:
    def __init__(self, h: Hive):
        self.h = h

    def obj(self, guid: str, type_: int, elements: Sequence[tuple[int, object]]) -> None:
        base = f"Objects\\{guid.lower()}"
        _dword(self.h, f"{base}\\Description", "Type", type_)
        self.h.ensure_key(f"{base}\\Elements")
        for code, value in elements:
            if value is None:
                continue
            t, data = _element_value(code, value)
            self.h.set(f"{base}\\Elements\\{C.key_name(code)}", "Element", t, data)


def build_bcd_hive(path: str | Path, *, generation: str = "gen2", disk: DiskIds | None = None,
                   description: str = "Windows Server", locale: str = "en-US",
                   bad_memory_pfns: Sequence[int] | None = None, ems: bool = False,
                   bootems: bool = False, bootmgr_bootems: bool = False,
                   emssettings: tuple[int, int] | None = None, timeout: int = 30,
                   azure_prepared: bool = True,
                   extra_loaders: Sequence[tuple[str, str, bytes]] = (),
                   loader_guid: str = LOADER_GUID, resume_guid: str = RESUME_GUID,
                   loader_device: bytes | None = None, bootmgr: bool = True,
                   default_guid: str | None = None, safeboot: int | None = None,
                   safeboot_alternateshell: bool = False, ignore_failures: bool = True) -> Path:
    """Write the system BCD store bcdboot makes for one Windows install.

    `disk`: where the boot manager (ESP / System Reserved) and C: are; defaults to the sample
    disks' identity (rescue.samples.disks) for that generation.
    `bad_memory_pfns`: badmemorylist (0x1700000a) on {badmemory}, n x 8-byte LE page frame numbers.
    `ems`: the default loader's `ems` (0x260000b0) = Yes; False leaves it absent (as in installed
    systems' stores). `bootems`: {emssettings} bootems (0x16000020, present in every real store,
    00/01). `bootmgr_bootems`: `bcdedit /set {bootmgr} bootems yes`. `emssettings`: (port, baud) ->
    emsport 0x15000022 / emsbaudrate 0x15000023 on {emssettings}. `azure_prepared`: add the settings
    Azure's VHD preparation makes (recoveryenabled No, bootstatuspolicy IgnoreAllFailures,
    integrityservices Enable, {bootmgr} displaybootmenu Yes). `extra_loaders`: more
    (guid, description, osdevice) OS loaders, listed after the default in displayorder.
    """
    if generation not in ("gen1", "gen2"):
        raise ValueError("generation must be gen1 or gen2")
    if disk is None:
        from rescue.samples.disks import default_ids
        disk = default_ids(generation)
    gen2 = generation == "gen2"
    tail = ("\\Device\\HarddiskVolume1\\EFI\\Microsoft\\Boot\\BCD" if gen2
            else "\\Device\\HarddiskVolume1\\Boot\\BCD")
    # The base block keeps the last 31 characters of the hive's path (as in the real stores).
    h = _new_hive(path, "NewStoreRoot", tail[-31:], 3)
    _sz(h, "Description", "KeyName", "BCD00000000")
    _dword(h, "Description", "System", 1)
    _dword(h, "Description", "TreatAsSystem", 1)
    s = _Store(h)
    sysdev, osdev = disk.system_device(), disk.os_device()
    ext = "efi" if gen2 else "exe"
    loaders = [default_guid or loader_guid] + [g for g, _, _ in extra_loaders]

    if bootmgr:
        s.obj(C.GUID_BOOTMGR, C.TYPE_BOOTMGR, [
            (C.DEVICE, sysdev),
            (C.PATH, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi" if gen2 else None),
            (C.DESCRIPTION, "Windows Boot Manager"),
            (LOCALE, locale),
            (C.INHERIT, [C.GUID_GLOBALSETTINGS]),
            (INTEGRITYSERVICES, 1 if azure_prepared else None),
            (C.BOOTEMS, True if bootmgr_bootems else None),
            (C.BOOTMGR_DEFAULT, default_guid or loader_guid),
            (BOOTMGR_RESUMEOBJECT, resume_guid),
            (C.DISPLAYORDER, loaders),
            (TOOLSDISPLAYORDER, [C.GUID_MEMDIAG]),
            (C.TIMEOUT, timeout),
            (DISPLAYBOOTMENU, True if azure_prepared else None),
        ])
    if gen2:
        # UEFI system stores mirror the firmware boot order in {fwbootmgr} (regipy_win10_uefi_BCD).
        s.obj(C.GUID_FWBOOTMGR, C.TYPE_FWBOOTMGR, [(C.DISPLAYORDER, [C.GUID_BOOTMGR]), (C.TIMEOUT, 0)])

    def loader(guid: str, desc: str, dev: bytes, *, resume: str | None, with_ems: bool,
               faults: bool = False) -> None:
        recovery_loop = azure_prepared and not ignore_failures
        s.obj(guid, C.TYPE_OSLOADER, [
            (C.DEVICE, dev),
            (C.PATH, f"\\Windows\\system32\\winload.{ext}"),
            (C.DESCRIPTION, desc),
            (LOCALE, locale),
            (C.INHERIT, [C.GUID_BOOTLOADERSETTINGS]),
            (INTEGRITYSERVICES, 1 if azure_prepared else None),
            (RECOVERYENABLED, (not ignore_failures) if azure_prepared else None),
            (ALLOWEDINMEMORYSETTINGS, [0x15000075]),
            (C.OSDEVICE, dev),
            (C.SYSTEMROOT, "\\Windows"),
            (OSLOADER_RESUMEOBJECT, resume),
            (NX, 1),                     # OptOut: the Windows Server default
            (BOOTMENUPOLICY, 0),         # Legacy: the Windows Server default
            (BOOTSTATUSPOLICY, 1 if azure_prepared and not recovery_loop else None),
            (C.OSLOADER_EMS, True if with_ems else None),
            (SAFEBOOT, safeboot if faults else None),
            (SAFEBOOTALTERNATESHELL, True if faults and safeboot_alternateshell else None),
        ])

    loader(loader_guid, description, loader_device or osdev, resume=resume_guid, with_ems=ems, faults=True)
    for guid, desc, dev in extra_loaders:
        loader(guid, desc, dev, resume=None, with_ems=ems)

    s.obj(resume_guid, C.TYPE_RESUME, [
        (C.DEVICE, osdev),
        (C.PATH, f"\\Windows\\system32\\winresume.{ext}"),
        (C.DESCRIPTION, "Windows Resume Application"),
        (LOCALE, locale),
        (C.INHERIT, [C.GUID_RESUMELOADERSETTINGS]),
        (ALLOWEDINMEMORYSETTINGS, [0x15000075]),
        (C.OSDEVICE, osdev),                         # filedevice in a resume object
        (C.SYSTEMROOT, "\\hiberfil.sys"),            # filepath in a resume object
        (RESUME_BOOTMENUPOLICY, 0),
        (0x26000006, False),                         # debugoptionenabled
    ])
    s.obj(C.GUID_MEMDIAG, C.TYPE_MEMDIAG, [
        (C.DEVICE, sysdev),
        (C.PATH, "\\EFI\\Microsoft\\Boot\\memtest.efi" if gen2 else "\\boot\\memtest.exe"),
        (C.DESCRIPTION, "Windows Memory Diagnostic"),
        (LOCALE, locale),
        (C.INHERIT, [C.GUID_GLOBALSETTINGS]),
        (BADMEMORYACCESS, True),
    ])
    s.obj(C.GUID_BADMEMORY, C.TYPE_INHERIT_ANY, [
        (C.BADMEMORYLIST, list(bad_memory_pfns) if bad_memory_pfns else None),
    ])
    s.obj(C.GUID_EMSSETTINGS, C.TYPE_INHERIT_ANY, [
        (C.BOOTEMS, bool(bootems)),
        (C.EMSPORT, emssettings[0] if emssettings else None),
        (C.EMSBAUDRATE, emssettings[1] if emssettings else None),
    ])
    s.obj(C.GUID_GLOBALSETTINGS, C.TYPE_INHERIT_ANY, [
        (C.INHERIT, [C.GUID_DBGSETTINGS, C.GUID_EMSSETTINGS, C.GUID_BADMEMORY]),
    ])
    s.obj(C.GUID_BOOTLOADERSETTINGS, C.TYPE_INHERIT_OSLOADER, [
        (C.INHERIT, [C.GUID_GLOBALSETTINGS, C.GUID_HYPERVISORSETTINGS]),
    ])
    s.obj(C.GUID_DBGSETTINGS, C.TYPE_INHERIT_ANY, [(DEBUGTYPE, 4)])     # Local, as Win10-family stores
    s.obj(C.GUID_RESUMELOADERSETTINGS, C.TYPE_INHERIT_RESUME, [(C.INHERIT, [C.GUID_GLOBALSETTINGS])])
    s.obj(C.GUID_HYPERVISORSETTINGS, C.TYPE_INHERIT_OSLOADER, [
        (HYPERVISORDEBUGTYPE, 0), (HYPERVISORDEBUGPORT, 1), (HYPERVISORBAUDRATE, 115200),
    ])
    h.commit()
    return Path(path)


# --- BCD-Template --------------------------------------------------------------------------------
def _tpl_int(n: int) -> bytes:
    """Integers as Microsoft's templates store them: the shortest little-endian form (1-3 bytes)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "little")


def _tpl_list(*codes: int) -> bytes:
    return b"".join(struct.pack("<Q", c) for c in codes)


def build_bcd_template(path: str | Path, *, locale: str = "en-US") -> Path:
    """Write a `\\Windows\\System32\\config\\BCD-Template` as Windows 10/Server 2016+ ships it, object
    by object and byte by byte as realdata/bcd/museum_win10_BCD-Template: root key "System",
    template-only elements (class 4: 0x45000001 device type, 0x42000002 relative path, 0x47000005
    description resource, 0x47000006 elements to migrate), 1-3 byte integers, some upper-case
    element keys, and Setup's objects bcdboot does not copy."""
    h = _new_hive(path, "System", "ws\\System32\\config\\BCD-Template", 3)
    _sz(h, "Description", "KeyName", "BCD00000000")
    B, S, M = V.REG_BINARY, V.REG_SZ, V.REG_MULTI_SZ

    def obj(guid: str, type_: int, elements: Sequence[tuple[str, int, Any]]) -> None:
        base = f"Objects\\{guid}"
        _dword(h, f"{base}\\Description", "Type", type_)
        h.ensure_key(f"{base}\\Elements")
        for key, t, value in elements:
            data: bytes = V.encode_sz(value) if t == S else V.encode_multi_sz(list(value)) if t == M else value
            h.set(f"{base}\\Elements\\{key}", "Element", t, data)

    inh = [("14000006", M, [C.GUID_GLOBALSETTINGS])]
    mem_settings = ("17000077", B, _tpl_list(0x15000075))
    migrate_loader = ("47000006", B, _tpl_list(0x16000010, 0x260000A0, 0x260000F2, 0x16000049, 0x25000115, 0x1600007E))

    def resume(guid: str, ext: str, isolated: bool) -> None:
        obj(guid, C.TYPE_RESUME, [
            ("12000004", S, "Windows Resume Application"), ("12000005", S, locale),
            ("14000006", M, [C.GUID_RESUMELOADERSETTINGS]), *([("16000060", B, b"\x01")] if isolated else []),
            mem_settings, ("22000002", S, "\\hiberfil.sys"), ("25000008", B, b"\x01"),
            ("42000002", S, f"\\system32\\winresume.{ext}"), ("45000001", B, _tpl_int(2)),
            ("46000004", B, b"\x01")])

    def loader(guid: str, ext: str, resume_guid: str | None, *, setup: bool, nx: int, isolated: bool,
               resource: int) -> None:
        obj(guid, C.TYPE_OSLOADER, [
            ("12000005", S, locale), ("14000006", M, [C.GUID_BOOTLOADERSETTINGS]),
            *([("16000060", B, b"\x01")] if isolated else []), mem_settings,
            ("22000002", S, "\\windows"), *([("23000003", S, resume_guid)] if resume_guid else []),
            ("25000020", B, _tpl_int(nx)), ("250000c2", B, _tpl_int(1)),
            *([("26000022", B, b"\x01")] if setup else []),
            ("42000002", S, f"\\system32\\winload.{ext}"), *([("42000003", S, "\\boot.wim")] if setup else []),
            ("45000001", B, _tpl_int(2)), ("47000005", B, _tpl_list(0x12000004, resource)),
            *([] if setup else [migrate_loader])])

    resume("{0c334284-9a41-4de1-99b3-a7e87e8ff07e}", "efi", True)
    resume("{98b02a23-0674-4ce7-bdad-e0a15a8ff97b}", "exe", False)
    obj(C.GUID_EMSSETTINGS, C.TYPE_INHERIT_ANY, [("16000020", B, b"\x00")])
    obj(C.GUID_RESUMELOADERSETTINGS, C.TYPE_INHERIT_RESUME, inh)
    obj(C.GUID_DBGSETTINGS, C.TYPE_INHERIT_ANY, [("15000011", B, _tpl_int(4)), ("47000006", B, _tpl_list(0x46000007))])
    obj(C.GUID_NTLDR, C.TYPE_NTLDR, [("12000002", S, "\\ntldr"), ("45000001", B, _tpl_int(1)),
                                     ("47000005", B, _tpl_list(0x12000004, 6))])
    obj(C.GUID_BADMEMORY, C.TYPE_INHERIT_ANY, [])
    obj(C.GUID_BOOTLOADERSETTINGS, C.TYPE_INHERIT_OSLOADER,
        [("14000006", M, [C.GUID_GLOBALSETTINGS, C.GUID_HYPERVISORSETTINGS])])
    loader("{7254a080-1510-4e85-ac0f-e7fb3d444736}", "efi", None, setup=True, nx=1, isolated=True, resource=1)
    obj(C.GUID_GLOBALSETTINGS, C.TYPE_INHERIT_ANY,
        [("14000006", M, [C.GUID_DBGSETTINGS, C.GUID_EMSSETTINGS, C.GUID_BADMEMORY])])
    obj(C.GUID_HYPERVISORSETTINGS, C.TYPE_INHERIT_OSLOADER, [
        ("250000F3", B, _tpl_int(0)), ("250000F4", B, _tpl_int(1)), ("250000F5", B, _tpl_int(115200)),
        ("47000006", B, _tpl_list(0x46000007))])
    obj(C.GUID_BOOTMGR, C.TYPE_BOOTMGR, [
        ("12000002", S, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"), ("12000004", S, "Windows Boot Manager"),
        ("12000005", S, locale), *inh, ("23000003", S, "{cbd971bf-b7b8-4885-951a-fa03044f5d71}"),
        ("25000004", B, _tpl_int(30)), ("45000001", B, _tpl_int(1)),
        ("47000006", B, _tpl_list(0x16000010, 0x26000020, 0x25000004, 0x1600007E))])
    loader("{a1943bbc-ea85-487c-97c7-c9ede908a38a}", "exe", "{98b02a23-0674-4ce7-bdad-e0a15a8ff97b}",
           setup=False, nx=0, isolated=False, resource=3)
    loader("{b012b84d-c47c-4ed5-b722-c0c42163e569}", "efi", "{0c334284-9a41-4de1-99b3-a7e87e8ff07e}",
           setup=False, nx=0, isolated=True, resource=3)
    obj(C.GUID_MEMDIAG, C.TYPE_MEMDIAG, [
        ("12000002", S, "\\boot\\memtest.exe"), ("12000005", S, locale), *inh, ("1600000B", B, b"\x01"),
        ("45000001", B, _tpl_int(1)), ("47000005", B, _tpl_list(0x12000004, 2))])
    loader("{cbd971bf-b7b8-4885-951a-fa03044f5d71}", "exe", None, setup=True, nx=1, isolated=False, resource=1)
    h.commit()
    return Path(path)
