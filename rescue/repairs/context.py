"""The typed context every check reads: the target, its layout, the options, and what was read.

A triage runs every scenario's checks in one appliance launch, so checks of different scenarios
must share what they read: the BCD store, the SYSTEM hive, a scan of the Windows volume are each
read once per command and kept here (`memo`). A read that failed is kept as its error, so every
check that needs that source reports the same cause without trying again.

Checks get at the common sources through `rescue.repairs.sources`; a scenario with a source of
its own uses `ctx.memo(key, loader)` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from rescue.errors import RescueError
from rescue.repairs.base import OptionValues
from rescue.report import SILENT, Reporter

if TYPE_CHECKING:
    from rescue.fileref import FileRef
    from rescue.layout import WindowsLayout
    from rescue.target import Target


@dataclass(frozen=True)
class _Failed:
    error: RescueError


class RepairContext:
    """What a command knows about the disk set it works on, shared by every check it runs."""

    def __init__(self, target: Target, options: Optional[OptionValues] = None, *,
                 reporter: Optional[Reporter] = None, prior: Optional[Dict[str, Any]] = None) -> None:
        self.target = target                       # a disk set (DiskTarget) or a bare hive file
        self.options = options or OptionValues()
        self.reporter = reporter or target.reporter or SILENT
        # Results of an earlier pass in this launch (the diagnosis before a fix), for sources that
        # can be updated instead of read again (the cleanup scan minus the files the fix deleted).
        self.prior: Dict[str, Any] = dict(prior or {})
        self._memo: Dict[str, Any] = {}
        # Set by the runner while it plans: the diagnosis the plan is made from, and the
        # --expand prelude (a check's plan may depend on another check's finding, or on the room
        # the prelude makes).
        self.diagnosis: Any = None
        self.prelude: Any = None
        # The scenario whose fix the operator asked for (set by the runner's fix; None in a
        # diagnosis): a check whose "problem" is a request, such as booting the last known good
        # control set, is found only when asked for, so a triage of a healthy disk stays clean.
        self.fixing: Optional[str] = None

    def finding(self, check_id: str) -> Any:
        """The finding of another check in the diagnosis being planned from (None if absent)."""
        if self.diagnosis is None:
            return None
        return next((f for f in self.diagnosis.findings if f.id == check_id), None)

    @property
    def layout(self) -> WindowsLayout | None:
        """The disk set's Windows layout; None for a bare hive file."""
        return self.target.layout

    @property
    def on_disk(self) -> bool:
        """Working on attached disks through the appliance (False: a hive file on the host)."""
        return self.target.session is not None

    @property
    def hive_file(self) -> FileRef | None:
        """The bare hive file given as the target; None on a disk set."""
        from rescue.target import HostFileTarget

        target = self.target
        return target.main if isinstance(target, HostFileTarget) and target.session is None else None

    @property
    def disks(self) -> Tuple[str, ...]:
        layout = self.layout
        if layout is not None:
            return tuple(layout.disk_paths)
        path = getattr(self.target, "path", None)
        return (str(path),) if path else ()

    def memo(self, key: str, loader: Callable[[], Any]) -> Any:
        """`loader()` once per command; its value, or its RescueError raised again for every later
        caller (a source that cannot be read is reported once per check, never retried)."""
        if key not in self._memo:
            try:
                self._memo[key] = loader()
            except RescueError as exc:
                self._memo[key] = _Failed(exc)
        value = self._memo[key]
        if isinstance(value, _Failed):
            raise value.error
        return value

    def preset(self, key: str, value: Any) -> None:
        """Give a source's value directly (validation cases: a hive built on the host)."""
        self._memo[key] = value

    def known(self, key: str) -> Any:
        """A source's value if it was read without error, else None (never reads)."""
        value = self._memo.get(key)
        return None if isinstance(value, _Failed) else value
