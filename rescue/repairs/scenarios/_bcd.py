"""What the BCD scenarios (boot-config, safe-mode, boot-menu, repair-loop) share: the store through
`sources.bcd`, the disk facts a device is judged against, the default loader, and what to do next.

Not a scenario module (the leading underscore keeps the registry from importing it as one).
"""

from __future__ import annotations

from typing import Optional, Sequence

from rescue.errors import NotFoundError
from rescue.repairs import sources
from rescue.repairs.context import RepairContext

FACTS_KEY = "bcd:disk-facts"


def store(ctx: RepairContext):
    return sources.bcd(ctx).store


def facts(ctx: RepairContext):
    """rescue.bcd.bootconfig.DiskFacts of the attached disks, or None for a BCD file on the host
    (nothing then says which partition holds Windows). Read once per command: the partition tables
    the session already holds."""
    def load():
        if not ctx.on_disk:
            return None
        from rescue.bcd.bootconfig import disk_facts

        return disk_facts(ctx.target.session.disks(), ctx.layout)

    return ctx.memo(FACTS_KEY, load)


def default_loader(ctx: RepairContext):
    """The Windows Boot Loader {bootmgr}'s default names; NotFoundError (the check's "cannot tell")
    when there is none: boot-config reports why."""
    from rescue.bcd.bootconfig import default_loader as find

    s = store(ctx)
    loader = find(s)
    if loader is None:
        if s.bootmgr is None:
            why = "the store has no {bootmgr}"
        elif s.default_id is None:
            why = "{bootmgr} has no default"
        else:
            why = f"{{bootmgr}} default names {s.default_id}, which is not a Windows Boot Loader of the store"
        raise NotFoundError(f"No default loader to check: {why} (boot-config repairs that).")
    return loader


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    disk = ctx.disks[0] if ctx.disks else "the disk"
    return (
        "Detach the repaired disk from this machine (do not boot it here).",
        f"Make it the VM's OS disk again: on Azure `az vm repair restore -g RG -n VM` (if you used "
        f"`az vm repair create`) or `az vm update -g RG -n VM --os-disk <disk id>`; for a downloaded "
        f"{disk}, upload it as a fixed VHD and create the disk from it.",
        "Start the VM and watch Boot diagnostics (screenshot) or the serial console until Windows "
        "reaches the logon screen.",
    )


def shown(value: Optional[object], enums: Optional[dict] = None) -> str:
    """An element value as bcdedit prints it (enum names, Yes/No), or "not set"."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if enums and isinstance(value, int) and value in enums:
        return enums[value]
    return str(value)
