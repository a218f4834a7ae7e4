"""Deleting files by pattern under the Windows folder, the offline way of mass incidents such as
the faulty security-agent update of July 2024 (`del %WINDIR%\\System32\\drivers\\CrowdStrike\\
C-00000291*.sys` from WinRE or a repair VM, as Microsoft's and CrowdStrike's remediation says).

A pattern names ONE folder under `\\Windows` of the Windows volume and a file name that may hold
`*` and `?` (Windows' wildcards, matched case-insensitively; no wildcard in folder names, no `..`).
Matching reads that folder's metadata only (one listing + lstat: a cost that does not grow with
the disk). Every matching file becomes a `DeleteFile` the safety engine applies after showing it:
files up to `KEEP_LIMIT` are kept in the backup (so `rescue undo` restores them byte for byte);
a larger one is refused unless the caller explicitly accepts that it is not kept.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

from rescue.errors import NotFoundError, UsageError
from rescue.safety.plan import DeleteFile, FileRef, Plan, Step
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.target import Target

KEEP_LIMIT = 64 << 20          # larger files are not copied into the backup on the disk itself
WINDOWS_FOLDER = "Windows"      # the Windows root's folder on its volume (%SystemRoot%)
_WILDCARDS = ("*", "?")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class FilePattern:
    """`\\Windows\\System32\\drivers\\CrowdStrike` + `C-00000291*.sys`."""

    folder: str          # backslash path from the Windows volume's root, no wildcards
    name: str            # a file name, may hold * and ?

    @property
    def text(self) -> str:
        return f"{self.folder}\\{self.name}"

    def matches(self, name: str) -> bool:
        return name_matcher(self.name).fullmatch(name) is not None


@dataclass(frozen=True)
class MatchedFile:
    ref: FileRef
    name: str
    size: int
    mtime: Optional[float]

    @property
    def written(self) -> str:
        return utc(self.mtime)


def utc(t: Optional[float]) -> str:
    """"2024-07-19 04:09:00 UTC" (or "time unknown")."""
    if t is None:
        return "time unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def name_matcher(glob: str) -> "re.Pattern[str]":
    """Windows' `*` (any run of characters) and `?` (one character); everything else literal
    (unlike fnmatch, `[` has no special meaning on Windows), case-insensitive as NTFS names are."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def parse_pattern(text: str) -> FilePattern:
    """Check and split a pattern such as `Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys`
    (also accepted: a leading `\\` or `C:\\`, and `/` as separator). Raises UsageError for a
    pattern outside the Windows folder, with `..`, or with a wildcard in a folder name."""
    raw = text.strip()
    if _DRIVE.match(raw):
        raw = raw[2:]
    parts = [p for p in raw.replace("/", "\\").split("\\") if p]
    if len(parts) < 2:
        raise UsageError(f"{text!r} names no file under the Windows folder.",
                         hint=r"Give a path such as 'Windows\System32\drivers\CrowdStrike\C-00000291*.sys'.")
    if any(p in (".", "..") for p in parts):
        raise UsageError(f"{text!r}: '.' and '..' are not allowed in a pattern.")
    if parts[0].lower() != WINDOWS_FOLDER.lower():
        raise UsageError(f"{text!r} is outside the Windows folder: rescue deletes files only under "
                         f"\\{WINDOWS_FOLDER} of the Windows volume.")
    folders, name = parts[:-1], parts[-1]
    wild = [p for p in folders if any(w in p for w in _WILDCARDS)]
    if wild:
        raise UsageError(f"{text!r}: wildcards are allowed in the file name only, not in the folder {wild[0]!r}.")
    return FilePattern("\\" + "\\".join(folders), name)


def find_matches(target: Target, pattern: FilePattern) -> Tuple[Tuple[MatchedFile, ...], Tuple[str, ...]]:
    """(matching files, matching names that are not plain files: folders, links, reparse points)
    in the pattern's folder of the Windows volume. Reads the folder's metadata only."""
    root = target.windows_root()
    folder = FileRef(pattern.folder, root.disk, root.partition)
    files, others = [], []
    for e in target.list_folder(folder):
        if not pattern.matches(e.name):
            continue
        if e.kind == "file":
            files.append(MatchedFile(FileRef(f"{pattern.folder}\\{e.name}", root.disk, root.partition),
                                     e.name, e.size, e.mtime))
        else:
            others.append(f"{e.name} ({e.kind})")
    return tuple(files), tuple(others)


def describe_match(m: MatchedFile) -> str:
    return f"{m.ref.path}: {m.size:,} bytes, last written {m.written}"


def delete_step(action: str, title: str, matches: Sequence[MatchedFile], *, not_kept: bool = False,
                reason: str = "", limit: int = KEEP_LIMIT, notes: Sequence[str] = ()) -> Step:
    """One step deleting `matches`: kept in the backup up to `limit` bytes each; a larger file
    only with `not_kept` (the caller's explicit "delete it without a copy"), else UsageError."""
    big = [m for m in matches if m.size > limit]
    if big and not not_kept:
        names = ", ".join(f"{m.ref.path} ({m.size:,} bytes)" for m in big[:3])
        raise UsageError(f"{len(big)} matching file(s) are larger than {format_bytes(limit, exact=True)} and would not be kept in "
                         f"the backup: {names}.",
                         hint="Nothing was written. Add --not-kept to delete them anyway without a copy "
                              "(`rescue undo` cannot bring those back).")
    changes = tuple(DeleteFile(m.ref, m.size, backup=m.size <= limit, reason=reason) for m in matches)
    return Step(action, title, changes, notes=tuple(notes) + tuple(describe_match(m) for m in matches))


def plan_delete(target: Target, pattern: FilePattern, *, not_kept: bool = False) -> Plan:
    """The plan of `rescue files delete`: every matching file, listed with its size and time.
    NotFoundError when nothing matches (the folder may not exist): nothing to confirm."""
    matches, others = find_matches(target, pattern)
    if not matches:
        extra = f" (only {', '.join(others)}, which are not files)" if others else ""
        raise NotFoundError(f"No file matches {pattern.text} on the Windows volume{extra}.",
                            hint="Nothing was written. Check the folder with `rescue inspect` or the pattern's spelling.")
    notes = tuple(f"left alone (not a plain file): {o}" for o in others)
    step = delete_step("files.delete", f"Delete {len(matches)} file(s) matching {pattern.text}", matches,
                       not_kept=not_kept, reason=f"matches {pattern.text}", notes=notes)
    return Plan(title=f"Delete files matching {pattern.text}", steps=(step,))
