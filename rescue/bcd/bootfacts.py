"""What a store rebuild needs to know about a disk, read once (read-only) into one typed record.

The store the firmware reads (present and parsing, missing, or corrupt), the system partition it
lives on (rescue.layout.SystemPartition, known even when the store is not there), the Windows
install's BCD-Template, the partition devices of both partitions, and the boot files bcdboot
copies from `\\Windows\\Boot` with what is at their destinations now.

Which files bcdboot copies (Microsoft, "BCDBoot command-line options", "How it works": "BCDBoot
copies a small set of boot-environment files from the installed Windows image to the system
partition"): on UEFI, `\\Windows\\Boot\\EFI\\*` to `\\EFI\\Microsoft\\Boot\\` on the ESP and the boot
manager again as the removable-media fallback `\\EFI\\Boot\\bootx64.efi`; on BIOS,
`\\Windows\\Boot\\PCAT\\bootmgr` to `\\bootmgr` and the rest of `\\Windows\\Boot\\PCAT` to `\\Boot\\`; the
fonts (`\\Windows\\Boot\\Fonts`) go to `Fonts` beside the store on both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rescue.bcd.rebuild import STORE_PATH, TEMPLATE_PATH, BootTarget, loader_description, partition_device
from rescue.disk.ptable import ACTIVE, boot_indicators
from rescue.errors import RescueError, UnsafeStateError
from rescue.safety.plan import FileRef
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.disk.formats import DiskImage
    from rescue.disk.records import DiskInfo, Partition
    from rescue.layout import SystemPartition, WindowsInstall, WindowsLayout
    from rescue.target import Target

BOOT_MANAGER = {"gen2": "\\EFI\\Microsoft\\Boot\\bootmgfw.efi", "gen1": "\\bootmgr"}
FALLBACK_LOADER = "\\EFI\\Boot\\bootx64.efi"
STORE_LOGS = (".LOG", ".LOG1", ".LOG2")
# A real \Windows\Boot holds ~15 MB; far more means this is not a boot folder (never copy a disk).
MAX_BOOT_FILES_BYTES = 256 << 20


class StoreStatus(Enum):
    PRESENT = "present"          # there and parses
    MISSING = "missing"
    CORRUPT = "corrupt"          # there, not a readable hive / BCD
    UNSAFE = "unsafe"            # dirty with logs that cannot be replayed (the engine refuses it)


@dataclass(frozen=True)
class BootFile:
    """One file bcdboot copies: from the Windows volume to the system partition."""

    source: FileRef
    dest: FileRef
    size: int
    same: bool                   # the destination exists with the same bytes


@dataclass(frozen=True)
class BootFacts:
    generation: str | None
    system: SystemPartition | None
    store: FileRef | None                    # where the store is, or where it goes
    store_status: StoreStatus
    store_problem: str                       # why MISSING/CORRUPT/UNSAFE, "" when PRESENT
    logs: tuple[FileRef, ...] = ()           # the store's existing .LOG/.LOG1/.LOG2
    template: Path | None = None             # host copy of \Windows\System32\config\BCD-Template
    boot_target: BootTarget | None = None
    problem: str | None = None               # why a store cannot be rebuilt (no template, no system partition)
    boot_manager: FileRef | None = None      # \EFI\Microsoft\Boot\bootmgfw.efi or \bootmgr on the system partition
    boot_manager_present: bool = False
    system_label: str = ""                   # "disk.vhd partition 1" for evidence
    store_label: str = ""
    activate_command: str = ""               # how to mark the system partition active (Gen1), by hand
    mbr_sector: bytes = b""                  # Gen1: sector 0 of the system partition's disk, as read
    disk_label: str = ""                     # the system partition's disk as the user named it


def activate_command(image: DiskImage, partition: int) -> str:
    """The command that sets the MBR active flag on `partition` of `image` (rescue.disk.formats.
    DiskImage): sfdisk on a block device or a raw image; on a VHD/VHDX/qcow2 image the partition
    table is inside the container, so through libguestfs with the image's format."""
    if image.is_block_device or image.format == "raw":
        return f"sfdisk --activate {image.path} {partition}"
    return f"guestfish --format={image.format} -a {image.path} run : part-set-bootable /dev/sda {partition} true"


def _device(disk: DiskInfo, part: Partition) -> bytes:
    if disk.table == "gpt":
        return partition_device(style="gpt", partition_guid=part.gpt_guid, disk_guid=disk.gpt_guid)
    return partition_device(style="mbr", mbr_signature=disk.mbr_signature, offset=part.start)


def _store_status(target: Target, ref: FileRef, discard: bool) -> tuple[StoreStatus, str]:
    from rescue.bcd.store import open_store

    try:
        store = open_store(target, ref, discard)
    except UnsafeStateError as exc:          # dirty, logs that do not replay: the engine refuses it
        return StoreStatus.UNSAFE, exc.message
    except RescueError as exc:               # not a hive, damaged cells, not a BCD (CorruptHiveError...)
        return StoreStatus.CORRUPT, exc.message
    if not store.objects:
        return StoreStatus.CORRUPT, f"{ref.path} is a hive with no BCD objects"
    return StoreStatus.PRESENT, ""


def _copies(target: Target, generation: str, root: WindowsInstall,
            system: SystemPartition) -> list[tuple[FileRef, FileRef]]:
    """(source, destination) of every file bcdboot copies (module docstring)."""
    win = lambda p: FileRef(p, root.disk, root.partition)          # noqa: E731
    sysref = lambda p: FileRef(p, system.disk, system.partition)   # noqa: E731
    pairs: list[tuple[FileRef, FileRef]] = []
    if generation == "gen2":
        boot, src = "\\EFI\\Microsoft\\Boot", "\\Windows\\Boot\\EFI"
        for rel, _size in target.walk_files(win(src)):
            pairs.append((win(f"{src}\\{rel}"), sysref(f"{boot}\\{rel}")))
            if rel.lower() == "bootmgfw.efi":
                pairs.append((win(f"{src}\\{rel}"), sysref(FALLBACK_LOADER)))
    else:
        boot, src = "\\Boot", "\\Windows\\Boot\\PCAT"
        for rel, _size in target.walk_files(win(src)):
            dest = "\\bootmgr" if rel.lower() == "bootmgr" else f"{boot}\\{rel}"
            pairs.append((win(f"{src}\\{rel}"), sysref(dest)))
    for rel, _size in target.walk_files(win("\\Windows\\Boot\\Fonts")):
        pairs.append((win(f"\\Windows\\Boot\\Fonts\\{rel}"), sysref(f"{boot}\\Fonts\\{rel}")))
    return pairs


def read_boot_facts(target: Target, layout: WindowsLayout, *, discard_hive_logs: bool = False) -> BootFacts:
    """Everything the rebuild checks and plans from, read from the disks (read-only)."""
    gen = layout.generation
    system = layout.system
    paths = list(layout.disk_paths)
    if system is None or gen not in ("gen1", "gen2"):
        return BootFacts(gen, None, None, StoreStatus.MISSING, "no system partition was found",
                         problem="no EFI system partition (Gen2) or MBR partition (Gen1) to put a store on")
    system_label = f"{paths[system.disk]} partition {system.partition}"
    if layout.bcd is not None:
        store = FileRef(layout.bcd.path, layout.bcd.disk, layout.bcd.partition)
        status, why = _store_status(target, store, discard_hive_logs)
    else:
        store = FileRef(STORE_PATH[gen], system.disk, system.partition)
        if target.exists(store):
            # Written since the layout was read (the diagnosis after a rebuild, same launch).
            status, why = _store_status(target, store, discard_hive_logs)
        else:
            status, why = StoreStatus.MISSING, f"{STORE_PATH[gen]} is missing on {system_label}"
    logs = tuple(r for r in (FileRef(store.path + s, store.disk, store.partition) for s in STORE_LOGS)
                 if target.exists(r) and target.size(r) > 0)
    manager = FileRef(BOOT_MANAGER[gen], system.disk, system.partition)
    session = target.session
    if session is None:
        raise ValueError("boot facts are read from a disk set, not a bare hive file")
    mbr = b""
    if gen == "gen1":
        # The active flag as the disk holds it now (the layout's was read at discovery: a fix in this
        # launch may have set it since); also what a plan that sets it is made from.
        mbr = target.read_boot_sector(system.disk)
        flags = boot_indicators(mbr) if len(mbr) == 512 else ()
        if 1 <= system.partition <= len(flags):
            system = replace(system, active=flags[system.partition - 1] == ACTIVE)
    images = session.images
    activate = activate_command(images[system.disk], system.partition) if system.disk < len(images) else ""
    base = BootFacts(generation=gen, system=system, store=store, store_status=status, store_problem=why, logs=logs,
                     boot_manager=manager, boot_manager_present=target.exists(manager), system_label=system_label,
                     store_label=f"{system_label}: {store.path}", activate_command=activate, mbr_sector=mbr,
                     disk_label=paths[system.disk])
    root = layout.root
    if root is None:
        return replace(base, problem="no Windows installation to make a boot entry for")
    tpl_ref = FileRef(TEMPLATE_PATH, root.disk, root.partition)
    if not target.exists(tpl_ref):
        return replace(base, problem=f"{TEMPLATE_PATH} is missing on the Windows volume "
                                     f"({paths[root.disk]} partition {root.partition})")
    template = target.local_copy(tpl_ref)
    disks = {d.index: d for d in session.disks()}
    sdisk, rdisk = disks.get(system.disk), disks.get(root.disk)
    spart = next((p for p in sdisk.partitions if p.number == system.partition), None) if sdisk else None
    rpart = next((p for p in rdisk.partitions if p.number == root.partition), None) if rdisk else None
    if sdisk is None or rdisk is None or spart is None or rpart is None \
            or sdisk.table not in ("gpt", "mbr") or rdisk.table not in ("gpt", "mbr"):
        return replace(base, template=template, problem="the partitions cannot be named as BCD devices")
    boot_target = BootTarget(gen, _device(sdisk, spart), _device(rdisk, rpart),
                             loader_description(root.product, root.build))
    return replace(base, template=template, boot_target=boot_target)


def boot_file_copies(target: Target, layout: WindowsLayout,
                     facts: BootFacts) -> tuple[tuple[BootFile, ...], str | None]:
    """The files bcdboot would copy, each compared with what is at its destination (sizes, then
    sha256 only where sizes match); plus why nothing can be copied (None when there are files).
    Only a plan reads this: it hashes every boot file, which a triage need not do."""
    gen, system, root = facts.generation, facts.system, layout.root
    if facts.problem or system is None or root is None or gen not in ("gen1", "gen2"):
        return (), facts.problem or "no system partition or Windows installation"
    files = []
    total = 0
    for src, dest in _copies(target, str(gen), root, system):
        size = target.size(src)
        total += size
        if total > MAX_BOOT_FILES_BYTES:
            return (), f"\\Windows\\Boot holds more than {format_bytes(MAX_BOOT_FILES_BYTES, exact=True)}: not a boot folder"
        same = target.exists(dest) and target.size(dest) == size and target.sha256(dest) == target.sha256(src)
        files.append(BootFile(src, dest, size, same))
    if not files:
        return (), f"\\Windows\\Boot\\{'EFI' if gen == 'gen2' else 'PCAT'} holds no boot files to copy"
    return tuple(files), None
