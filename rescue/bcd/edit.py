"""BCD edits as plans (check -> plan); the safety engine applies them (rescue.safety.apply).

Every planner reads a `BcdStore` and returns a `rescue.safety.plan.Step` naming hive changes on the
store's `FileRef`: element values live at `Objects\\{guid}\\Elements\\<8 hex>` in the value named
"Element". Encodings are the ones Windows writes (BCD-REFERENCE.md §6, checked on the real stores):
integers 8-byte little-endian REG_BINARY, booleans 1-byte REG_BINARY, strings and object references
REG_SZ, object lists REG_MULTI_SZ, integer lists n x 8 bytes. New element keys get lower-case names
as bcdedit writes them; existing keys keep their spelling. A step whose value is already as asked
has no changes and says why (`skipped`), so a no-op plan is empty ("nothing to do").

`deletevalue` deletes the element's key, as bcdedit does: an element key without its value is not an
element Windows can read (ROS-C reads the "Element" value of every element key).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Sequence

from rescue.bcd import constants as C
from rescue.bcd.model import BcdObject, BcdStore, Element
from rescue.errors import NotFoundError, UsageError
from rescue.hive import values as V
from rescue.safety.plan import Change, DeleteKey, FileRef, SetValue, Step

if TYPE_CHECKING:
    from rescue.bcd.devices import DeviceContext

TRUE_WORDS = {"on", "yes", "true", "1"}
FALSE_WORDS = {"off", "no", "false", "0"}
# bcdedit /emssettings accepts these rates (MS-EMS); 115200 is what Azure's serial console uses.
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)


# --- encodings ---------------------------------------------------------------------------
def encode(code: int, value) -> tuple[int, bytes]:
    """(registry type, bytes) for a typed value of element `code`, exactly as bcdedit writes it."""
    fmt = C.element_format(code)
    if fmt == C.FMT_BOOLEAN:
        return V.REG_BINARY, b"\x01" if value else b"\x00"
    if fmt == C.FMT_INTEGER:
        return V.REG_BINARY, struct.pack("<Q", value)
    if fmt == C.FMT_INTEGER_LIST:
        return V.REG_BINARY, b"".join(struct.pack("<Q", v) for v in value)
    if fmt in (C.FMT_STRING, C.FMT_OBJECT):
        return V.REG_SZ, V.encode_sz(value)
    if fmt == C.FMT_OBJECT_LIST:
        return V.REG_MULTI_SZ, V.encode_multi_sz(list(value))
    raise UsageError(f"Element {code:08x} is a {C.FORMAT_NAMES.get(fmt, 'unknown format')}, which rescue "
                     "cannot set offline; use bcdedit on a running Windows for device elements.")


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise UsageError(f"{text!r} is not a boolean: use on/off, yes/no, true/false or 1/0.")


def parse_int(text: str, enums: dict[int, str] | None = None) -> int:
    t = text.strip()
    if enums:
        for k, name in enums.items():
            if name.lower() == t.lower():
                return k
    try:
        n = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    except ValueError:
        extra = f" or one of {', '.join(enums.values())}" if enums else ""
        raise UsageError(f"{text!r} is not an integer: give a decimal number or 0x-prefixed hex{extra}.") from None
    if not 0 <= n < 1 << 64:
        raise UsageError(f"{text} is out of range for a BCD integer (0 to 2^64-1).")
    return n


# --- lookups -----------------------------------------------------------------------------
def resolve_element(obj: BcdObject, name: str) -> int:
    """A bcdedit element name (valid for this object's type) or a hex code -> the element code."""
    code = C.element_code(name, obj.type)
    if code is None:
        if C.known_name_anywhere(name):
            raise UsageError(f"The element {name!r} does not apply to {_label(obj)}, a {obj.type_name}.")
        raise UsageError(f"{name!r} is not a BCD element name or an 8-digit hex code (e.g. badmemorylist "
                         "or 0x1700000a).")
    return code


def _label(obj: BcdObject) -> str:
    return obj.alias or obj.identifier


def _shown(store: BcdStore, code: int, value) -> str:
    fmt = C.element_format(code)
    if fmt == C.FMT_BOOLEAN:
        return "Yes" if value else "No"
    if fmt == C.FMT_INTEGER_LIST:
        return ", ".join(f"0x{v:x}" for v in value) or "(empty)"
    if fmt == C.FMT_OBJECT:
        return store.display_id(value)
    if fmt == C.FMT_OBJECT_LIST:
        return ", ".join(store.display_id(v) for v in value)
    return str(value)


# --- generic planners ------------------------------------------------------------------------
def set_change(store: BcdStore, ref: FileRef, obj: BcdObject, code: int, value, *, reason: str = "") -> SetValue | None:
    """The SetValue that makes element `code` of `obj` equal `value`, or None when it already is."""
    old: Element | None = obj.element(code)
    if old is not None and old.ok and old.value == value:
        return None
    reg_type, data = encode(code, value)
    name = C.element_name(code, obj.type)
    return SetValue(file=ref, key=obj.element_path(code), name="Element", type=reg_type, data=data,
                    # An element key without its value has no "before" value to check.
                    before_type=None if old is None or old.reg_type is None else old.reg_type,
                    before_data=None if old is None or old.reg_type is None else old.raw,
                    reason=reason or f"{_label(obj)} {name} = {_shown(store, code, value)}")


def plan_set_typed(store: BcdStore, ref: FileRef, obj: BcdObject, code: int, value, *,
                   action: str = "bcd.set", title: str | None = None) -> Step:
    name = C.element_name(code, obj.type)
    title = title or f"Set {name} of {_label(obj)} to {_shown(store, code, value)}"
    change = set_change(store, ref, obj, code, value)
    if change is None:
        return Step(action, title, skipped=f"{_label(obj)} {name} is already {_shown(store, code, value)}")
    return Step(action, title, (change,))


def parse_value(store: BcdStore, obj: BcdObject, code: int, values: Sequence[str],
                devices: DeviceContext | None = None, disk_paths: Sequence[str] = ()):
    """bcdedit /set VALUE spellings -> the typed value for element `code` (device elements: the
    bytes, see parse_device; `devices` is the attached disks' DeviceContext, None for a BCD file)."""
    fmt = C.element_format(code)
    if fmt == C.FMT_DEVICE:
        if len(values) != 1:
            raise UsageError("A device takes one value: partition=C:, partition=DISK:N, boot or locate.")
        return parse_device(values[0], code, devices, disk_paths)
    lists = (C.FMT_INTEGER_LIST, C.FMT_OBJECT_LIST)
    if not values:
        raise UsageError("Give a value to set.")
    if fmt not in lists and len(values) != 1:
        raise UsageError(f"{C.element_name(code, obj.type)} takes one value; quote a string with spaces.")
    if fmt == C.FMT_BOOLEAN:
        return parse_bool(values[0])
    if fmt == C.FMT_INTEGER:
        return parse_int(values[0], C.element_enums(code, obj.type))
    if fmt == C.FMT_INTEGER_LIST:
        return tuple(parse_int(v) for v in values)
    if fmt == C.FMT_STRING:
        if values[0] == "":
            raise UsageError("A BCD string cannot be empty (Windows rejects it); use deletevalue instead.")
        return values[0]
    if fmt == C.FMT_OBJECT:
        return store.object(values[0]).identifier
    if fmt == C.FMT_OBJECT_LIST:
        return tuple(store.object(v).identifier for v in values)
    encode(code, None)  # raises the "cannot set" error for device and unknown formats
    raise AssertionError("unreachable")


def plan_set(store: BcdStore, ref: FileRef, ident: str, element: str, values: Sequence[str],
             devices: DeviceContext | None = None, disk_paths: Sequence[str] = ()) -> Step:
    """`bcdedit /set ID ELEMENT VALUE...`."""
    obj = store.object(ident)
    code = resolve_element(obj, element)
    value = parse_value(store, obj, code, values, devices, disk_paths)
    if C.element_format(code) == C.FMT_DEVICE:
        return plan_set_device(store, ref, obj, code, value, values[0])
    return plan_set_typed(store, ref, obj, code, value)


# --- device values (bcdedit's partition=X:, boot, locate), where they can be known offline -----------
def boot_device() -> bytes:
    """`boot`: device type 5, nothing else (88 bytes, as in the real stores; BCD-REFERENCE.md §6)."""
    return bytes(16) + struct.pack("<IIII", 5, 0, 72, 0) + bytes(56)


def locate_device(element: int) -> bytes:
    """`locate`: device type 8, locate by element (the object's path for `device`, its systemroot for
    `osdevice`), 46 bytes as bcdedit writes it (windeploy's store: locate=custom:12000002 /
    custom:22000002)."""
    return bytes(16) + struct.pack("<IIII", 8, 0, 30, 0) + struct.pack("<II", 0, element) + bytes(6)


def parse_device(text: str, code: int, devices: DeviceContext | None = None,
                 disk_paths: Sequence[str] = ()) -> bytes:
    """bcdedit's device spellings that need nothing but the disks: `boot`, `locate`,
    `partition=C:` (the letter Windows gave the volume, from MountedDevices) and `partition=DISK:N`
    (partition N of an attached disk, DISK its 0-based index or the path given, as --root takes).
    Partition devices carry the disk's own identity (GPT GUIDs, MBR signature + offset)."""
    from rescue.bcd.devices import partition_device

    t = text.strip()
    low = t.lower()
    if low == "boot":
        return boot_device()
    if low == "locate":
        return locate_device(C.SYSTEMROOT if code == C.OSDEVICE else C.PATH)
    if not low.startswith("partition="):
        raise UsageError(f"{text!r} is not a device rescue can set offline: give partition=C:, partition=DISK:N "
                         "(e.g. partition=0:3), boot or locate.")
    if devices is None:
        raise UsageError("partition= needs the disk, not a BCD file: which partition a letter or number means is "
                         "known only from the attached disks.")
    spec = t.split("=", 1)[1].strip()
    if len(spec) == 2 and spec[1] == ":" and spec[0].isalpha():
        letter = spec.upper()
        found = [k for k, v in devices.letters.items() if v == letter]
        if not found:
            raise NotFoundError(f"No volume of the attached disks is {letter} (MountedDevices names "
                                f"{', '.join(sorted(set(devices.letters.values()))) or 'no letter'}).")
        disk_index, number = found[0]
    else:
        disk_s, _, part_s = spec.rpartition(":")
        if not part_s.isdigit():
            raise UsageError(f"partition={spec} is neither a drive letter (C:) nor DISK:N (e.g. 0:3).")
        if disk_s == "" or disk_s.isdigit():
            disk_index = int(disk_s or 0)
        elif disk_s in disk_paths:
            disk_index = list(disk_paths).index(disk_s)
        else:
            raise UsageError(f"partition={spec} names disk {disk_s!r}, which was not given.")
        number = int(part_s)
    disk = next((d for d in devices.disks if d.index == disk_index), None)
    part = next((p for p in disk.partitions if p.number == number), None) if disk is not None else None
    if disk is None or part is None:
        raise NotFoundError(f"The attached disks have no partition {number} on disk {disk_index}.")
    try:
        return partition_device(disk, part)
    except ValueError as exc:
        raise UsageError(f"A BCD device cannot name that partition: {exc}.") from None


def plan_set_device(store: BcdStore, ref: FileRef, obj: BcdObject, code: int, data: bytes, spelled: str) -> Step:
    name = C.element_name(code, obj.type)
    title = f"Set {name} of {_label(obj)} to {spelled}"
    old = obj.element(code)
    if old is not None and old.reg_type == V.REG_BINARY and old.raw == data:
        return Step("bcd.set", title, skipped=f"{_label(obj)} {name} is already {spelled}")
    change = SetValue(file=ref, key=obj.element_path(code), name="Element", type=V.REG_BINARY, data=data,
                      before_type=None if old is None or old.reg_type is None else old.reg_type,
                      before_data=None if old is None or old.reg_type is None else old.raw,
                      reason=f"{_label(obj)} {name} = {spelled}")
    return Step("bcd.set", title, (change,))


def plan_deletevalue(store: BcdStore, ref: FileRef, ident: str, element: str) -> Step:
    """`bcdedit /deletevalue ID ELEMENT`: delete the element's key; nothing to do when absent."""
    obj = store.object(ident)
    code = resolve_element(obj, element)
    return _delete_step(store, ref, obj, code, action="bcd.deletevalue")


def _delete_step(store: BcdStore, ref: FileRef, obj: BcdObject, code: int, *, action: str,
                 title: str | None = None) -> Step:
    name = C.element_name(code, obj.type)
    title = title or f"Delete {name} from {_label(obj)}"
    old = obj.element(code)
    if old is None:
        return Step(action, title, skipped=f"{_label(obj)} has no {name} element")
    was = _shown(store, code, old.value) if old.ok else f"raw {old.raw.hex()}"
    change = DeleteKey(file=ref, key=obj.element_path(code),
                       reason=f"delete {name} ({C.code_hex(code)}) of {_label(obj)}; it was {was}")
    return Step(action, title, (change,))


# --- the article's edits (reused by the one-command fix) --------------------
def badmemory_holders(store: BcdStore) -> list[BcdObject]:
    """Objects carrying a badmemorylist: {badmemory} normally (MS-PFA), but bcdedit lets one set it
    on any object, and every one of them hides those pages from the applications inheriting it."""
    return [o for o in store.all_sorted() if o.element(C.BADMEMORYLIST) is not None]


def plan_clear_badmemory(store: BcdStore, ref: FileRef) -> Step:
    """Article step 3: `bcdedit /deletevalue {badmemory} badmemorylist` (and the same list on any
    other object)."""
    title = "Delete the bad-memory list (badmemorylist) from the BCD"
    holders = badmemory_holders(store)
    if not holders:
        where = "{badmemory}" if store.get(C.GUID_BADMEMORY) else "the store (it has no {badmemory} object)"
        return Step("bcd.badmemory", title, skipped=f"no bad-memory list in {where}")
    changes: list[Change] = []
    for obj in holders:
        changes.extend(_delete_step(store, ref, obj, C.BADMEMORYLIST, action="bcd.badmemory").changes)
    pages = sum(len(o.value(C.BADMEMORYLIST, ()) or ()) for o in holders)
    return Step("bcd.badmemory", title, tuple(changes),
                notes=(f"{pages} page(s) were marked bad; Windows will use that memory again",))


def loader_targets(store: BcdStore, loader_ids: Sequence[str] | None = None) -> list[BcdObject]:
    """The OS loaders the boot manager starts: {default} and the Windows Boot Loaders in its display
    order (article step 5: "find the boot loader identifier"); or the ones given."""
    if loader_ids:
        return [store.object(i) for i in loader_ids]
    out: list[BcdObject] = []
    default = store.default_id
    for ident in ([default] if default else []) + [o.identifier for o in store.active()]:
        obj = store.get(ident)
        if obj is not None and obj.is_osloader and obj not in out:
            out.append(obj)
    return out


def require_loader(obj: BcdObject) -> None:
    if C.application_type(obj.type) != 3:
        raise UsageError(
            f"{_label(obj)} is a {obj.type_name}, not a Windows Boot Loader: EMS is enabled per OS loader "
            "(use `rescue bcd bootems` for the boot manager).")


def plan_ems(store: BcdStore, ref: FileRef, ident: str, on: bool) -> Step:
    """`bcdedit /ems ID ON|OFF`: element ems (0x260000b0) of an OS loader."""
    obj = store.object(ident)
    require_loader(obj)
    return plan_set_typed(store, ref, obj, C.OSLOADER_EMS, on, action="bcd.ems",
                          title=f"{'Enable' if on else 'Disable'} EMS for {store.display_id(obj.identifier)}")


def plan_ems_on(store: BcdStore, ref: FileRef, loader_ids: Sequence[str] | None = None) -> Step:
    """Article step 5: `bcdedit /ems {id} ON` for every loader the boot manager starts."""
    title = "Enable EMS (serial console) for the Windows boot loader(s)"
    loaders = loader_targets(store, loader_ids)
    if not loaders:
        raise NotFoundError(f"The store {store.name} has no Windows Boot Loader to enable EMS for.")
    changes = []
    for obj in loaders:
        require_loader(obj)
        c = set_change(store, ref, obj, C.OSLOADER_EMS, True)
        if c is not None:
            changes.append(c)
    if not changes:
        return Step("bcd.ems", title, skipped="EMS is already on for " +
                    ", ".join(store.display_id(o.identifier) for o in loaders))
    return Step("bcd.ems", title, tuple(changes))


def plan_bootems(store: BcdStore, ref: FileRef, ident: str, on: bool) -> Step:
    """`bcdedit /bootems ID ON|OFF`: library element bootems (0x16000020), valid in any object."""
    obj = store.object(ident)
    return plan_set_typed(store, ref, obj, C.BOOTEMS, on, action="bcd.bootems",
                          title=f"{'Enable' if on else 'Disable'} boot EMS for {store.display_id(obj.identifier)}")


def validate_emssettings(port: int | None, baud: int | None) -> None:
    if port is None and baud is None:
        raise UsageError("Give --port and/or --baudrate (e.g. --port 1 --baudrate 115200).")
    if port is not None and not 1 <= port <= 255:
        raise UsageError(f"EMS port {port} is not a serial port number (1 = COM1).")
    if baud is not None and baud not in BAUD_RATES:
        raise UsageError(f"EMS baud rate {baud} is not one bcdedit accepts: "
                         f"{', '.join(map(str, BAUD_RATES))}.")


def plan_emssettings(store: BcdStore, ref: FileRef, port: int | None = None, baud: int | None = None) -> Step:
    """`bcdedit /emssettings EMSPORT:port EMSBAUDRATE:baud`: emsport (0x15000022) and emsbaudrate
    (0x15000023) on {emssettings}, which every boot application inherits via {globalsettings}."""
    validate_emssettings(port, baud)
    obj = store.get(C.GUID_EMSSETTINGS)
    if obj is None:
        raise NotFoundError(
            f"The store {store.name} has no {{emssettings}} object, so EMS settings would reach no boot "
            "application; this is not a Windows system store (give the disk or its \\Boot\\BCD).")
    parts = ([f"port {port}"] if port is not None else []) + ([f"{baud} baud"] if baud is not None else [])
    title = f"Set EMS to {' at '.join(parts)} ({{emssettings}})"
    changes = []
    for code, value in ((C.EMSPORT, port), (C.EMSBAUDRATE, baud)):
        if value is not None:
            c = set_change(store, ref, obj, code, value)
            if c is not None:
                changes.append(c)
    if not changes:
        return Step("bcd.emssettings", title, skipped=f"{{emssettings}} already has {' and '.join(parts)}")
    return Step("bcd.emssettings", title, tuple(changes))


# --- boot options of the default loader and the boot manager (safe-mode, boot-menu, repair-loop) ----
SAFEBOOT = 0x25000080                 # 0 Minimal, 1 Network, 2 DsRepair
SAFEBOOTALTERNATESHELL = 0x26000081
RECOVERYENABLED = 0x16000009
BOOTSTATUSPOLICY = 0x250000E0
IGNORE_ALL_FAILURES = 1
DISPLAYBOOTMENU = 0x26000020


def plan_clear_safeboot(store: BcdStore, ref: FileRef, loader: BcdObject) -> Step:
    """`bcdedit /deletevalue {default} safeboot` and `... safebootalternateshell`: Windows starts
    normally again (msconfig's "Safe boot" box writes these two)."""
    title = f"Leave Safe Mode: delete safeboot and safebootalternateshell from {store.display_id(loader.identifier)}"
    changes: list[Change] = []
    for code in (SAFEBOOT, SAFEBOOTALTERNATESHELL):
        changes.extend(_delete_step(store, ref, loader, code, action="bcd.safeboot").changes)
    if not changes:
        return Step("bcd.safeboot", title, skipped=f"{store.display_id(loader.identifier)} has no safeboot setting")
    return Step("bcd.safeboot", title, tuple(changes))


def plan_ignore_failures(store: BcdStore, ref: FileRef, loader: BcdObject) -> Step:
    """`bcdedit /set {default} bootstatuspolicy IgnoreAllFailures` and `recoveryenabled No`: after
    a failed boot or shutdown Windows starts normally instead of Automatic Repair / the recovery menu."""
    title = f"Boot normally after failures: bootstatuspolicy IgnoreAllFailures, recoveryenabled No on " \
            f"{store.display_id(loader.identifier)}"
    changes = [c for c in (set_change(store, ref, loader, BOOTSTATUSPOLICY, IGNORE_ALL_FAILURES),
                           set_change(store, ref, loader, RECOVERYENABLED, False)) if c is not None]
    if not changes:
        return Step("bcd.ignore-failures", title,
                    skipped="bootstatuspolicy is already IgnoreAllFailures and recoveryenabled No")
    return Step("bcd.ignore-failures", title, tuple(changes))


def plan_boot_menu(store: BcdStore, ref: FileRef, timeout: int) -> Step:
    """`bcdedit /deletevalue {bootmgr} displaybootmenu` and `bcdedit /set {bootmgr} timeout N`: the
    boot manager starts the default entry after N seconds instead of waiting for a key."""
    bm = store.bootmgr
    if bm is None:
        raise NotFoundError(f"The store {store.name} has no {{bootmgr}} object.")
    title = f"Do not wait at the boot menu: delete displaybootmenu, timeout {timeout} s ({{bootmgr}})"
    changes = list(_delete_step(store, ref, bm, DISPLAYBOOTMENU, action="bcd.boot-menu").changes)
    c = set_change(store, ref, bm, C.TIMEOUT, timeout)
    if c is not None:
        changes.append(c)
    if not changes:
        return Step("bcd.boot-menu", title, skipped=f"{{bootmgr}} has no displaybootmenu and timeout {timeout}")
    return Step("bcd.boot-menu", title, tuple(changes))
