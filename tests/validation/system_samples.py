"""SYSTEM hives for the system scenarios' validation cases, with the driver folder listing a
volume would give (every driver file the hive names, less the ones a case wants missing)."""

from __future__ import annotations

from harness import context
from rescue.registry.services import DRIVERS_DIR
from rescue.repairs.services_source import preset_listing
from rescue.samples import hives as H
from rescue.samples.disks import BOOT_BROKEN_FILE, BOOT_BROKEN_FILTERS, BOOT_BROKEN_SERVICES


def system_context(scenario: str, *, missing=(), options=None, listing=True, listings=None, **hive_opts):
    """A builder for Case: the SYSTEM hive built with `hive_opts`, the drivers folder listed, and
    `listings` ({folder: names}) as the volume would list those folders."""
    def build(d):
        path = H.build_system_hive(d / "SYSTEM", **hive_opts)
        ctx = context(d, scenario=scenario, system=path, options=options)
        if listing:
            specs = list(H.STANDARD_SERVICES)
            for extra in (hive_opts.get("set_services") or {}).values():
                specs += list(extra)
            files = set(H.driver_files(specs)) - set(missing)
            preset_listing(ctx, DRIVERS_DIR, files)
        for folder, names in (listings or {}).items():
            preset_listing(ctx, folder, names)
        return ctx
    return build


BROKEN_SET1 = dict(set_services={1: BOOT_BROKEN_SERVICES}, set_class_filters={1: BOOT_BROKEN_FILTERS})
BROKEN_MISSING = (BOOT_BROKEN_FILE,)
