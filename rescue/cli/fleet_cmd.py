"""Fleet mode on the command line: `--each` / `--manifest` / `--jobs` of diagnose, fix and undo.

One appliance launch for every VM's disks (rescue.fleet); JSON Lines on stdout with --json (one
object per VM, as each finishes), a progress bar with the current disk on stderr, a final table.
`--jobs N` splits the VMs into N shares, each run by a worker process with its own appliance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence

from rich.table import Table

from rescue.cli.common import ConsoleReporter, err, out, warn
from rescue.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from rescue.fleet import VmDisks, VmReport


def _manifest_file(vms: Sequence[VmDisks]) -> str:
    import shlex

    fd, path = tempfile.mkstemp(prefix="rescue-share-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        for vm in vms:
            fh.write(" ".join(shlex.quote(p) for p in vm.paths) + "\n")
    return path


def _workers(argv_for: Callable[[str], List[str]], parts: List[List[VmDisks]],
             reporter: ConsoleReporter) -> Iterator[dict]:
    """Run one worker process per share (`argv_for(manifest)`), yielding their JSON lines as they come."""
    import selectors

    total = sum(len(p) for p in parts)
    files, procs = [], []
    for part in parts:
        path = _manifest_file(part)
        files.append(path)
        procs.append(subprocess.Popen([sys.executable, "-m", "rescue.cli.main", *argv_for(path)],
                                      stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True))
    sel = selectors.DefaultSelector()
    for p in procs:
        assert p.stdout is not None
        sel.register(p.stdout, selectors.EVENT_READ, p)
    done = 0
    try:
        open_streams = len(procs)
        while open_streams:
            for key, _ in sel.select():
                line = key.fileobj.readline()          # type: ignore[union-attr]
                if not line:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                done += 1
                reporter.advance(done, total, doc.get("disk", ""))
                yield doc
    finally:
        for p in procs:
            p.wait()
        for f in files:
            os.unlink(f)


def _table(rows: Sequence[dict], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("disk", "found", "fixed", "backup", "status", "exit", "seconds"):
        t.add_column(col, overflow="fold")
    for r in rows:
        found = r.get("found_before") if r.get("found_before") is not None else r.get("found")
        fixed = r.get("fixed")
        status = r["status"] + (f": {r['error']}" if r.get("error") else "")
        t.add_row(r["disk"], ", ".join(found) if found else ("-" if found is None else "none"),
                  ", ".join(fixed) if fixed else "-", r.get("backup_id") or "-", status, str(r["exit_code"]),
                  f"{r['seconds']:.1f}")
    return t


def _doc(report: VmReport) -> dict:
    doc = report.to_json()
    if report.after is not None and report.diagnosis is not None:
        before = {f.id for f in report.diagnosis.found}
        still = {f.id for f in report.after.found}
        doc["found_before"] = sorted(before)
        doc["fixed"] = sorted(before - still)
    return doc


def _finish(docs: List[dict], json_output: bool, title: str) -> int:
    codes = [d["exit_code"] for d in docs]
    good = ("healthy", "planned", "nothing-to-do", "fixed", "undone")
    code = ExitCode.OK if all(d["status"] in good for d in docs) else max(codes)
    if not json_output:
        out.print(_table(docs, title))
        bad = [d for d in docs if d["status"] not in good]
        out.print(f"{len(docs)} VM(s): {len(docs) - len(bad)} ended well, {len(bad)} did not.")
    return code


def _emit(doc: dict, json_output: bool) -> None:
    if json_output:
        sys.stdout.write(json.dumps(doc, sort_keys=False) + "\n")
        sys.stdout.flush()


def run_fleet(kind: str, a: Dict[str, Any], *, child_argv: Callable[[str], List[str]],
              local: Callable[[Any, Any], Iterator[Any]], write: bool, title: str) -> int:
    """The common frame: VM groups, --jobs workers or one local appliance, output, exit code."""
    from rescue.fleet import Fleet, default_jobs, shares, vm_groups

    vms = vm_groups(a.get("disks") or [], a.get("manifest"))
    json_output = a["json_output"]
    reporter = ConsoleReporter(assume_yes=a.get("yes", False), json_output=json_output)
    jobs = a.get("jobs") or default_jobs(len(vms))
    docs: List[dict] = []
    started = time.monotonic()
    if jobs > 1 and len(vms) > 1:
        if write and not a.get("yes"):
            raise UsageError(f"--jobs {jobs} runs workers side by side that cannot each ask: add --yes "
                             "(or --dry-run, or --jobs 1 to confirm once).")
        for doc in _workers(child_argv, shares(vms, jobs), reporter):
            docs.append(doc)
            _emit(doc, json_output)
    else:
        with Fleet(vms, write=write, fmt=a.get("fmt"), accel=a.get("accel"), reporter=reporter) as fleet:
            for report in local(fleet, reporter):
                doc = _doc(report)
                docs.append(doc)
                _emit(doc, json_output)
    by_disk = {d["disk"]: d for d in docs}
    ordered = [by_disk[vm.name] for vm in vms if vm.name in by_disk]
    if not json_output:
        err.print(f"{len(vms)} VM(s) in {time.monotonic() - started:.1f} s"
                  + (f" ({jobs} appliances side by side)" if jobs > 1 and len(vms) > 1 else " (one appliance)"))
    return _finish(ordered, json_output, title)


def confirm_plans(reporter: ConsoleReporter) -> Callable[[Sequence[Any]], None]:
    """One plan summary for all VMs, one question."""
    def confirm(reports: Sequence[Any]) -> None:
        planned = [r for r in reports if r.plan is not None and not r.plan.empty]
        if not reporter.json_output:
            t = Table(title="Plans", title_justify="left")
            for col in ("disk", "found", "changes", "files", "status"):
                t.add_column(col, overflow="fold")
            for r in reports:
                n = len(r.plan.changes) if r.plan is not None else 0
                files = len(r.plan.files_touched()) if r.plan is not None else 0
                found = ", ".join(f.id for f in r.diagnosis.found) if r.diagnosis is not None else "-"
                t.add_row(r.vm.name, found or "none", str(n), str(files),
                          r.status.value + (f": {r.error}" if r.error else ""))
            out.print(t)
        changes = sum(len(r.plan.changes) for r in planned)
        reporter.confirm(f"Apply {changes} change(s) on {len(planned)} VM(s)?")
    return confirm


def option_argv(options: Sequence[Any], a: Dict[str, Any]) -> List[str]:
    """The scenario options given, as command-line words again (for worker processes)."""
    words: List[str] = []
    for o in options:
        v = a.get(o.name)
        if v is None or v is False:
            continue
        words += [o.flag] if v is True else [o.flag, str(v)]
    return words


def common_argv(a: Dict[str, Any]) -> List[str]:
    words = ["--json", "--jobs", "1"]
    for key, flag in (("fmt", "--format"), ("accel", "--accel")):
        if a.get(key):
            words += [flag, a[key]]
    if a.get("discard_hive_logs"):
        words.append("--discard-hive-logs")
    if a.get("reset_ntfs_log"):
        words.append("--reset-ntfs-log")
    if a.get("discard_hibernation"):
        words.append("--discard-hibernation")
    if a.get("yes"):
        words.append("--yes")
    if a.get("dry_run"):
        words.append("--dry-run")
    return words


def warn_unsupported(a: Dict[str, Any]) -> None:
    if a.get("root"):
        raise UsageError("--root picks one Windows of one VM; it cannot be given with --each or --manifest.")
    if a.get("expand"):
        raise UsageError("--expand grows one VM's disk through a staging overlay; run it per VM, not with --each.")


__all__ = ["run_fleet", "confirm_plans", "option_argv", "common_argv", "warn_unsupported", "warn"]
