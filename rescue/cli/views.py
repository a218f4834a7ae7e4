"""How the core's typed records look on a terminal: plans, diagnoses, undo previews, backups.

The core hands these records to its reporter (rescue.report) or returns them; this module is the
only place they become rich tables and sentences.
"""

from __future__ import annotations

from rich.table import Table
from typing import TYPE_CHECKING, Sequence

from rescue.cli.common import out, warn
from rescue.safety.plan import DeleteFile, Plan
from rescue.safety.render import change_cells, change_label, file_label
from rescue.units import format_bytes

if TYPE_CHECKING:
    from rescue.repairs.findings import Diagnosis
    from rescue.safety.apply import ApplyResult
    from rescue.safety.backup import Manifest
    from rescue.safety.ntfs_reset import ResetPreview
    from rescue.safety.undo import UndoPreview, UndoResult
    from rescue.target import Target

MAX_ROWS_PER_STEP = 12      # a cleanup step may delete thousands of files: show some, count the rest
MARK = {"found": "[red]FOUND[/red]", "ok": "[green]ok[/green]", "unknown": "[yellow]?[/yellow]"}


def show(target: Target, item: object) -> None:
    """Draw whatever record the core reported (rescue.report.Reporter.show)."""
    from rescue.repairs.findings import Diagnosis
    from rescue.repairs.runner import DiagnosisView
    from rescue.safety.ntfs_reset import ResetPreview
    from rescue.safety.undo import UndoPreview

    if isinstance(item, Plan):
        print_plan(target, item)
    elif isinstance(item, ResetPreview):
        print_resets(item)
    elif isinstance(item, UndoPreview):
        print_undo_preview(target, item)
    elif isinstance(item, DiagnosisView):
        render_diagnosis(item.diagnosis, title=item.title)
    elif isinstance(item, Diagnosis):
        render_diagnosis(item)
    else:
        out.print(str(item), markup=False)


# --- plans ---------------------------------------------------------------------------------------
def plan_table(target: Target, plan: Plan) -> Table:
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
            label = change_label(target, change)
            # The file is named once per run of changes to it (a hive path is long; repeating it is noise).
            table.add_row(str(i) if j == 0 else "", step.title if j == 0 else "",
                          label if label != last_file else "", what, before_after)
            last_file = label
        rest = step.changes[len(shown):]
        if rest:
            size = sum(c.size for c in rest if isinstance(c, DeleteFile))
            table.add_row("", "", f"… and {len(rest):,} more", "same kind of change",
                          f"{format_bytes(size)} in all" if size else "")
    return table


def print_plan(target: Target, plan: Plan) -> None:
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


def print_resets(preview: ResetPreview) -> None:
    """The NTFS log resets a run makes before its first write (rescue.safety.ntfs_reset)."""
    table = Table(title="First: reset the NTFS log (what Windows left unclean)", title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("step")
    n = 0
    for r in preview.resets:
        for line in r.lines():
            n += 1
            table.add_row(str(n), line)
    out.print(table)
    out.print(f"  {preview.CAVEAT}")


def apply_outcome(result: ApplyResult) -> None:
    """One sentence for what the safety engine did (rescue.safety.apply.ApplyResult)."""
    if result.nothing_to_do:
        out.print("Nothing to do: the disk already is as the plan wants it; nothing was written.")
    elif result.dry_run:
        out.print("Dry run: nothing was written.")
    elif result.backup_id:
        sectors = "".join(f" and {e.label}" for e in result.sectors)
        out.print(f"[green]Applied[/green] {result.changes} change(s) to {result.changed_files} file(s){sectors}; each was "
                  f"read back and matches. Backup {result.backup_id} is in {result.backup_location}; "
                  f"`rescue undo {result.target_label}` restores it.")


# --- diagnoses -----------------------------------------------------------------------------------
def render_diagnosis(diag: Diagnosis, title: str = "Diagnosis") -> None:
    t = Table(title=title, title_justify="left", show_lines=False)
    t.add_column("check")
    t.add_column("result")
    t.add_column("evidence", overflow="fold")
    for f in diag.findings:
        t.add_row(f.title, MARK.get(str(f.status), str(f.status)) + (" (blocks fixes)" if f.blocker else ""),
                  f.evidence)
    out.print(t)


# --- undo and backups ----------------------------------------------------------------------------
def print_undo_preview(target: Target, preview: UndoPreview) -> None:
    manifest = preview.manifest
    table = Table(title=f"Undo {manifest.kind} {manifest.id} ({manifest.title or 'no title'}, {manifest.status})",
                  title_justify="left")
    table.add_column("file")
    table.add_column("action")
    table.add_column("now → after undo")
    for entry, now in preview.states:
        if entry.stored:
            action = "already identical" if now == entry.sha256 else "restore from backup"
            digest = entry.sha256 or "(not recorded)"      # make_backup hashes every copy it keeps
            to = f"sha256 {digest[:12]}… ({entry.size:,} bytes)"
        elif not entry.existed:
            action = "remove (created by the run)" if now != "absent" else "already absent"
            to = "(absent)"
        else:
            continue
        shown_now = "(absent)" if now == "absent" else f"sha256 {now[:12]}…"
        table.add_row(file_label(target, entry.file), action, f"{shown_now} → {to}")
    for sector, now in preview.sectors:
        action = "already identical" if now == sector.sha256 else "write back from backup (byte for byte)"
        table.add_row(sector.label, action, f"sha256 {now[:12]}… → sha256 {sector.sha256[:12]}… ({sector.size} bytes)")
    out.print(table)
    if preview.not_kept:
        out.print(f"  {len(preview.not_kept)} file(s) deleted by that run were not kept (by design, e.g. a page "
                  "file) and cannot be restored.")
    for e in preview.changed_since:
        out.print(f"  note: {file_label(target, e.file)} changed after that run (Windows booted since?); "
                  "undo puts back the state from before the run anyway.")
    for line in preview.not_undone:
        out.print(f"  note: {line}")


def undo_outcome(result: UndoResult) -> None:
    if result.dry_run:
        out.print("Dry run: nothing was written.")
    elif not result.applied:
        out.print("Every file already is as the backup holds it; nothing to do.")
    else:
        sectors = "".join(f", wrote back {e.label}" for e in result.restored_sectors)
        out.print(f"[green]Restored[/green] {len(result.restored)} file(s) and removed {len(result.removed)}{sectors} from "
                  f"backup {result.backup_id}; each reads back byte-identical (sha256). "
                  f"`rescue undo {result.target_label} --backup {result.undo_backup_id}` would undo this undo.")
        if result.not_kept:
            warn(f"{result.not_kept} file(s) deleted by that run were not kept and were not restored.")


def backups_table(target: Target, manifests: Sequence[Manifest]) -> Table:
    from rescue.safety import backup as B

    table = Table(title=f"Backups on {B.location(target, '')}".rstrip("\\/"), title_justify="left")
    for col in ("id", "created", "kind", "status", "files", "title"):
        table.add_column(col)
    for m in manifests:
        status = m.status + (f" (by {m.undone_by})" if m.undone_by else "")
        title = m.title + (f" [undoes {m.undoes}]" if m.undoes else "")
        table.add_row(m.id, m.created, m.kind, status, f"{m.kept}/{len(m.files)} kept", title)
    return table
