"""A typed, read-only model of a BCD store (a registry hive) on the host.

`BcdStore.open(path)` reads every object and element once into frozen dataclasses; nothing here
writes (edits are plans, see rescue.bcd.edit). Decoding follows BCD-REFERENCE.md §6 and the ReactOS
boot library's reader (ROS-C `BiConvertRegistryDataToElement`): a value that reader would reject is
kept with its raw bytes and the reason, never dropped and never guessed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rescue.bcd import constants as C
from rescue.bcd.devices import Device, decode_device
from rescue.errors import CorruptHiveError, NotFoundError, UsageError
from rescue.hive import Hive
from rescue.hive import values as V

_GUID_RE = re.compile(r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")
_HEX8 = re.compile(r"^[0-9a-fA-F]{8}$")


def normalize_guid(text: str) -> str | None:
    """"{GUID}" or "GUID" in any case -> "{guid}" lower case, or None when it is not a GUID."""
    t = text.strip().lower()
    if not t.startswith("{"):
        t = "{" + t + "}"
    return t if _GUID_RE.match(t) else None


@dataclass(frozen=True)
class Element:
    code: int
    name: str                 # bcdedit's name in this object, or "custom:xxxxxxxx"
    key: str                  # the Elements subkey name as stored (some stores use upper case)
    reg_type: int | None      # None: the key has no "Element" value
    raw: bytes
    value: Any                # decoded (str, int, bool, tuple[int], "{guid}", tuple["{guid}"], Device) or None
    error: str | None = None  # why `value` is None

    @property
    def format(self) -> int:
        return C.element_format(self.code)

    @property
    def code_hex(self) -> str:
        return C.code_hex(self.code)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BcdObject:
    identifier: str                  # "{guid}", lower case
    key: str                         # the Objects subkey name as stored
    alias: str | None                # "{bootmgr}"... for well-known GUIDs, else None
    type: int | None                 # Description\Type, None when missing
    elements: tuple[Element, ...]

    @property
    def type_name(self) -> str:
        return C.object_type_name(self.type, self.alias, self.identifier)

    @property
    def type_hex(self) -> str | None:
        return None if self.type is None else f"0x{self.type:08x}"

    @property
    def is_osloader(self) -> bool:
        return self.type == C.TYPE_OSLOADER

    def element(self, code: int) -> Element | None:
        return next((e for e in self.elements if e.code == code), None)

    def value(self, code: int, default=None):
        e = self.element(code)
        return default if e is None or e.error else e.value

    @property
    def description(self) -> str | None:
        v = self.value(C.DESCRIPTION)
        return v if isinstance(v, str) else None

    def element_path(self, code: int) -> str:
        """Hive key of element `code`: the existing key's spelling, or 8 lower-case hex digits."""
        e = self.element(code)
        return f"Objects\\{self.key}\\Elements\\{e.key if e else C.key_name(code)}"


def decode_element(code: int, reg_type: int | None, raw: bytes) -> tuple[Any, str | None]:
    """(value, None) or (None, reason). Formats and registry types per BCD-REFERENCE.md §2/§6."""
    fmt = C.element_format(code)
    if reg_type is None:
        return None, "the element key has no Element value"
    want = {C.FMT_DEVICE: V.REG_BINARY, C.FMT_STRING: V.REG_SZ, C.FMT_OBJECT: V.REG_SZ,
            C.FMT_OBJECT_LIST: V.REG_MULTI_SZ, C.FMT_INTEGER: V.REG_BINARY,
            C.FMT_BOOLEAN: V.REG_BINARY, C.FMT_INTEGER_LIST: V.REG_BINARY}.get(fmt)
    if want is None:
        return None, f"element format {fmt} is unknown"
    if reg_type != want:
        return None, f"stored as {V.type_name(reg_type)}, expected {V.type_name(want)} for a {C.FORMAT_NAMES[fmt]}"
    if fmt == C.FMT_STRING:
        return V.decode_sz(raw), None
    if fmt == C.FMT_OBJECT:
        guid = normalize_guid(V.decode_sz(raw))
        return (guid, None) if guid else (None, "not a GUID")
    if fmt == C.FMT_OBJECT_LIST:
        items = V.decode_multi_sz(raw)
        guids = [normalize_guid(s) for s in items]
        if any(g is None for g in guids):
            return None, "an entry is not a GUID"
        return tuple(guids), None
    if fmt == C.FMT_INTEGER:
        # Any length up to 8, zero-extended (ROS-C); Microsoft's media stores use 1-3 bytes.
        if not 1 <= len(raw) <= 8:
            return None, f"{len(raw)} bytes is not an integer (1 to 8 bytes)"
        return int.from_bytes(raw, "little"), None
    if fmt == C.FMT_BOOLEAN:
        if len(raw) != 1:  # ROS-C checks sizeof(BOOLEAN) = 1
            return None, f"{len(raw)} bytes is not a boolean (1 byte)"
        return raw != b"\x00", None
    if fmt == C.FMT_INTEGER_LIST:
        if not raw or len(raw) % 8:
            return None, f"{len(raw)} bytes is not a list of 8-byte integers"
        return tuple(v for (v,) in struct.iter_unpack("<Q", raw)), None
    dev = decode_device(raw)
    return dev, None


class BcdStore:
    """Every object of one BCD hive, read once. Use `BcdStore.open(path)`."""

    def __init__(self, path: Path, root_name: str, objects: tuple[BcdObject, ...], name: str | None = None):
        self.path = path
        self.name = name or path.name     # how messages name the store (its path on the disk)
        self.root_name = root_name
        self.objects = objects
        self._by_id = {o.identifier: o for o in objects}

    @classmethod
    def open(cls, path: str | Path, *, name: str | None = None) -> "BcdStore":
        """Read the store at `path` (a host file); `name` is how messages call it (default: file name)."""
        path = Path(path)
        name = name or path.name
        try:
            hive = Hive(path)
        except CorruptHiveError as exc:
            m = re.search(r"\(([^()]*)\)\.?$", exc.message)
            detail = f" ({m.group(1)})" if m else ""
            raise CorruptHiveError(
                f"{name} cannot be read as a BCD store: it is not a registry hive or the hive is "
                f"damaged{detail}; restore it from a backup (rescue undo) or rebuild it with bcdboot.") from None
        with hive:
            return cls._read(path, hive, name)

    @classmethod
    def _read(cls, path: Path, hive: Hive, name: str) -> "BcdStore":
        objects_node = hive.find("Objects")
        if objects_node is None:
            raise CorruptHiveError(
                f"{name} is a registry hive but not a BCD store (it has no Objects key); give the "
                "BCD file (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD) or the disk itself.")
        objects = []
        for onode in hive.children(objects_node):
            key = hive.name(onode)
            ident = normalize_guid(key)
            if ident is None:
                ident = key.lower()   # kept and shown as stored; never dropped
            type_ = None
            for sub in hive.children(onode):
                if hive.name(sub).lower() == "description":
                    for v in hive.values(sub):
                        if v.name.lower() == "type" and v.type == V.REG_DWORD and len(v.data) >= 4:
                            type_ = struct.unpack_from("<I", v.data)[0]
            elements = []
            els_node = next((s for s in hive.children(onode) if hive.name(s).lower() == "elements"), None)
            for enode in hive.children(els_node) if els_node is not None else []:
                ekey = hive.name(enode)
                if not _HEX8.match(ekey):
                    continue  # not an element; bcdedit ignores such keys too
                code = int(ekey, 16)
                val = next((v for v in hive.values(enode) if v.name.lower() == "element"), None)
                reg_type = None if val is None else val.type
                raw = b"" if val is None else val.data
                value, error = decode_element(code, reg_type, raw)
                elements.append(Element(code, C.element_name(code, type_), ekey, reg_type, raw, value, error))
            elements.sort(key=lambda e: e.code)
            objects.append(BcdObject(ident, key, C.ALIAS_OF_GUID.get(ident), type_, tuple(elements)))
        return cls(path, hive.root_name(), tuple(objects), name)

    # --- lookups --------------------------------------------------------------------------
    def get(self, identifier: str) -> BcdObject | None:
        return self._by_id.get(identifier)

    @property
    def bootmgr(self) -> BcdObject | None:
        return self.get(C.GUID_BOOTMGR)

    @property
    def default_id(self) -> str | None:
        """{default}, offline: the GUID in {bootmgr}'s element 0x23000003 (BCD-REFERENCE.md §5)."""
        bm = self.bootmgr
        v = bm.value(C.BOOTMGR_DEFAULT) if bm else None
        return v if isinstance(v, str) else None

    def resolve(self, text: str) -> str:
        """An identifier as bcdedit accepts it ({guid}, an alias, {default}) -> "{guid}".
        Raises UsageError for {current} or a malformed id; the object need not exist."""
        t = text.strip().lower()
        if t in ("{current}", "current", C.GUID_CURRENT):
            raise UsageError(
                "{current} means the running Windows, which does not exist offline: use {default} (the "
                "entry the boot manager starts) or the loader's GUID from `rescue bcd enum`.")
        if t in ("{default}", "default", C.GUID_DEFAULT):
            d = self.default_id
            if d is None:
                raise NotFoundError(f"{self.name} has no default entry ({{bootmgr}} has no default element).")
            return d
        if not t.startswith("{") and "{" + t + "}" in C.ALIAS_INPUT:
            t = "{" + t + "}"
        if t in C.ALIAS_INPUT:
            return C.ALIAS_INPUT[t]
        guid = normalize_guid(t)
        if guid is None:
            raise UsageError(f"{text!r} is not a BCD identifier: give a GUID in braces, an alias such as "
                             "{bootmgr} or {badmemory}, or {default}.")
        return guid

    def object(self, text: str) -> BcdObject:
        """The object an identifier names; NotFoundError when the store has no such object."""
        ident = self.resolve(text)
        obj = self.get(ident)
        if obj is None:
            shown = text if text.strip().lower() in C.ALIAS_INPUT else ident
            raise NotFoundError(f"The store {self.name} has no object {shown} (list them with "
                                "`rescue bcd enum TARGET all`).")
        return obj

    def display_id(self, ident: str) -> str:
        """How bcdedit shows an identifier: its alias, {default} for the default entry, else the GUID."""
        if ident in C.ALIAS_OF_GUID:
            return C.ALIAS_OF_GUID[ident]
        if ident == self.default_id:
            return "{default}"
        return ident

    # --- selections like bcdedit /enum ---------------------------------------------------
    def active(self) -> list[BcdObject]:
        """bcdedit /enum ACTIVE: the boot manager, then the entries of its display order."""
        out: list[BcdObject] = []
        bm = self.bootmgr
        if bm is None:
            return out
        out.append(bm)
        for ident in bm.value(C.DISPLAYORDER, ()) or ():
            obj = self.get(ident)
            if obj is not None and obj not in out:
                out.append(obj)
        return out

    def all_sorted(self) -> list[BcdObject]:
        """bcdedit /enum ALL order: firmware boot manager, boot manager, firmware entries, loaders,
        resume, memory tester, other applications, settings (inherit) objects, device options."""
        rank = {C.TYPE_FWBOOTMGR: 0, C.TYPE_BOOTMGR: 1, C.TYPE_FW_APP: 2, C.TYPE_OSLOADER: 3,
                C.TYPE_RESUME: 4, C.TYPE_MEMDIAG: 5}

        def key(o: BcdObject):
            kind = C.object_kind(o.type)
            r = rank.get(o.type if o.type is not None else -1,
                         6 if kind == 1 else 7 if kind == 2 else 8 if kind == 3 else 9)
            return (r, o.identifier)
        return sorted(self.objects, key=key)

    def of_type(self, which: str) -> list[BcdObject]:
        """bcdedit /enum TYPE: bootmgr, firmware, osloader, resume, memdiag, inherit, device, bootapp."""
        tests = {
            "bootmgr": lambda t: t == C.TYPE_BOOTMGR,
            "firmware": lambda t: t is not None and (t >> 20) == 0x101,
            "osloader": lambda t: t == C.TYPE_OSLOADER,
            "resume": lambda t: t == C.TYPE_RESUME,
            "memdiag": lambda t: t == C.TYPE_MEMDIAG,
            "bootapp": lambda t: C.object_kind(t) == 1,
            "inherit": lambda t: C.object_kind(t) == 2,
            "device": lambda t: C.object_kind(t) == 3,
        }
        test = tests[which]
        return [o for o in self.all_sorted() if test(o.type)]

    def inherited(self, obj: BcdObject, code: int) -> Element | None:
        """The element as the boot application sees it: its own, else the first found through its
        `inherit` list, depth first (BCD-REFERENCE.md §5: {badmemory} and {emssettings} reach every
        application through {globalsettings})."""
        seen: set[str] = set()

        def walk(o: BcdObject) -> Element | None:
            if o.identifier in seen:
                return None
            seen.add(o.identifier)
            e = o.element(code)
            if e is not None:
                return e
            for ident in o.value(C.INHERIT, ()) or ():
                child = self.get(ident)
                if child is not None:
                    found = walk(child)
                    if found is not None:
                        return found
            return None
        return walk(obj)
