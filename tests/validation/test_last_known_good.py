"""Validation cases of `last-known-good` (boot the last known good control set)."""

from __future__ import annotations

import pytest

from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK
from system_samples import system_context

S = "last-known-good"
SWITCH = ("select.last-known-good: set Select\\Current = 2 (REG_DWORD)",
          "select.last-known-good: set Select\\Default = 2 (REG_DWORD)",
          "select.last-known-good: set Select\\Failed = 1 (REG_DWORD)")


def _sys(*, asked=False, **kw):
    build = system_context(S, listing=False, **kw)

    def with_request(d):
        ctx = build(d)
        if asked:                   # as `rescue fix last-known-good` runs it
            ctx.fixing = S
        return ctx
    return with_request


NONE = ("Windows keeps no last known good control set apart from the current one (Windows 8 / Server 2012 and later "
        "do not keep one by default)")

CASES = [
    Case("select-current-missing", "Current 3, no ControlSet003", _sys(select={"Current": 3}), FOUND,
         "Select\\Current is 3, but there is no ControlSet003 (Select Current 3, Default 1, Failed 0, LastKnownGood 2; "
         "control sets ControlSet001, ControlSet002): point it at ControlSet002",
         plan=("select.current: set Select\\Current = 2 (REG_DWORD)",
               "select.current: set Select\\Default = 2 (REG_DWORD)"), fixable=True),
    Case("select-current-missing", "Current 1", _sys(), OK, "Windows boots ControlSet001 (Select\\Current)", plan=None),
    Case("lkg-boot", "asked for, ControlSet002 kept", _sys(asked=True), FOUND,
         "Windows boots ControlSet001 (Select\\Current); ControlSet002 is the last known good: boot it",
         plan=SWITCH, fixable=True),
    Case("lkg-boot", "in a triage: only said", _sys(), OK,
         "ControlSet002 is the last known good (Select\\LastKnownGood), Windows boots ControlSet001: "
         "`rescue fix last-known-good` switches to it", plan=SWITCH),
    Case("lkg-boot", "asked for, Windows keeps none (LastKnownGood = Current, one set)",
         _sys(asked=True, control_sets=(1,), last_known_good=1), OK,
         f"{NONE}: Select\\LastKnownGood 1, Current 1",
         plan=(f"select.last-known-good skipped: {NONE}; repair the current set instead (rescue diagnose lists what "
               "is wrong) or restore the disk from a backup",)),
    Case("lkg-boot", "already switched: Current 2 = LastKnownGood 2", _sys(asked=True, current=2, last_known_good=2),
         OK, f"{NONE}: Select\\LastKnownGood 2, Current 2",
         plan=(f"select.last-known-good skipped: {NONE}; repair the current set instead (rescue diagnose lists what "
               "is wrong) or restore the disk from a backup",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
