"""The boot configuration the firmware follows, judged against the disk it lives on, and the
minimal BCD edits that make it start this disk's Windows.

What a working system store holds (what `bcdboot C:\\Windows` writes, BCD-REFERENCE.md §5-6):
`{bootmgr}` whose `device` is the partition holding the store (the EFI system partition on Gen2,
System Reserved on Gen1) and, on Gen2, `path \\EFI\\Microsoft\\Boot\\bootmgfw.efi` (the BIOS boot
sector starts `\\bootmgr` by name, so Gen1 stores have no path); `default` and `displayorder` naming
a Windows Boot Loader; that loader's `device` and `osdevice` the Windows partition, `path
\\Windows\\system32\\winload.efi` (Gen2) or `winload.exe` (Gen1), `systemroot \\Windows`.

Partition devices are written from the disk's own identity, as bcdedit does for `partition=C:`:
GPT disk and partition GUIDs, or the MBR disk signature and the partition's byte offset, the
identities `DeviceContext.locate` matches when it names a device. Nothing here reads the disk:
`DiskFacts` is built from the partition tables the session already read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

from rescue.bcd import constants as C
from rescue.bcd.devices import Device, DeviceContext, device_text, partition_device
from rescue.bcd.edit import set_change
from rescue.bcd.model import BcdObject, BcdStore
from rescue.errors import NotFoundError
from rescue.hive import values as V
from rescue.safety.plan import FileRef, SetValue, Step

if TYPE_CHECKING:
    from rescue.layout import WindowsLayout

GEN2_BOOTMGR_PATH = "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"
WINLOAD_PATH = {"gen2": "\\Windows\\system32\\winload.efi", "gen1": "\\Windows\\system32\\winload.exe"}
SYSTEMROOT = "\\Windows"
LOCALE = 0x12000005
INTEGRITYSERVICES = 0x1500004B        # 0 Default, 1 Enable, 2 Disable (library element)
INTEGRITY_DISABLE = 2
TOOLSDISPLAYORDER = 0x24000010
BOOTMGR_TIMEOUT = 30                  # what bcdboot writes


@dataclass(frozen=True)
class PartitionRef:
    """One partition of the attached disks and the BCD device value that names it."""

    disk: int
    partition: int
    device: bytes
    label: str                        # "C:" or "disk 0 partition 3"


@dataclass(frozen=True)
class DiskFacts:
    """What the BCD should say about this disk set."""

    generation: str                   # gen1 | gen2
    windows: PartitionRef             # the Windows partition (the install commands act on)
    system: PartitionRef              # the partition holding the store (ESP / System Reserved)
    devices: DeviceContext            # names partition devices in evidence

    def where(self, dev: Device) -> Optional[Tuple[int, int]]:
        loc = self.devices.locate(dev)
        return None if loc is None else (loc.disk, loc.partition)

    def is_partition(self, value, ref: PartitionRef) -> bool:
        return isinstance(value, Device) and self.where(value) == (ref.disk, ref.partition)

    def show(self, value) -> str:
        return device_text(value, self.devices) if isinstance(value, Device) else "not set"


def disk_facts(disks: Sequence, layout: WindowsLayout) -> DiskFacts:
    """DiskFacts from the session's partition tables and the layout (its root and BCD location)."""
    root, bcd = layout.require_root(), layout.bcd
    if bcd is None:
        raise NotFoundError("No BCD store was found, so the partition that should hold it is unknown.")
    ctx = DeviceContext(disks, layout.letters, layout.disk_paths)

    def ref(disk: int, number: int) -> PartitionRef:
        d = next(x for x in disks if x.index == disk)
        p = next(x for x in d.partitions if x.number == number)
        try:
            data = partition_device(d, p)
        except ValueError as exc:
            raise NotFoundError(f"A BCD device cannot name that partition: {exc}.") from None
        letter = ctx.letters.get((disk, number))
        return PartitionRef(disk, number, data, letter or f"disk {disk} partition {number}")

    generation = layout.generation or ("gen2" if next(x for x in disks if x.index == bcd.disk).table == "gpt"
                                       else "gen1")
    return DiskFacts(generation, ref(root.disk, root.partition), ref(bcd.disk, bcd.partition), ctx)


# --- which loader -------------------------------------------------------------------------------
def label(store: BcdStore, obj: BcdObject) -> str:
    desc = obj.description
    return f"{store.display_id(obj.identifier)}" + (f" ({desc})" if desc else "")


def default_loader(store: BcdStore) -> Optional[BcdObject]:
    """The Windows Boot Loader `{bootmgr}`'s default names, if it exists and is one."""
    d = store.default_id
    obj = store.get(d) if d else None
    return obj if obj is not None and obj.is_osloader else None


def loaders(store: BcdStore) -> list:
    return [o for o in store.all_sorted() if o.is_osloader and o.alias is None]


def target_loader(store: BcdStore, facts: Optional[DiskFacts]) -> Tuple[Optional[BcdObject], str]:
    """(the loader the boot manager should start, why that one), or (None, why none can be chosen).
    The default when it exists; else the only loader whose osdevice is the Windows partition; else
    the only loader of the store. Several candidates and no way to tell: None (the operator picks)."""
    d = default_loader(store)
    if d is not None:
        return d, "the default"
    found = loaders(store)
    if not found:
        return None, "the store has no Windows Boot Loader (`rescue fix rebuild-bcd` makes a new store)"
    if facts is not None:
        on_windows = [o for o in found if facts.is_partition(o.value(C.OSDEVICE), facts.windows)]
        if len(on_windows) == 1:
            return on_windows[0], f"the only loader whose osdevice is {facts.windows.label}"
    if len(found) == 1:
        return found[0], "the only Windows Boot Loader in the store"
    ids = ", ".join(o.identifier for o in found)
    return None, (f"the store has {len(found)} Windows Boot Loaders ({ids}) and none is clearly this "
                  "Windows: choose with `rescue bcd set DISK {bootmgr} default {GUID}`")


# --- planners -----------------------------------------------------------------------------------
def _bootmgr(store: BcdStore) -> BcdObject:
    bm = store.bootmgr
    if bm is None:
        raise NotFoundError(f"The store {store.name} has no {{bootmgr}} object.")
    return bm


def _set_raw(ref: FileRef, obj: BcdObject, code: int, reg_type: int, data: bytes, reason: str) -> Optional[SetValue]:
    old = obj.element(code)
    if old is not None and old.reg_type == reg_type and old.raw == data:
        return None
    return SetValue(file=ref, key=obj.element_path(code), name="Element", type=reg_type, data=data,
                    before_type=None if old is None or old.reg_type is None else old.reg_type,
                    before_data=None if old is None or old.reg_type is None else old.raw, reason=reason)


def device_changes(store: BcdStore, ref: FileRef, obj: BcdObject, codes: Sequence[int], target: PartitionRef,
                   facts: DiskFacts) -> list:
    """SetValues making each device element in `codes` name `target` (skipping those that do)."""
    out = []
    for code in codes:
        if facts.is_partition(obj.value(code), target):
            continue
        name = C.element_name(code, obj.type)
        c = _set_raw(ref, obj, code, V.REG_BINARY, target.device,
                     f"{label(store, obj)} {name} = partition={target.label} (was {facts.show(obj.value(code))})")
        if c is not None:
            out.append(c)
    return out


def plan_loader_devices(store: BcdStore, ref: FileRef, loader: BcdObject, facts: DiskFacts) -> Step:
    title = f"Point {store.display_id(loader.identifier)} device and osdevice at {facts.windows.label}"
    changes = device_changes(store, ref, loader, (C.DEVICE, C.OSDEVICE), facts.windows, facts)
    if not changes:
        return Step("bcd.loader-device", title, skipped=f"device and osdevice are already {facts.windows.label}")
    return Step("bcd.loader-device", title, tuple(changes))


def loader_path_problems(loader: BcdObject, generation: str) -> list:
    out = []
    path, root = loader.value(C.PATH), loader.value(C.SYSTEMROOT)
    if not isinstance(path, str) or path.lower() != WINLOAD_PATH[generation].lower():
        out.append((C.PATH, path, WINLOAD_PATH[generation]))
    if not isinstance(root, str) or root.rstrip("\\").lower() != SYSTEMROOT.lower():
        out.append((C.SYSTEMROOT, root, SYSTEMROOT))
    return out


def plan_loader_paths(store: BcdStore, ref: FileRef, loader: BcdObject, generation: str) -> Step:
    ext = WINLOAD_PATH[generation].rsplit(".", 1)[1]
    title = f"Set {store.display_id(loader.identifier)} path to winload.{ext} and systemroot to \\Windows"
    found = [set_change(store, ref, loader, code, want) for code, _, want in loader_path_problems(loader, generation)]
    changes = [c for c in found if c is not None]
    if not changes:
        return Step("bcd.loader-path", title, skipped="path and systemroot are already right")
    return Step("bcd.loader-path", title, tuple(changes))


def bootmgr_problems(store: BcdStore, facts: Optional[DiskFacts], generation: Optional[str]) -> list:
    """What is wrong with an existing {bootmgr}: (element code, what is there, what should be)."""
    bm = _bootmgr(store)
    out = []
    if facts is not None:
        dev = bm.value(C.DEVICE)
        # `boot` is the device the boot manager was started from: the store's own partition too.
        if not (isinstance(dev, Device) and dev.kind == "boot") and not facts.is_partition(dev, facts.system):
            out.append((C.DEVICE, facts.show(dev), f"partition={facts.system.label}"))
    if generation == "gen2":
        path = bm.value(C.PATH)
        if not isinstance(path, str) or path.lower() != GEN2_BOOTMGR_PATH.lower():
            out.append((C.PATH, path or "not set", GEN2_BOOTMGR_PATH))
    return out


def plan_bootmgr(store: BcdStore, ref: FileRef, facts: DiskFacts, loader: Optional[BcdObject]) -> Step:
    """Create {bootmgr} as bcdboot does when it is missing; else correct its device and path."""
    bm = store.bootmgr
    if bm is None:
        return plan_create_bootmgr(store, ref, facts, loader)
    title = "Point {bootmgr} at the partition that holds the store"
    changes = device_changes(store, ref, bm, (C.DEVICE,), facts.system, facts)
    if facts.generation == "gen2":
        c = set_change(store, ref, bm, C.PATH, GEN2_BOOTMGR_PATH)
        path = bm.value(C.PATH)
        if c is not None and not (isinstance(path, str) and path.lower() == GEN2_BOOTMGR_PATH.lower()):
            changes.append(c)
    if not changes:
        return Step("bcd.bootmgr", title, skipped=f"{{bootmgr}} is already on {facts.system.label}")
    return Step("bcd.bootmgr", title, tuple(changes))


def plan_create_bootmgr(store: BcdStore, ref: FileRef, facts: DiskFacts, loader: Optional[BcdObject]) -> Step:
    """The {bootmgr} object bcdboot writes (Windows Boot Manager, type 0x10100002): device, path on
    Gen2, description, locale, inherit {globalsettings}, default and displayorder the loader,
    toolsdisplayorder {memdiag} when present, timeout 30."""
    title = "Create {bootmgr} (Windows Boot Manager) as bcdboot writes it"
    if loader is None:
        return Step("bcd.bootmgr", title, skipped="no Windows Boot Loader to make the default")
    base = f"Objects\\{C.GUID_BOOTMGR}"
    locale = loader.value(LOCALE) if isinstance(loader.value(LOCALE), str) else "en-US"
    elements = [(C.DEVICE, V.REG_BINARY, facts.system.device, f"device partition={facts.system.label}")]
    if facts.generation == "gen2":
        elements.append((C.PATH, V.REG_SZ, V.encode_sz(GEN2_BOOTMGR_PATH), f"path {GEN2_BOOTMGR_PATH}"))
    elements += [
        (C.DESCRIPTION, V.REG_SZ, V.encode_sz("Windows Boot Manager"), "description Windows Boot Manager"),
        (LOCALE, V.REG_SZ, V.encode_sz(locale), f"locale {locale}"),
        (C.INHERIT, V.REG_MULTI_SZ, V.encode_multi_sz([C.GUID_GLOBALSETTINGS]), "inherit {globalsettings}"),
        (C.BOOTMGR_DEFAULT, V.REG_SZ, V.encode_sz(loader.identifier), f"default {loader.identifier}"),
        (C.DISPLAYORDER, V.REG_MULTI_SZ, V.encode_multi_sz([loader.identifier]), f"displayorder {loader.identifier}"),
    ]
    if store.get(C.GUID_MEMDIAG) is not None:
        elements.append((TOOLSDISPLAYORDER, V.REG_MULTI_SZ, V.encode_multi_sz([C.GUID_MEMDIAG]),
                         "toolsdisplayorder {memdiag}"))
    elements.append((C.TIMEOUT, V.REG_BINARY, BOOTMGR_TIMEOUT.to_bytes(8, "little"), f"timeout {BOOTMGR_TIMEOUT}"))
    changes = [SetValue(file=ref, key=f"{base}\\Description", name="Type", type=V.REG_DWORD,
                        data=C.TYPE_BOOTMGR.to_bytes(4, "little"), reason="{bootmgr} is a Windows Boot Manager")]
    changes += [SetValue(file=ref, key=f"{base}\\Elements\\{C.key_name(code)}", name="Element", type=t, data=d,
                         reason=f"{{bootmgr}} {why}") for code, t, d, why in elements]
    return Step("bcd.bootmgr", title, tuple(changes),
                notes=(f"{{bootmgr}} starts {label(store, loader)} from {facts.system.label}",))


def default_problems(store: BcdStore) -> list:
    """Why {bootmgr} default / displayorder do not lead to a loader (empty: they do)."""
    bm = _bootmgr(store)
    out = []
    d = store.default_id
    target = store.get(d) if d else None
    if d is None:
        out.append("{bootmgr} has no default")
    elif target is None:
        out.append(f"default names {d}, which does not exist")
    elif not target.is_osloader:
        out.append(f"default names {d}, a {target.type_name}, not a Windows Boot Loader")
    order = bm.value(C.DISPLAYORDER, ()) or ()
    missing = [g for g in order if store.get(g) is None]
    if not order:
        out.append("displayorder is empty")
    elif missing:
        out.append(f"displayorder names {', '.join(missing)}, which do{'es' if len(missing) == 1 else ''} not exist")
    return out


def plan_default(store: BcdStore, ref: FileRef, loader: BcdObject) -> Step:
    """default = the loader; displayorder without the entries that do not exist, the loader first
    when it was not listed (bcdedit /default and /displayorder /addfirst)."""
    bm = _bootmgr(store)
    title = f"Make {loader.identifier} the default entry"
    changes = []
    c = set_change(store, ref, bm, C.BOOTMGR_DEFAULT, loader.identifier)
    if c is not None:
        changes.append(c)
    order = [g for g in (bm.value(C.DISPLAYORDER, ()) or ()) if store.get(g) is not None]
    if loader.identifier not in order:
        order.insert(0, loader.identifier)
    c = set_change(store, ref, bm, C.DISPLAYORDER, tuple(order))
    if c is not None:
        changes.append(c)
    if not changes:
        return Step("bcd.default", title, skipped=f"default and displayorder already name {loader.identifier}")
    return Step("bcd.default", title, tuple(changes))


def integrity_disabled(store: BcdStore, objs: Sequence[BcdObject]) -> list:
    return [o for o in objs if o is not None and o.value(INTEGRITYSERVICES) == INTEGRITY_DISABLE]


def plan_integrity(store: BcdStore, ref: FileRef, objs: Sequence[BcdObject]) -> Step:
    """integrityservices Enable where it is Disable (the article's `/set ... integrityservices
    enable`); absent means enabled, so absent is left alone."""
    title = "Enable code integrity services (integrityservices Enable)"
    changes = [c for c in (set_change(store, ref, o, INTEGRITYSERVICES, 1) for o in integrity_disabled(store, objs))
               if c is not None]
    if not changes:
        return Step("bcd.integrityservices", title, skipped="integrityservices is not disabled")
    return Step("bcd.integrityservices", title, tuple(changes))
