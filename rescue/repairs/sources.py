"""What checks read, read once per command and shared (through `RepairContext.memo`).

Each function returns a typed record or raises `SourceError`, which names the source and the one
finding that stands for "this source could not be read" (the runner shows it once, however many
checks needed the source). Keys include the options a read depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

from rescue.errors import RescueError, UnsafeStateError
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, UNKNOWN, Finding
from rescue.fileref import FileRef


class SourceError(RescueError):
    """A source (the BCD, a hive, the Windows volume) could not be read; `finding` says so."""

    def __init__(self, finding: Finding, cause: RescueError):
        super().__init__(cause.message, hint=cause.hint)
        self.finding = finding
        self.cause = cause
        self.exit_code = cause.exit_code


# The ids of unreadable-source findings already in this command's output (rescue.repairs.runner
# shows each once, under the first check that needed the source).
SHOWN_SOURCES = "runner:shown-sources"


def explained(ctx: RepairContext, exc: SourceError) -> None:
    """A check that turned the unreadable source into its own finding (the BCD store check says
    "missing, rebuild it") has said it all: the generic "<source> readable: cannot tell" line is not
    shown again for the checks after it."""
    ctx.memo(SHOWN_SOURCES, set).add(exc.finding.id)


def unreadable(name: str, exc: RescueError) -> Finding:
    """The finding for a hive (or the BCD) that cannot be used: unsafe (dirty, logs not
    replayable) blocks every fix; anything else is "cannot tell"."""
    if isinstance(exc, UnsafeStateError):
        return Finding(f"unsafe-{name.lower()}-hive", f"{name} hive consistent", FOUND, str(exc), blocker=True)
    return Finding(f"{name.lower()}-unreadable", f"{name} readable", UNKNOWN, str(exc))


def discard_logs(ctx: RepairContext) -> bool:
    return bool(ctx.options.get("discard_hive_logs", False))


# --- the BCD store the firmware uses ---------------------------------------------------------------
@dataclass(frozen=True)
class BcdSource:
    store: Any                  # rescue.bcd.model.BcdStore
    ref: FileRef


def bcd(ctx: RepairContext) -> BcdSource:
    """The store the firmware uses (or the BCD file given as the target)."""
    def load() -> BcdSource:
        from rescue.bcd.store import open_store, store_ref

        try:
            ref = store_ref(ctx.target, None)
            return BcdSource(open_store(ctx.target, ref, discard_logs(ctx)), ref)
        except RescueError as exc:
            raise SourceError(unreadable("BCD", exc), exc) from None

    return ctx.memo(f"bcd:{discard_logs(ctx)}", load)


# --- registry hives ------------------------------------------------------------------------------
def hive_path(ctx: RepairContext, name: str) -> Path:
    """Host copy (pending logs replayed) of a hive of the Windows root: SYSTEM, SOFTWARE, ...
    For a bare hive file as the target, that file is the hive whatever the name."""
    def load() -> Path:
        from rescue.safety.hivecheck import safe_hive_copy

        try:
            return safe_hive_copy(ctx.target, hive_ref(ctx, name), discard_hive_logs=discard_logs(ctx))
        except RescueError as exc:
            raise SourceError(unreadable(name, exc), exc) from None

    return ctx.memo(f"hive:{name}:{discard_logs(ctx)}", load)


def hive_ref(ctx: RepairContext, name: str) -> FileRef:
    given = ctx.known(f"hiveref:{name}")
    if given is not None:
        return given
    if ctx.hive_file is not None:
        return ctx.hive_file
    root = ctx.target.windows_root()
    return FileRef(f"\\Windows\\System32\\config\\{name}", root.disk, root.partition)


def registry(ctx: RepairContext) -> Any:
    """rescue.registry.summary.RegistrySummary of the SYSTEM hive under the options that shape it
    (--temp-drive, --ram, --dump-file)."""
    o = ctx.options
    temp = o.get("temp_drive") or "D:"
    key = f"registry:{temp}:{o.get('ram_bytes')}:{o.get('dump_file')}:{discard_logs(ctx)}"

    def load() -> Any:
        from rescue.registry.pagefile import scan_pagefiles
        from rescue.registry.summary import summarize_hive

        path = hive_path(ctx, "SYSTEM")
        try:
            found = scan_pagefiles(ctx.target) if ctx.on_disk else ()
            return summarize_hive(path, ref=hive_ref(ctx, "SYSTEM"), layout=ctx.layout, found=tuple(found),
                                  temp_drive=temp, ram_bytes=o.get("ram_bytes"), dump_file=o.get("dump_file"))
        except RescueError as exc:
            raise SourceError(unreadable("SYSTEM", exc), exc) from None

    return ctx.memo(key, load)


# --- the Windows volume's space ------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceSource:
    findings: Tuple[Finding, ...]
    scan: Any                   # rescue.space.cleanup.VolumeScan


def space(ctx: RepairContext, *, for_cleanup: bool = False) -> SpaceSource:
    """Free space, the Disk Cleanup categories and free-space fragmentation of the Windows volume.
    `for_cleanup` also reads each file's attributes (needed only when the scan becomes a plan).
    An earlier scan of this launch (`ctx.prior["scan"]`, with the paths deleted since) is reused."""
    def load() -> SpaceSource:
        from rescue.space.findings import assess_windows_volume

        try:
            findings, scan, _frag = assess_windows_volume(*ctx.target.disk_set(), check_readonly=for_cleanup,
                                                          prior=ctx.prior.get("scan"))
        except RescueError as exc:
            finding = Finding("space-low", "OS volume has at least 300 MB free", UNKNOWN, str(exc))
            raise SourceError(finding, exc) from None
        return SpaceSource(tuple(findings), scan)

    key = f"space:{for_cleanup}"
    if not ctx.on_disk and ctx.known(key) is None:
        raise SourceError(Finding("space-low", "OS volume has at least 300 MB free", UNKNOWN,
                                  "a hive file has no volume"), RescueError("no volume"))
    return ctx.memo(key, load)


def space_scan(ctx: RepairContext) -> Optional[Any]:
    """The cleanup scan read by this command so far (for the next pass), or None."""
    for key in ("space:True", "space:False"):
        src = ctx.known(key)
        if src is not None:
            return src.scan
    return None


# --- giving sources directly (validation cases build them on the host) --------------------------------
def preset_hive(ctx: RepairContext, name: str, path: Path) -> None:
    ctx.preset(f"hive:{name}:{discard_logs(ctx)}", Path(path))
    ctx.preset(f"hiveref:{name}", FileRef(str(path)))


def preset_bcd(ctx: RepairContext, path: Path) -> None:
    from rescue.bcd.model import BcdStore

    ref = FileRef(str(path))
    ctx.preset(f"bcd:{discard_logs(ctx)}", BcdSource(BcdStore.open(Path(path), name=str(path)), ref))


def preset_space(ctx: RepairContext, findings: Tuple[Finding, ...], scan: Any, *, for_cleanup: bool = False) -> None:
    ctx.preset(f"space:{for_cleanup}", SpaceSource(tuple(findings), scan))


# --- a folder of the Windows volume (metadata only) -----------------------------------------------------
def folder(ctx: RepairContext, path: str) -> Tuple[Any, ...]:
    """The entries (rescue.target.FolderEntry) directly in folder `path` of the Windows volume,
    from one listing + lstat of that folder ((): the folder does not exist). A bare hive file has
    no volume: "cannot tell"."""
    def load() -> Tuple[Any, ...]:
        if not ctx.on_disk:
            raise _no_volume()
        root = ctx.target.windows_root()
        try:
            return tuple(ctx.target.list_folder(FileRef(path, root.disk, root.partition)))
        except RescueError as exc:
            raise SourceError(Finding(f"folder-unreadable:{path}", f"{path} readable", UNKNOWN, str(exc)), exc) from None

    return ctx.memo(f"folder:{path.lower()}", load)


def preset_folder(ctx: RepairContext, path: str, entries: Tuple[Any, ...]) -> None:
    ctx.preset(f"folder:{path.lower()}", tuple(entries))


# --- one file of the Windows volume -----------------------------------------------------------------
def _no_volume() -> SourceError:
    """Checks of files on a bare hive file: one "cannot tell" for all of them."""
    return SourceError(Finding("no-windows-volume", "Windows volume readable", UNKNOWN,
                               "a hive file has no Windows volume: file checks need the disk"),
                       RescueError("no volume"))


def _root_ref(ctx: RepairContext, path: str) -> FileRef:
    if not ctx.on_disk:
        raise _no_volume()
    root = ctx.target.windows_root()
    return FileRef(path, root.disk, root.partition)


def file_size(ctx: RepairContext, path: str) -> Optional[int]:
    """Size of file `path` of the Windows volume, None when it does not exist (metadata only)."""
    def load() -> Optional[int]:
        ref = _root_ref(ctx, path)
        try:
            return ctx.target.size(ref) if ctx.target.exists(ref) else None
        except RescueError as exc:
            raise SourceError(Finding(f"file-unreadable:{path}", f"{path} readable", UNKNOWN, str(exc)), exc) from None

    return ctx.memo(f"file-size:{path.lower()}", load)


def file_data(ctx: RepairContext, path: str) -> bytes:
    """The bytes of file `path` of the Windows volume (for a plan that moves a small file)."""
    def load() -> bytes:
        ref = _root_ref(ctx, path)
        try:
            return ctx.target.read_bytes(ref)
        except RescueError as exc:
            raise SourceError(Finding(f"file-unreadable:{path}", f"{path} readable", UNKNOWN, str(exc)), exc) from None

    return ctx.memo(f"file-data:{path.lower()}", load)


def preset_file(ctx: RepairContext, path: str, data: Optional[bytes]) -> None:
    """Give a file of the Windows volume directly (None: it does not exist)."""
    ctx.preset(f"file-size:{path.lower()}", None if data is None else len(data))
    if data is not None:
        ctx.preset(f"file-data:{path.lower()}", bytes(data))
