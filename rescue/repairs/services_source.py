"""The SYSTEM hive's current control set as the boot scenarios read it, and which driver files
exist: read once per command and shared (inaccessible-boot-device, driver, `rescue services`).

File presence comes from one listing per folder the drivers' and automatic-start services' images
are in (\\Windows\\System32\\drivers, \\Windows\\System32, a vendor's folder under \\Program Files,
the volume's root for the names CreateProcess tries first on an unquoted path), cached for the
command: never one call per file, nothing that grows with the disk's size. A hive file
given as the target has no volume: presence is then unknown (None) unless a validation case gave a
listing (`preset_listing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

from rescue.errors import RescueError
from rescue.registry.image_path import ServiceImage
from rescue.registry.services import ClassFilter, ControlSetRef, Service
from rescue.repairs import sources
from rescue.repairs.context import RepairContext
from rescue.repairs.sources import SourceError, unreadable
from rescue.fileref import FileRef

# Device setup classes whose filters sit on the path to the boot disk (Microsoft, "System-defined
# device setup classes available to vendors"; the same set as repair-script-library's
# win-fix-inaccessible-boot-device.ps1 plus Storage Volume Shadow Copies).
STORAGE_CLASSES = (
    ("{4d36e967-e325-11ce-bfc1-08002be10318}", "DiskDrive"),        # Disk drives
    ("{71a27cdd-812a-11d0-bec7-08002be2092f}", "Volume"),           # Storage volumes
    ("{4d36e97b-e325-11ce-bfc1-08002be10318}", "SCSIAdapter"),      # Storage controllers
    ("{533c5b84-ec70-11d2-9505-00c04f79deaf}", "VolumeSnapshot"),   # Storage volume shadow copies
    ("{4d36e96a-e325-11ce-bfc1-08002be10318}", "HDC"),              # IDE ATA/ATAPI controllers
)


@dataclass(frozen=True)
class SystemServices:
    """Services and storage-class filters of the control set Windows boots."""

    ref: FileRef                      # the SYSTEM hive
    path: Path                        # its host copy (pending logs replayed)
    control_set: ControlSetRef
    services: Dict[str, Service]      # lower-case name -> Service
    filters: Tuple[ClassFilter, ...]  # of STORAGE_CLASSES

    def service(self, name: str) -> Optional[Service]:
        return self.services.get(name.lower())

    @property
    def where(self) -> str:
        return self.control_set.describe()


def system_services(ctx: RepairContext) -> SystemServices:
    def load() -> SystemServices:
        from rescue.hive import Hive
        from rescue.registry.services import current_control_set, read_class_filters, read_services

        path = sources.hive_path(ctx, "SYSTEM")
        try:
            hive = Hive(path)
            try:
                cs = current_control_set(hive)
                services = {s.name.lower(): s for s in read_services(hive, cs)}
                filters = read_class_filters(hive, cs, (g for g, _ in STORAGE_CLASSES))
            finally:
                hive.close()
        except RescueError as exc:
            raise SourceError(unreadable("SYSTEM", exc), exc) from None
        return SystemServices(sources.hive_ref(ctx, "SYSTEM"), Path(path), cs, services, filters)

    return ctx.memo(f"system-services:{sources.discard_logs(ctx)}", load)


# --- which files exist -------------------------------------------------------------------------
def _listing_key(folder: str) -> str:
    return f"listing:{folder.lower().rstrip(chr(92))}"


def image_present(ctx: RepairContext, image: ServiceImage) -> Optional[bool]:
    """True when a file SCM would start is there (for an unquoted path with spaces: any of the
    names CreateProcess tries), False when none is, None when it cannot be told (no volume,
    another volume, a variable rescue does not expand)."""
    if image.unchecked or not image.candidates:
        return None
    seen = [file_present(ctx, c) for c in image.candidates]
    if any(p is True for p in seen):
        return True
    return False if all(p is False for p in seen) else None


def folder_listing(ctx: RepairContext, folder: str) -> Optional[frozenset]:
    """Lower-case names in `folder` of the Windows volume (one listing per command), or None
    when there is no volume to look at."""
    key = _listing_key(folder)
    given = ctx.known(key)
    if given is not None:
        return given
    if not ctx.on_disk:
        return None

    def load() -> frozenset:
        root = ctx.target.windows_root()
        return frozenset(n.lower() for n in ctx.target.listdir(FileRef(folder, root.disk, root.partition)))

    return ctx.memo(key, load)


def file_present(ctx: RepairContext, path: Optional[str]) -> Optional[bool]:
    """True/False for a file on the Windows volume; None when it cannot be told (no volume, or an
    image on another volume)."""
    if not path:
        return None
    folder, _, name = path.rpartition("\\")
    listing = folder_listing(ctx, folder or "\\")      # "\\Program.exe": the volume's root
    return None if listing is None else name.lower() in listing


def preset_listing(ctx: RepairContext, folder: str, names: Iterable[str]) -> None:
    """Give a folder's listing directly (validation cases)."""
    ctx.preset(_listing_key(folder), frozenset(n.lower() for n in names))
