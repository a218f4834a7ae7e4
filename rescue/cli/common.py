"""Shared CLI plumbing: consoles, JSON output, and opening a TARGET (disk set or bare hive file).

Ground rule 4: every command launches the appliance at most once, through `open_target`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from rich.console import Console

from rescue.report import Reporter

if TYPE_CHECKING:
    from rescue.safety.ntfs_reset import NtfsOptions
    from rescue.safety.plan import Plan
    from rescue.target import Target

# People read stdout; progress, warnings and errors go to stderr so `--json` output stays clean.
# When piped (logs, CI), rich would wrap tables at 80 columns; keep them readable. No emoji codes:
# a path, a value or a hive name with ":name:" in it is printed as it is (and rich's emoji table,
# a noticeable share of start-up, is never loaded).
out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, emoji=False, width=None if sys.stderr.isatty() else 120)


def to_jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    return obj


def print_json(data) -> None:
    import json     # only for --json: the text output starts without it

    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}")


def info(message: str) -> None:
    err.print(message)


class ConsoleReporter(Reporter):
    """The core's reporter on a terminal: messages on stderr, typed records drawn as tables on
    stdout (not with --json: stdout then holds one JSON document), a spinner while the appliance
    starts, and a y/N prompt before writing (refused without a terminal: scripts pass --yes)."""

    def __init__(self, *, assume_yes: bool = False, json_output: bool = False, quiet: bool = False) -> None:
        super().__init__(assume_yes=assume_yes)
        self.json_output = json_output
        self.quiet = quiet
        self._bar: Any = None               # the fleet progress bar while it runs
        self._task: Any = None
        self._started: Optional[float] = None

    def info(self, message: str) -> None:
        info(message)

    def warn(self, message: str) -> None:
        warn(message)

    def show(self, target: Target, item: object) -> None:
        if self.json_output:
            return
        from rescue.cli.views import show

        show(target, item)

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[None]:
        if self.quiet or not err.is_terminal:
            yield
            return
        with err.status(label, spinner="dots"):
            yield

    def advance(self, done: int, total: int, label: str) -> None:
        """Fleet mode: a progress bar with the current disk and an ETA on a terminal, one line per
        disk otherwise (logs)."""
        import time

        if self.quiet:
            return
        if self._started is None:
            self._started = time.monotonic()
        elapsed = time.monotonic() - self._started
        eta = f", about {elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
        if err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            bar = self._bar
            if bar is None:
                bar = self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                           TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                                           console=err, transient=True)
                self._task = bar.add_task("", total=total)
                bar.start()
            bar.update(self._task, completed=done, description=label or "done")
            if done >= total:
                bar.stop()
                self._bar = None
        elif done < total:
            err.print(f"[{done + 1}/{total}] {label}{eta}", markup=False, highlight=False)

    def ask(self, question: str) -> bool:
        if not sys.stdin or not sys.stdin.isatty():
            return super().ask(question)      # raises: nobody to ask
        err.print(f"{question} [y/N] ", end="")
        try:
            answer = sys.stdin.readline().strip().lower()
        except (OSError, ValueError):
            answer = ""
        return answer in ("y", "yes")


def is_hive_target(path: str) -> bool:
    from rescue.opening import is_hive_target as check

    return check(path)


@contextlib.contextmanager
def open_disks(paths: Sequence[str], *, write: bool = False, fmt: str | None = None,
               accel: str | None = None, root: str | None = None, quiet: bool = False,
               images: Sequence | None = None, reporter: Reporter | None = None,
               ntfs: NtfsOptions | None = None) -> Iterator:
    """rescue.target.open_disks with the terminal's reporter (spinner, prompts, messages). `ntfs`:
    the command's NtfsOptions (--reset-ntfs-log, --discard-hibernation), read by the write engine."""
    from rescue.opening import open_disks as core_open

    with core_open(paths, write=write, fmt=fmt, accel=accel, root=root, images=images,
                   reporter=reporter or ConsoleReporter(quiet=quiet), ntfs=ntfs) as target:
        yield target


@contextlib.contextmanager
def open_target(target: str, *, write: bool = False, fmt: str | None = None, accel: str | None = None,
                root: str | None = None, extra_disks: Sequence[str] = (),
                reporter: Reporter | None = None, ntfs: NtfsOptions | None = None) -> Iterator:
    """rescue.target.open_target with the terminal's reporter."""
    from rescue.opening import open_target as core_open

    with core_open(target, write=write, fmt=fmt, accel=accel, root=root, extra_disks=extra_disks,
                   reporter=reporter or ConsoleReporter(), ntfs=ntfs) as t:
        yield t


def run_plan(target: Target, plan: Plan, *, dry_run: bool, yes: bool, json_output: bool,
             discard_hive_logs: bool = False):
    """Hand one plan to the safety engine with this terminal's consent, and tell the user what
    happened (a table line, or the {plan, result} JSON document)."""
    from rescue.cli.views import apply_outcome
    from rescue.safety.apply import execute

    target.reporter = ConsoleReporter(assume_yes=yes, json_output=json_output)
    result = execute(target, plan, dry_run=dry_run, discard_hive_logs=discard_hive_logs)
    if json_output:
        print_json({"plan": result.plan_json(plan), "result": result.to_json()})
    else:
        apply_outcome(result)
    return result
