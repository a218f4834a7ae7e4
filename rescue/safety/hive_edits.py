"""The apply engine's checks of a hive edit on the host copy (rescue.safety.apply): before an edit,
the hive holds what the plan was made from; after all edits, the committed copy reopens, is not
dirty, and every change reads back as planned. Both run before anything is written to the disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rescue.errors import RescueError, UnsafeStateError, VerifyError
from rescue.hive.regf import read_header
from rescue.safety import render
from rescue.safety.plan import DeleteKey, SetValue

if TYPE_CHECKING:
    from rescue.hive.hive import Hive
    from rescue.safety.plan import HiveChange


def check_before(hive: Hive, c: HiveChange, label: str) -> None:
    """The plan says what it expects to find; if the hive says otherwise, it was made from other data."""
    if isinstance(c, DeleteKey):
        ok, found = hive.find(c.key) is not None, "missing"
        expected = "present"
    else:
        cur = hive.get(c.key, c.name)
        found = render.show_value(cur.type, cur.data) if cur else "(absent)"
        expected = render.show_value(c.before_type, c.before_data)
        ok = (cur is None and c.before_data is None) if cur is None or c.before_data is None else \
            (cur.type == c.before_type and cur.data == c.before_data)
    if not ok:
        where = c.key if isinstance(c, DeleteKey) else f"{c.key}\\{c.name or '(Default)'}"
        raise UnsafeStateError(f"{label} does not hold what the plan expects at {where} (found {found}, "
                               f"expected {expected}).", hint="Run the command again; nothing was written.")


def verify_hive(path: Path, changes: list, label: str) -> None:
    """Reopen the committed host copy and check the end state of every change (the last change to a
    value wins; a deleted key takes its values with it unless a later change recreates them)."""
    from rescue.hive import Hive

    values: dict[tuple[str, str], tuple | None] = {}
    keys: dict[str, bool] = {}
    for c in changes:
        k = c.key.lower().strip("\\")
        if isinstance(c, DeleteKey):
            keys[k] = False
            for vk in [vk for vk in values if vk[0] == k or vk[0].startswith(k + "\\")]:
                del values[vk]
        else:
            values[(k, c.name.lower())] = (c.type, c.data) if isinstance(c, SetValue) else None
            if isinstance(c, SetValue):
                parts = k.split("\\")
                for i in range(1, len(parts) + 1):
                    keys.pop("\\".join(parts[:i]), None)
    header = read_header(path)
    problems = [] if not header.dirty else ["the hive is still marked dirty"]
    try:
        with Hive(path) as hive:
            for k, present in keys.items():
                if (hive.find(k) is not None) != present:
                    problems.append(f"key {k} is {'missing' if present else 'still there'}")
            for (k, name), want in values.items():
                got = hive.get(k, name)
                if want is None and got is not None:
                    problems.append(f"{k}\\{name} is still there")
                elif want is not None and (got is None or (got.type, got.data) != want):
                    problems.append(f"{k}\\{name} does not read back as planned")
    except RescueError as exc:
        problems.append(exc.message)
    if problems:
        raise VerifyError(f"The edited copy of {label} does not check out ({'; '.join(problems[:3])}); nothing was written.")
