"""A new system BCD store, made offline the way `bcdboot C:\\Windows /s S:` makes one.

bcdboot creates the store from the installed Windows' own `\\Windows\\System32\\config\\BCD-Template`
(Microsoft, "BCDBoot command-line options": "BCDBoot creates a new BCD store and initializes the BCD
boot-environment files on the system partition, including the Windows Boot Manager, using the
%WINDIR%\\System32\\Config\\BCD-Template file"). What it takes from the template, and what it fills
in, is read off the template itself and the stores bcdboot made (BCD-REFERENCE.md §1-§6; the real
template `museum_win10_BCD-Template` against the bcdboot-made `regipy_win10_uefi_BCD`):

* Settings objects are copied whole: `{globalsettings}`, `{dbgsettings}`, `{emssettings}`,
  `{badmemory}`, `{bootloadersettings}`, `{hypervisorsettings}`, `{resumeloadersettings}`.
* `{bootmgr}` and `{memdiag}` are copied and given the system partition as `device` (template
  element 0x45000001 "device type" = 1); Gen1 `{bootmgr}` has no `path` (the PCAT boot sector loads
  \\bootmgr itself) and `{memdiag}` runs `\\boot\\memtest.exe`; Gen2 runs `\\EFI\\Microsoft\\Boot\\`
  bootmgfw.efi / memtest.efi.
* One Windows Boot Loader is made from the OS target template (`{b012b84d-...}` EFI,
  `{a1943bbc-...}` PCAT; device type 2 = the Windows partition) with `device`/`osdevice` the
  Windows partition, `path` = `\\Windows` + the template's relative path (0x42000002),
  `systemroot` `\\Windows`, and its resume object made from the template's resume object the same
  way (`filedevice` the Windows partition, `filepath` `\\hiberfil.sys`).
* `{bootmgr}` gets `default` and `resumeobject` (the new loader and resume object), `displayorder`
  (the loader), `toolsdisplayorder` (`{memdiag}`); Gen2 stores also hold `{fwbootmgr}` listing
  `{bootmgr}` (bcdboot mirrors the firmware's boot order there; the firmware itself reads NVRAM,
  which an offline repair cannot reach: the fallback `\\EFI\\Boot\\bootx64.efi` covers it).
* Template-only elements (class 4: device type, relative path, elements to migrate) are dropped;
  integers are written 8 bytes wide and element keys in lower case, as bcdboot writes them (the
  template's own 1-3 byte integers and upper-case keys are not copied as they are).
* Setup's objects (`{7254a080-...}`, `{cbd971bf-...}` Windows Setup, `{ntldr}`) are not copied.

The new loader's and resume object's GUIDs are random in bcdboot; here they are derived from the
Windows partition's device bytes (uuid5), so a dry run and the run after it plan the same store.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from rescue.bcd import constants as C
from rescue.errors import CorruptHiveError, RescueError
from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V

# Microsoft's fixed template objects (GUID_WINDOWS_OS_TARGET_TEMPLATE_EFI / _PCAT and their resume
# objects, as named in the template's own 0x23000003 of each loader).
OS_TARGET_TEMPLATE = {"gen2": "{b012b84d-c47c-4ed5-b722-c0c42163e569}",
                      "gen1": "{a1943bbc-ea85-487c-97c7-c9ede908a38a}"}
SETTINGS_OBJECTS = (C.GUID_EMSSETTINGS, C.GUID_RESUMELOADERSETTINGS, C.GUID_DBGSETTINGS, C.GUID_BADMEMORY,
                    C.GUID_BOOTLOADERSETTINGS, C.GUID_GLOBALSETTINGS, C.GUID_HYPERVISORSETTINGS)
TEMPLATE_DEVICE_TYPE = 0x45000001        # 1: the system (boot) partition, 2: the Windows partition
TEMPLATE_RELATIVE_PATH = 0x42000002      # "\system32\winload.efi", below the Windows folder
LOCALE = 0x12000005
RESUMEOBJECT = 0x23000003                # in an OS loader: its resume object
BOOTMGR_RESUMEOBJECT = 0x23000006
TOOLSDISPLAYORDER = 0x24000010
NAMESPACE = uuid.UUID("5d6c0f3e-6f7a-4a55-9a43-3b0b1e7c2d10")   # for the derived object GUIDs

STORE_PATH = {"gen2": "\\EFI\\Microsoft\\Boot\\BCD", "gen1": "\\Boot\\BCD"}
TEMPLATE_PATH = "\\Windows\\System32\\config\\BCD-Template"


class TemplateError(CorruptHiveError):
    """The BCD-Template cannot be read or lacks an object bcdboot needs."""


@dataclass(frozen=True)
class NewElement:
    code: int
    reg_type: int
    data: bytes


@dataclass(frozen=True)
class NewObject:
    guid: str                            # "{guid}", lower case
    type: int
    elements: tuple[NewElement, ...]

    def element(self, code: int) -> NewElement | None:
        return next((e for e in self.elements if e.code == code), None)


@dataclass(frozen=True)
class TemplateObject:
    guid: str
    type: int
    elements: Mapping[int, tuple[int, bytes]]    # code -> (registry type, raw data)


@dataclass(frozen=True)
class BootTarget:
    """What the new store points at: the firmware generation, the system partition's and the
    Windows partition's BCD device bytes (rescue.bcd.devices.partition_device), the loader's
    description ("Windows Server", as bcdboot names it), and the Windows folder on its volume."""

    generation: str                      # gen1 | gen2
    system_device: bytes
    os_device: bytes
    description: str
    windows_dir: str = "\\Windows"

    @property
    def loader_guid(self) -> str:
        return "{" + str(uuid.uuid5(NAMESPACE, "loader/" + self.os_device.hex())) + "}"

    @property
    def resume_guid(self) -> str:
        return "{" + str(uuid.uuid5(NAMESPACE, "resume/" + self.os_device.hex())) + "}"


def read_template(path: Path) -> dict[str, TemplateObject]:
    """Every object of a BCD-Template hive with its raw elements (class-4 template elements too)."""
    try:
        with Hive(path) as h:
            objects = h.find("Objects")
            if objects is None:
                raise TemplateError(f"{path.name} has no Objects key: it is not a BCD store.")
            out: dict[str, TemplateObject] = {}
            for node in h.children(objects):
                name = h.name(node).lower()
                desc = h.get(f"Objects\\{name}\\Description", "Type")
                if desc is None or desc.type != V.REG_DWORD:
                    continue
                elements: dict[int, tuple[int, bytes]] = {}
                enode = h.find(f"Objects\\{name}\\Elements")
                for el in (h.children(enode) if enode is not None else ()):
                    key = h.name(el)
                    try:
                        code = int(key, 16)
                    except ValueError:
                        continue
                    val = h.get(f"Objects\\{name}\\Elements\\{key}", "Element")
                    if val is not None:
                        elements[code] = (val.type, val.data)
                out[name] = TemplateObject(name, struct.unpack("<I", desc.data[:4])[0], elements)
            return out
    except TemplateError:
        raise
    except RescueError as exc:
        raise TemplateError(f"The BCD-Template cannot be read ({exc.message})") from None


def _widen(code: int, reg_type: int, data: bytes) -> NewElement:
    """An element as bcdboot writes it: integers 8 bytes (the template's are 1-3 bytes)."""
    if C.element_format(code) == C.FMT_INTEGER and reg_type == V.REG_BINARY and len(data) < 8:
        data = data + bytes(8 - len(data))
    return NewElement(code, reg_type, data)


def _el(code: int, value) -> NewElement:
    from rescue.bcd.edit import encode

    if C.element_format(code) == C.FMT_DEVICE:
        return NewElement(code, V.REG_BINARY, bytes(value))
    t, data = encode(code, value)
    return NewElement(code, t, data)


def _copied(obj: TemplateObject, *, drop: tuple[int, ...] = ()) -> list[NewElement]:
    return [_widen(code, t, d) for code, (t, d) in sorted(obj.elements.items())
            if C.element_class(code) != 4 and code not in drop]


def _need(template: Mapping[str, TemplateObject], guid: str, what: str) -> TemplateObject:
    obj = template.get(guid)
    if obj is None:
        raise TemplateError(f"The BCD-Template has no {what} object ({guid}), which bcdboot copies.")
    return obj


def _sorted(elements: list[NewElement]) -> tuple[NewElement, ...]:
    seen: dict[int, NewElement] = {}
    for e in elements:
        seen[e.code] = e                 # a later (filled-in) value replaces the template's
    return tuple(seen[c] for c in sorted(seen))


def _text(obj: TemplateObject, code: int) -> str | None:
    got = obj.elements.get(code)
    return V.decode_sz(got[1]) if got and got[0] == V.REG_SZ else None


def system_store_objects(template: Mapping[str, TemplateObject], target: BootTarget) -> tuple[NewObject, ...]:
    """The objects of the store bcdboot makes for `target` from `template` (module docstring)."""
    gen2 = target.generation == "gen2"
    loader_t = _need(template, OS_TARGET_TEMPLATE[target.generation], "Windows Boot Loader template")
    resume_ref = _text(loader_t, RESUMEOBJECT)
    resume_t = _need(template, (resume_ref or "").lower(), "resume template")
    bootmgr_t = _need(template, C.GUID_BOOTMGR, "{bootmgr}")
    memdiag_t = _need(template, C.GUID_MEMDIAG, "{memdiag}")
    loader, resume = target.loader_guid, target.resume_guid
    windir = target.windows_dir

    bootmgr = _copied(bootmgr_t, drop=() if gen2 else (C.PATH,))
    bootmgr += [_el(C.DEVICE, target.system_device),
                _el(C.BOOTMGR_DEFAULT, loader), _el(BOOTMGR_RESUMEOBJECT, resume),
                _el(C.DISPLAYORDER, [loader]), _el(TOOLSDISPLAYORDER, [C.GUID_MEMDIAG])]
    memdiag = _copied(memdiag_t, drop=(C.PATH,))
    memdiag += [_el(C.DEVICE, target.system_device),
                _el(C.PATH, "\\EFI\\Microsoft\\Boot\\memtest.efi" if gen2 else "\\boot\\memtest.exe"),
                _el(C.DESCRIPTION, "Windows Memory Diagnostic")]
    rel = _text(loader_t, TEMPLATE_RELATIVE_PATH) or ("\\system32\\winload.efi" if gen2 else "\\system32\\winload.exe")
    osloader = _copied(loader_t, drop=(RESUMEOBJECT,))
    osloader += [_el(C.DEVICE, target.os_device), _el(C.PATH, windir + rel),
                 _el(C.DESCRIPTION, target.description), _el(C.OSDEVICE, target.os_device),
                 _el(C.SYSTEMROOT, windir), _el(RESUMEOBJECT, resume)]
    rrel = _text(resume_t, TEMPLATE_RELATIVE_PATH) or ("\\system32\\winresume.efi" if gen2 else "\\system32\\winresume.exe")
    hiberfile = _text(resume_t, C.SYSTEMROOT) or "\\hiberfil.sys"
    resume_obj = _copied(resume_t)
    resume_obj += [_el(C.DEVICE, target.os_device), _el(C.PATH, windir + rrel),
                   _el(C.OSDEVICE, target.os_device), _el(C.SYSTEMROOT, hiberfile)]
    if _text(resume_t, C.DESCRIPTION) is None:
        resume_obj.append(_el(C.DESCRIPTION, "Windows Resume Application"))

    objects = [NewObject(C.GUID_BOOTMGR, bootmgr_t.type, _sorted(bootmgr))]
    if gen2:
        objects.append(NewObject(C.GUID_FWBOOTMGR, C.TYPE_FWBOOTMGR, _sorted(
            [_el(C.DISPLAYORDER, [C.GUID_BOOTMGR]), _el(C.TIMEOUT, 0)])))
    objects += [NewObject(loader, loader_t.type, _sorted(osloader)),
                NewObject(resume, resume_t.type, _sorted(resume_obj)),
                NewObject(C.GUID_MEMDIAG, memdiag_t.type, _sorted(memdiag))]
    for guid in SETTINGS_OBJECTS:
        obj = template.get(guid)
        if obj is None:
            if guid in (C.GUID_GLOBALSETTINGS, C.GUID_BOOTLOADERSETTINGS):
                raise TemplateError(f"The BCD-Template has no {guid} object, which every boot application "
                                    "inherits.")
            continue
        objects.append(NewObject(guid, obj.type, _sorted(_copied(obj))))
    return tuple(sorted(objects, key=lambda o: o.guid))


def write_store(path: Path, objects: tuple[NewObject, ...], generation: str) -> Path:
    """Write `objects` as a new system store hive: root "NewStoreRoot", Description KeyName
    BCD00000000 / System 1 / TreatAsSystem 1, as bcdboot's stores hold (BCD-REFERENCE.md §1)."""
    tail = "\\Device\\HarddiskVolume1" + STORE_PATH[generation]
    path = Path(path)
    write_minimal_hive(path, root_name="NewStoreRoot", file_name=tail[-31:], minor_version=3)
    with Hive(path, write=True) as h:
        h.set("Description", "KeyName", V.REG_SZ, V.encode_sz("BCD00000000"))
        h.set("Description", "System", V.REG_DWORD, V.encode_dword(1))
        h.set("Description", "TreatAsSystem", V.REG_DWORD, V.encode_dword(1))
        for obj in objects:
            base = f"Objects\\{obj.guid}"
            h.set(f"{base}\\Description", "Type", V.REG_DWORD, V.encode_dword(obj.type))
            h.ensure_key(f"{base}\\Elements")
            for e in obj.elements:
                h.set(f"{base}\\Elements\\{C.key_name(e.code)}", "Element", e.reg_type, e.data)
        h.commit()
    return path


def build_system_store(path: Path, template_path: Path, target: BootTarget) -> Path:
    """Read the template, make the objects, write the store (one call for the planner)."""
    return write_store(path, system_store_objects(read_template(template_path), target), target.generation)


def loader_description(product: str | None, build: int | None) -> str:
    """The loader's description as bcdboot writes it (the template asks for the OS name, string
    resource 3 of 0x47000005): "Windows Server" on Server editions, else "Windows 10"/"Windows 11"
    (Windows 11 is build 22000 and later), else the product name."""
    p = (product or "").strip()
    if "server" in p.lower():
        return "Windows Server"
    if p.startswith("Windows 1") or not p:
        return "Windows 11" if (build or 0) >= 22000 else "Windows 10"
    return p


def partition_device(*, style: str, partition_guid: str | None = None, disk_guid: str | None = None,
                     mbr_signature: int | None = None, offset: int | None = None) -> bytes:
    """The 88-byte BCD partition device (BCD-REFERENCE.md §6): GPT = partition GUID + disk GUID,
    MBR = partition byte offset + disk signature."""
    head = bytes(16) + struct.pack("<IIII", 6, 0, 72, 0)
    if style == "gpt":
        body = (uuid.UUID(partition_guid).bytes_le + struct.pack("<II", 0, 0)
                + uuid.UUID(disk_guid).bytes_le + bytes(16))
    elif style == "mbr":
        body = struct.pack("<QQ", offset, 0) + struct.pack("<II", 0, 1) + struct.pack("<I", mbr_signature) + bytes(28)
    else:
        raise ValueError(f"no partition device for a {style} disk")
    return head + body
