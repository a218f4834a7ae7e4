"""A VM that waits at the Windows Boot Manager menu ("Choose an operating system") and never
starts Windows: nobody presses a key on a VM.

Sources: Microsoft, "Windows VM doesn't start: stuck at the Windows Boot Manager menu" (Azure
virtual machines): with a repair VM, `bcdedit /store F:\\boot\\bcd /deletevalue {bootmgr}
displaybootmenu` and `bcdedit /store F:\\boot\\bcd /set {bootmgr} timeout 5`.

Check `boot-menu-wait`: the menu is shown (`{bootmgr}` displaybootmenu Yes, or more than one entry in
displayorder) and the boot manager waits: no timeout (it waits for a key) or a timeout over 30 s
(bcdboot's own default; Azure images show the menu for at most that, which is not a hang). Fix:
delete displaybootmenu and set timeout (5 s, `--timeout`).
"""

from __future__ import annotations

from rescue.bcd import constants as C
from rescue.errors import UsageError
from rescue.repairs import sources
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.scenarios import _bcd
from rescue.safety.plan import Step

TITLE = "the boot manager does not wait at its menu"
WAIT_LIMIT_S = 30
DEFAULT_TIMEOUT_S = 5


def _check(ctx: RepairContext) -> Finding:
    from rescue.bcd.edit import DISPLAYBOOTMENU
    from rescue.errors import NotFoundError

    store = _bcd.store(ctx)
    bm = store.bootmgr
    if bm is None:
        raise NotFoundError(f"{store.name} has no {{bootmgr}}; `rescue diagnose` shows why under boot-config.")
    menu, timeout = bm.value(DISPLAYBOOTMENU), bm.value(C.TIMEOUT)
    entries = len(bm.value(C.DISPLAYORDER, ()) or ())
    why = []
    if menu:
        why.append("displaybootmenu Yes")
    if entries > 1:
        why.append(f"{entries} entries in displayorder")
    wait = "no timeout" if timeout is None else f"timeout {timeout} s"
    if not why:
        return Finding("boot-menu-wait", TITLE, OK,
                       f"{{bootmgr}}: no menu (displaybootmenu {_bcd.shown(menu)}, {entries} entry), {wait}")
    if timeout is None:
        return Finding("boot-menu-wait", TITLE, FOUND,
                       f"{{bootmgr}}: {', '.join(why)}, no timeout: the boot manager waits at its menu for a key, "
                       "which nobody presses on a VM", fixable=True)
    if timeout > WAIT_LIMIT_S:
        return Finding("boot-menu-wait", TITLE, FOUND,
                       f"{{bootmgr}}: {', '.join(why)}, timeout {timeout} s: the boot manager waits that long at "
                       f"its menu (over {WAIT_LIMIT_S} s)", fixable=True)
    return Finding("boot-menu-wait", TITLE, OK,
                   f"{{bootmgr}}: {', '.join(why)}, timeout {timeout} s: the menu shows for {timeout} s, then the "
                   "default starts")


def _plan(ctx: RepairContext, finding: Finding):
    from rescue.bcd.edit import plan_boot_menu

    if finding.status != FOUND:
        return Step("bcd.boot-menu", "Boot menu", skipped="the boot manager does not wait at its menu")
    timeout = ctx.options.timeout
    if timeout is None or not 0 <= timeout <= WAIT_LIMIT_S:
        raise UsageError(f"--timeout {timeout}: give 0 to {WAIT_LIMIT_S} seconds (over that the VM still waits "
                         "at the menu).")
    src = sources.bcd(ctx)
    return plan_boot_menu(src.store, src.ref, timeout)


SCENARIO = register(Scenario(
    name="boot-menu",
    aliases=("bootmenu", "boot-manager-menu"),
    summary="VM waits at the Windows Boot Manager menu: delete displaybootmenu, set a timeout",
    title="Do not wait at the boot menu (delete displaybootmenu, set timeout)",
    source="Microsoft: Windows VM stuck at the Windows Boot Manager menu (Azure VMs)",
    options=(
        Option("timeout", "--timeout", "Seconds the boot manager shows its menu before starting the "
               f"default entry (default {DEFAULT_TIMEOUT_S}).", kind=OptionKind.INT, default=DEFAULT_TIMEOUT_S,
               metavar="SECONDS", diagnose=False),
    ),
    checks=(Check("boot-menu-wait", TITLE, _check, _plan, options=("timeout",)),),
    next_steps=_bcd.next_steps,
))
