"""How plans, results and backups look: rich tables for people, stable JSON for machines, and the
confirmation prompt (which never hangs a script: without a terminal, --yes is required)."""

from __future__ import annotations

import sys

from rich.table import Table

from rescue.errors import DeclinedError, UsageError
from rescue.hive.values import decode_value, type_name
from rescue.safety.plan import DeleteFile, DeleteKey, DeleteValue, FileRef, Plan, SetValue, WriteFile

MAX_ROWS_PER_STEP = 12      # a cleanup step may delete thousands of files: show some, count the rest
MAX_VALUE_CHARS = 60


def file_label(target, ref: FileRef) -> str:
    """"C:\\Windows\\System32\\config\\SYSTEM" when the volume has a letter, else the path and its
    disk/partition; a bare host file as given."""
    if ref.on_host:
        return ref.path
    layout = getattr(target, "layout", None)
    letter = layout.letter_of(ref.disk, ref.partition) if layout is not None else None
    if letter:
        return f"{letter}{ref.path}"
    return f"{ref.path} (disk {ref.disk} partition {ref.partition})"


def target_label(target) -> str:
    """What the user gave as TARGET (used in advice such as `rescue undo TARGET`)."""
    if hasattr(target, "session"):
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


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def change_cells(change) -> tuple[str, str]:
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
        return "delete file", f"{_mb(change.size)}, {kept} → (deleted)"
    if isinstance(change, WriteFile):
        return "write file", f"→ {_mb(len(change.data))}"
    return type(change).__name__, ""


def plan_table(target, plan: Plan) -> Table:
    table = Table(title=plan.title, title_justify="left", show_lines=False, expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("step")
    table.add_column("file")
    table.add_column("change")
    table.add_column("before → after")
    for i, step in enumerate(plan.steps, 1):
        if not step.changes:
            table.add_row(str(i), step.title, "", f"[dim]skipped: {step.skipped or 'nothing to change'}[/dim]", "")
            continue
        shown = step.changes if len(step.changes) <= MAX_ROWS_PER_STEP else step.changes[:MAX_ROWS_PER_STEP - 2]
        last_file = None
        for j, change in enumerate(shown):
            what, before_after = change_cells(change)
            label = file_label(target, change.file)
            # The file is named once per run of changes to it (a hive path is long; repeating it is noise).
            table.add_row(str(i) if j == 0 else "", step.title if j == 0 else "",
                          label if label != last_file else "", what, before_after)
            last_file = label
        rest = step.changes[len(shown):]
        if rest:
            size = sum(c.size for c in rest if isinstance(c, DeleteFile))
            table.add_row("", "", f"… and {len(rest):,} more", "same kind of change",
                          f"{_mb(size)} in all" if size else "")
    return table


def print_plan(target, plan: Plan) -> None:
    from rescue.cli.common import out

    if plan.empty and not plan.steps:
        out.print(f"{plan.title}: nothing to do.")
        return
    if plan.prelude is not None:
        pre = Table(title=f"First: {plan.prelude.title}", title_justify="left", expand=False)
        pre.add_column("#", justify="right", style="dim")
        pre.add_column("step")
        for i, line in enumerate(plan.prelude.lines, 1):
            pre.add_row(str(i), line)
        out.print(pre)
    out.print(plan_table(target, plan))
    for step in plan.steps:
        for note in step.notes:
            out.print(f"  note ({step.action}): {note}")


def print_resets(resets) -> None:
    """The NTFS log resets a run makes before its first write (rescue.safety.ntfs_reset)."""
    from rescue.cli.common import out

    if not resets:
        return
    table = Table(title="First: reset the NTFS log (what Windows left unclean)", title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("step")
    n = 0
    for r in resets:
        for line in r.lines():
            n += 1
            table.add_row(str(n), line)
    out.print(table)
    out.print("  The last metadata changes Windows made before it stopped are dropped with the log; chkdsk "
              "repairs the volume at the next boot. `rescue undo` restores every changed file but not the log.")


def resets_question(resets, question: str) -> str:
    """The confirmation question, with the log resets first when there are any."""
    question = question[:1].upper() + question[1:]
    if not resets:
        return question
    wheres = ", ".join(r.where for r in resets)
    return f"Reset the NTFS log of {wheres}, then {question[:1].lower()}{question[1:]}"


def confirm(question: str, *, assume_yes: bool) -> None:
    """Ask before writing. No terminal and no --yes: refuse (a script must never hang on a prompt)."""
    if assume_yes:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("Refusing to write without confirmation: stdin is not a terminal; add --yes to apply "
                         "the plan shown (or --dry-run to only show it).")
    from rescue.cli.common import err

    err.print(f"{question} [y/N] ", end="")
    try:
        answer = sys.stdin.readline().strip().lower()
    except (OSError, ValueError):
        answer = ""
    if answer not in ("y", "yes"):
        raise DeclinedError("Declined at the prompt; nothing was changed.")
