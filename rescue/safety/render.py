"""Words for plans, files and values, shared by the engine's messages and the CLI's tables (which
are drawn in rescue.cli.views: this module stays free of any terminal library)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rescue.hive.values import decode_value, type_name
from rescue.disk.ptable import boot_indicators
from rescue.safety.plan import DeleteFile, DeleteKey, DeleteValue, FileRef, SetActivePartition, SetValue, WriteFile
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.safety.ntfs_reset import PlannedReset
    from rescue.safety.plan import Change, Plan

if TYPE_CHECKING:
    from rescue.target import Target

MAX_ROWS_PER_STEP = 12      # a cleanup step may delete thousands of files: show some, count the rest
MAX_VALUE_CHARS = 60


def file_label(target: Target, ref: FileRef) -> str:
    """"C:\\Windows\\System32\\config\\SYSTEM" when the volume has a letter, else the path and its
    disk/partition; a bare host file as given."""
    if ref.on_host:
        return ref.path
    layout = target.layout
    letter = layout.letter_of(*ref.volume) if layout is not None else None
    if letter:
        return f"{letter}{ref.path}"
    return f"{ref.path} (disk {ref.disk} partition {ref.partition})"


def change_label(target: Target, change: Change) -> str:
    """Where a change writes: its file, or the disk sector (an MBR change)."""
    if isinstance(change, SetActivePartition):
        return change.where
    return file_label(target, change.file)


def target_label(target: Target) -> str:
    """What the user gave as TARGET (used in advice such as `rescue undo TARGET`)."""
    if target.session is not None:
        return " ".join(img.path for img in target.session.images)
    return getattr(target, "path", "TARGET")


def show_value(type_: int | None, data: bytes | None) -> str:
    if data is None or type_ is None:
        return "(absent)"
    try:
        v = decode_value(type_, data)
    except Exception:  # a value whose bytes do not fit its type: show the bytes
        v = bytes(data)
    if isinstance(v, (bytes, bytearray)):
        text = v.hex()
    elif isinstance(v, list):
        text = " | ".join(str(x) for x in v) or "(empty list)"
    elif isinstance(v, int):
        text = f"{v} ({v:#x})"
    else:
        text = repr(v)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS - 1] + "…"
    return f"{text} [{type_name(type_)}]"


def change_cells(change: Change) -> tuple[str, str]:
    """(what, before → after) for one change."""
    if isinstance(change, SetValue):
        return (f"set {change.key}\\{change.name or '(Default)'}",
                f"{show_value(change.before_type, change.before_data)} → {show_value(change.type, change.data)}")
    if isinstance(change, DeleteValue):
        return (f"delete value {change.key}\\{change.name or '(Default)'}",
                f"{show_value(change.before_type, change.before_data)} → (deleted)")
    if isinstance(change, DeleteKey):
        return f"delete key {change.key} (with its subkeys)", "(exists) → (deleted)"
    if isinstance(change, DeleteFile):
        kept = "kept in the backup" if change.backup else "not kept"
        return "delete file", f"{format_bytes(change.size)}, {kept} → (deleted)"
    if isinstance(change, WriteFile):
        return "write file", f"→ {format_bytes(len(change.data))}"
    if isinstance(change, SetActivePartition):
        def flags(sector: bytes) -> str:
            return " ".join(f"{b:02x}" for b in boot_indicators(sector))
        return (f"mark partition {change.partition} active (boot indicator 0x80; 512-byte sector kept in the backup)",
                f"boot indicators {flags(change.before)} → {flags(change.after)}")
    return type(change).__name__, ""


def changes_phrase(plan: Plan, n_files: int) -> str:
    """"3 change(s) to 2 file(s)", and the disk sectors written ("and sector 0 (MBR) of os.raw")."""
    text = f"{len(plan.changes)} change(s) to {n_files} file(s)"
    disks = [c.disk_label or f"disk {c.disk}" for c in plan.sector_changes]
    return text + (f" and sector 0 (MBR) of {', '.join(disks)}" if disks else "")


def resets_question(resets: Sequence[PlannedReset], question: str) -> str:
    """The confirmation question, with the NTFS log resets (rescue.safety.ntfs_reset) first."""
    question = question[:1].upper() + question[1:]
    if not resets:
        return question
    wheres = ", ".join(r.where for r in resets)
    return f"Reset the NTFS log of {wheres}, then {question[:1].lower()}{question[1:]}"
