"""The sample disks' stores as the BCD scenarios see them (no appliance: the very store each sample
holds, on its disk's partition records): the healthy samples have nothing to do, and each broken
boot-configuration sample shows exactly the faults it was built with."""

from __future__ import annotations

import pytest

from bcd_cases import disk_records
from harness import context
from rescue.bcd.bootconfig import disk_facts
from rescue.repairs.base import get
from rescue.repairs.findings import Diagnosis
from rescue.repairs.runner import run_checks
from rescue.repairs.scenarios._bcd import FACTS_KEY
from rescue.samples import CATALOGUE
from rescue.samples.bcd_store import build_bcd_hive
from rescue.samples.disks import bcd_hive_options, ids_for

SCENARIOS = ("boot-config", "safe-mode", "boot-menu", "repair-loop")
FAULTS = {
    "boot-config": {"boot-config-default", "boot-config-loader-device"},
    "no-bootmgr": {"boot-config-bootmgr", "boot-config-default"},
    "boot-options": {"safe-mode", "boot-menu-wait", "repair-loop"},
}
# Without a default loader these checks cannot tell (they say why).
UNKNOWN = {"boot-config": {"safe-mode", "repair-loop"}, "no-bootmgr": {"safe-mode", "repair-loop", "boot-menu-wait"}}
WINDOWS = [b for b, s in CATALOGUE.items() if s.kind == "windows" and not s.windows.second_windows]


@pytest.mark.parametrize("base", WINDOWS)
def test_sample_store(base, tmp_path):
    o = CATALOGUE[base].windows
    kind = next((k for k in FAULTS if base.endswith(k)), None)
    seen = {}
    for name in SCENARIOS:
        folder = tmp_path / name
        folder.mkdir()
        ctx = context(folder, scenario=name, bcd=build_bcd_hive(folder / "BCD", **bcd_hive_options(base)))
        disks, layout = disk_records(o.generation, ids_for(base))
        ctx.preset(FACTS_KEY, disk_facts(disks, layout))
        try:
            seen.update({f.id: f.status.value for f in Diagnosis(ctx.disks, tuple(run_checks(ctx, get(name)))).findings})
        finally:
            ctx.target.close()
    found = {k for k, v in seen.items() if v == "found"}
    unknown = {k for k, v in seen.items() if v == "unknown"}
    assert found == (FAULTS[kind] if kind else set()), seen
    assert unknown == UNKNOWN.get(kind, set()), seen
