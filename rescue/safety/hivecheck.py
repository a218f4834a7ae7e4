"""Is a hive safe to read and to edit? Dirty hives and pending transaction logs.

hivex ignores .LOG1/.LOG2 and marks the hive clean when it commits, so editing a hive whose newest
data is still in its logs would silently throw away Windows' last writes. For every hive a command
reads or edits, `assess` looks at the base block (rescue.hive.regf) and the logs beside it and
decides:

  clean      sequence numbers equal, no log entry newer than the hive: use the file as it is.
  replayed   dirty, and the new-format logs replay cleanly (rescue.safety.logreplay): use the replayed
             copy; when the plan edits it, the upload writes replayed+edited and the logs are emptied.
  refused    dirty (or clean with newer log entries) and the logs cannot be replayed: editing is
             refused with an explanation and the `--discard-hive-logs` override.
  discarded  the same, with --discard-hive-logs: the hive is used as last fully written.

Everything happens on host copies; nothing here writes to the target.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from rescue.errors import CorruptHiveError, UnsafeStateError
from rescue.hive.regf import BASE_BLOCK_SIZE, RegfHeader, parse_header
from rescue.safety.logreplay import LogFile, ReplayError, _seq_before, newest_entry, parse_log, replay
from rescue.fileref import FileRef
from rescue.target import sha256_file

if TYPE_CHECKING:
    from rescue.report import Reporter
    from rescue.target import Target

LOG_SUFFIXES = (".LOG1", ".LOG2", ".LOG")
DISCARD_HINT = (
    "Boot the VM once so Windows recovers the hive itself, or rerun with --discard-hive-logs to edit "
    "the hive as last fully written (the changes only the logs hold are then lost; the logs are kept "
    "in the backup). Nothing was written."
)


@dataclass(frozen=True)
class CompanionLog:
    ref: FileRef
    size: int
    sha256: str
    parsed: LogFile


@dataclass(frozen=True)
class HiveState:
    ref: FileRef
    label: str                    # how messages name the hive
    original: Path                # host copy, byte for byte as on the target
    sha256: str                   # of `original`
    header: RegfHeader
    logs: tuple[CompanionLog, ...]   # the .LOG1/.LOG2/.LOG files that exist beside it
    verdict: str                  # clean | replayed | refused | discarded
    base: Path                    # what readers and edits start from
    summary: str                  # one sentence for notes ("replayed 24 log entries ...")
    problem: str | None = None    # refused/discarded: why the logs could not be used

    @property
    def pending_logs(self) -> tuple[CompanionLog, ...]:
        """Logs with content that must be emptied after an edited hive is uploaded (replayed or
        discarded): hivex marks the hive clean, and stale entries must never be replayed by Windows
        over our changes."""
        if self.verdict not in ("replayed", "discarded"):
            return ()
        return tuple(lg for lg in self.logs if lg.size > 0)

    def refusal(self) -> UnsafeStateError:
        return UnsafeStateError(f"{self.label}: {self.problem}.", hint=DISCARD_HINT)

    def to_json(self) -> dict:
        return {"file": self.ref.to_json(), "verdict": self.verdict, "summary": self.summary,
                "sequence": [self.header.primary_sequence, self.header.secondary_sequence],
                "logs": [lg.parsed.to_json() for lg in self.logs]}


# Per target, per (ref, discard flag): assessed once per command (readers and execute() share it).
_CACHE: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def assess(target: Target, ref: FileRef, *, discard_hive_logs: bool = False) -> HiveState:
    cache = _CACHE.setdefault(target, {})
    key = (ref, discard_hive_logs)
    if key not in cache:
        cache[key] = _assess(target, ref, discard_hive_logs)
    return cache[key]


def forget(target: Target, refs: Iterable[FileRef] = ()) -> None:
    """Drop cached assessments and the host copies of `refs` (after the target's files changed,
    by an apply, a rollback or an undo), so a later read in the same command sees the new bytes."""
    _CACHE.pop(target, None)
    for ref in refs:
        target.invalidate(ref)


def _assess(target: Target, ref: FileRef, discard: bool) -> HiveState:
    label = target.describe(ref)
    original = target.local_copy(ref)
    with open(original, "rb") as fh:
        head = fh.read(BASE_BLOCK_SIZE)
    header = parse_header(head, what=f"file {label}")
    logs = []
    for suffix in LOG_SUFFIXES:
        lref = target.companion(ref, suffix)
        if not target.exists(lref):
            continue
        size = target.size(lref)
        if size == 0:
            logs.append(CompanionLog(lref, 0, _EMPTY_SHA, parse_log(suffix, b"")))
            continue
        local = target.local_copy(lref)
        data = Path(local).read_bytes()
        logs.append(CompanionLog(lref, len(data), sha256_file(local), parse_log(suffix, data)))
    # The fields every verdict shares (HiveState's first six), given to each constructor below.
    common: dict[str, Any] = dict(ref=ref, label=label, original=original, sha256=sha256_file(original), header=header,
                  logs=tuple(logs))
    seqs = f"{header.primary_sequence}/{header.secondary_sequence}"

    dirty = header.dirty or not header.checksum_ok
    if not dirty:
        newest = {lg.parsed.name: newest_entry(lg.parsed) for lg in logs if lg.parsed.format == "new"}
        newer = [lg for lg in logs if newest.get(lg.parsed.name) is not None
                 and _seq_before(header.secondary_sequence, newest[lg.parsed.name] or 0)]
        if not newer:
            return HiveState(**common, verdict="clean", base=original, summary=f"clean (sequence {seqs})")
        names = ", ".join(lg.parsed.name for lg in newer)
        problem = (f"the hive is marked clean (sequence {seqs}) but {names} hold entries up to "
                   f"{max(newest[lg.parsed.name] or 0 for lg in newer)}, newer than the hive, which Windows "
                   "would not apply; rescue cannot tell which state is right")
        return _not_replayed(common, problem, discard)

    why = ("its base block checksum is wrong" if not header.checksum_ok else
           f"its sequence numbers differ ({seqs}): Windows did not finish writing it and its newest "
           "changes are in the transaction logs")
    pending = [(lg.parsed.name, Path(target.local_copy(lg.ref)).read_bytes())
               for lg in logs if lg.size > 0 and lg.parsed.name in (".LOG1", ".LOG2")]
    old = [lg.parsed.name for lg in logs if lg.parsed.format == "old"]
    try:
        if not pending:
            raise ReplayError("there are no .LOG1/.LOG2 files to recover it from"
                              + (f" ({', '.join(old)} use the old pre-Windows 8.1 format)" if old else ""))
        result = replay(Path(original).read_bytes(), pending)
    except ReplayError as exc:
        return _not_replayed(common, f"the hive is dirty ({why}), and the logs cannot be replayed: {exc}", discard)
    replayed = target.workdir / f"replayed-{Path(original).name}"
    replayed.write_bytes(result.data)
    try:
        from rescue.hive import Hive

        Hive(replayed).close()      # hivex must accept the result before anyone relies on it
    except CorruptHiveError as exc:
        return _not_replayed(common, f"the hive is dirty and replaying its logs gave a hive hivex rejects ({exc.message})",
                             discard)
    return HiveState(**common, verdict="replayed", base=replayed,
                     summary=f"dirty (sequence {seqs}): {result.describe()} on a host copy")


def _not_replayed(common: dict[str, Any], problem: str, discard: bool) -> HiveState:
    if discard:
        return HiveState(**common, verdict="discarded", base=common["original"], problem=problem,
                         summary=f"--discard-hive-logs: used as last fully written ({problem})")
    return HiveState(**common, verdict="refused", base=common["original"], problem=problem,
                     summary=f"refused: {problem}")


_EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def safe_hive_copy(target: Target, ref: FileRef, *, discard_hive_logs: bool = False) -> Path:
    """A host copy of the hive `ref` for READING: with pending .LOG1/.LOG2 entries replayed when the
    hive is dirty, else the plain copy. When the logs cannot be replayed the plain copy is returned
    with a warning (reading is never refused; `execute` refuses to edit such a hive)."""
    state = assess(target, ref, discard_hive_logs=discard_hive_logs)
    announce(target, state, reading=True)
    return state.base


def announce(target: Target, state: HiveState, *, reading: bool = False, reporter: Reporter | None = None) -> None:
    """Say once per command what was found about a hive that is not clean (through the command's
    reporter: the CLI puts it on stderr)."""
    from rescue.report import SILENT

    reporter = reporter or getattr(target, "reporter", None) or SILENT
    info, warn = reporter.info, reporter.warn
    told = _CACHE.setdefault(target, {}).setdefault("told", set())
    if state.verdict == "clean" or state.ref in told:
        return
    told.add(state.ref)
    if state.verdict == "replayed":
        info(f"{state.label}: {state.summary}; the disk is unchanged so far.")
    elif state.verdict == "refused" and reading:
        warn(f"{state.label}: {state.problem}. Showing it as last fully written; editing it will be "
             "refused unless --discard-hive-logs is given.")
    elif state.verdict == "discarded":
        warn(f"{state.label}: {state.summary}.")


def open_hive(target: Target, ref: FileRef, discard_hive_logs: bool = False):
    """A read-only `Hive` on a host copy of `ref`; errors name the file on the disk, not the copy."""
    from rescue.hive import Hive

    local = safe_hive_copy(target, ref, discard_hive_logs=discard_hive_logs)
    try:
        return Hive(local)
    except CorruptHiveError as exc:
        label = target.describe(ref) if hasattr(target, "describe") else ref.path
        raise CorruptHiveError(str(exc).replace(str(local), label)) from None
