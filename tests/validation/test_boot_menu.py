"""Validation cases of `boot-menu` (VM waits at the Windows Boot Manager menu)."""

from __future__ import annotations

import pytest

from bcd_cases import bcd
from harness import Case, run_case
from rescue.bcd import constants as C
from rescue.repairs.findings import FOUND, OK
from rescue.samples.bcd_store import SECOND_LOADER_GUID

BM = f"Objects\\{C.GUID_BOOTMGR}"
S = "boot-menu"


def _fix(timeout_hex: str) -> tuple:
    return (f"bcd.boot-menu: delete key {BM}\\Elements\\26000020 and everything below it",
            f"bcd.boot-menu: set {BM}\\Elements\\25000004\\Element = '{timeout_hex}' (REG_BINARY)")


SKIP = ("bcd.boot-menu skipped: the boot manager does not wait at its menu",)

CASES = [
    Case("boot-menu-wait", "displaybootmenu, no timeout", bcd(S, timeout=None), FOUND,
         "{bootmgr}: displaybootmenu Yes, no timeout: the boot manager waits at its menu for a key, which nobody "
         "presses on a VM", plan=_fix("0500000000000000"), fixable=True),
    Case("boot-menu-wait", "Gen1, timeout 600 s, --timeout 10", bcd(S, "gen1", timeout=600, options={"timeout": 10}),
         FOUND, "{bootmgr}: displaybootmenu Yes, timeout 600 s: the boot manager waits that long at its menu (over "
         "30 s)", plan=_fix("0a00000000000000"), fixable=True),
    Case("boot-menu-wait", "two entries, no timeout",
         bcd(S, azure_prepared=False, timeout=None,
             extra_loaders=((SECOND_LOADER_GUID, "Windows Server 2016", b"\x00" * 88),)), FOUND,
         "{bootmgr}: 2 entries in displayorder, no timeout: the boot manager waits at its menu for a key, which "
         "nobody presses on a VM",
         plan=(f"bcd.boot-menu: set {BM}\\Elements\\25000004\\Element = '0500000000000000' (REG_BINARY)",),
         fixable=True),
    Case("boot-menu-wait", "Azure image: menu for 30 s", bcd(S), OK,
         "{bootmgr}: displaybootmenu Yes, timeout 30 s: the menu shows for 30 s, then the default starts", plan=SKIP),
    Case("boot-menu-wait", "no menu, no timeout", bcd(S, azure_prepared=False, timeout=None), OK,
         "{bootmgr}: no menu (displaybootmenu not set, 1 entry), no timeout", plan=SKIP),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
