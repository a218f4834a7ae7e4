"""Validation cases of `inaccessible-boot-device` (stop error 0x7B)."""

from __future__ import annotations

import pytest

from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK
from rescue.samples import hives as H
from rescue.samples.disks import BOOT_BROKEN_FILTERS
from system_samples import BROKEN_MISSING, BROKEN_SET1, system_context

S = "inaccessible-boot-device"
CS1 = "ControlSet001 (Select\\Current)"


def _sys(**kw):
    return system_context(S, **kw)


ALL = "acpi, pci, vdrvroot, vmbus, storvsc, stornvme, disk, partmgr, volmgr, volsnap, mountmgr"

CASES = [
    Case("boot-driver-start", "storvsc demand start in the current set", _sys(missing=BROKEN_MISSING, **BROKEN_SET1),
         FOUND, f"{CS1}: storvsc Start 3 (demand), must be 0 (boot)",
         plan=("boot.driver-start: set ControlSet001\\Services\\storvsc\\Start = 0 (REG_DWORD)",), fixable=True),
    Case("boot-driver-start", "current set 2 broken, set 1 healthy",
         _sys(current=2, set_services={2: (H.ServiceSpec("stornvme", 3, 1, "SCSI Miniport",
                                                          "System32\\drivers\\stornvme.sys", 3),),
                                       1: ()}, select={"LastKnownGood": 1}),
         FOUND, "ControlSet002 (Select\\Current): stornvme Start 3 (demand), must be 0 (boot)",
         plan=("boot.driver-start: set ControlSet002\\Services\\stornvme\\Start = 0 (REG_DWORD)",), fixable=True),
    Case("boot-driver-start", "vmbus key missing", _sys(set_services={1: (H.ServiceSpec("vmbus", None),)}),
         FOUND, f"{CS1}: no Services\\vmbus key (restore it from a VM of the same Windows build; rescue does not "
         "rebuild it)",
         plan=("boot.driver-start skipped: every boot storage driver present already has a boot Start value",),
         fixable=False),
    Case("boot-driver-start", "as Windows ships", _sys(), OK, f"{CS1}: {ALL} start at boot",
         plan=("boot.driver-start skipped: every boot storage driver present already has a boot Start value",)),
    Case("boot-driver-start", "broken set 2 is not the current one",
         _sys(set_services={2: (H.ServiceSpec("storvsc", 3, 1, "Base", "System32\\drivers\\storvsc.sys"),)}),
         OK, f"{CS1}: {ALL} start at boot",
         plan=("boot.driver-start skipped: every boot storage driver present already has a boot Start value",)),
    Case("boot-driver-startoverride", "vmbus StartOverride 0=3", _sys(missing=BROKEN_MISSING, **BROKEN_SET1), FOUND,
         f"{CS1}: vmbus\\StartOverride 0=3 (demand) (overrides Start 0)",
         plan=("boot.startoverride: delete key ControlSet001\\Services\\vmbus\\StartOverride and everything below it",),
         fixable=True),
    Case("boot-driver-startoverride", "StartOverride 0=0 is harmless",
         _sys(set_services={1: (H.ServiceSpec("vmbus", 0, 1, "System Bus Extender", "System32\\drivers\\vmbus.sys",
                                              3, start_override=(("0", 0),)),)}),
         OK, f"{CS1}: no StartOverride on the boot storage drivers",
         plan=("boot.startoverride skipped: no StartOverride to remove",)),
    Case("storage-class-filters", "cbtfilter without service, contosoflt without file",
         _sys(missing=BROKEN_MISSING, **BROKEN_SET1), FOUND,
         f"{CS1}: DiskDrive UpperFilters names cbtfilter (no service key); Volume LowerFilters names contosoflt "
         "(\\Windows\\System32\\drivers\\contosoflt.sys missing)",
         plan=("boot.class-filters: set ControlSet001\\Control\\Class\\{4d36e967-e325-11ce-bfc1-08002be10318}"
               "\\UpperFilters = ['partmgr'] (REG_MULTI_SZ)",
               "boot.class-filters: set ControlSet001\\Control\\Class\\{71a27cdd-812a-11d0-bec7-08002be2092f}"
               "\\LowerFilters = ['fvevol', 'iorate'] (REG_MULTI_SZ)"), fixable=True),
    Case("storage-class-filters", "the only SCSIAdapter filter is gone: value deleted",
         _sys(set_class_filters={1: {H.SCSI_ADAPTER_CLASS: H.ClassFilters((), ("oldraidflt",), "SCSIAdapter")}}),
         FOUND, f"{CS1}: SCSIAdapter LowerFilters names oldraidflt (no service key)",
         plan=("boot.class-filters: delete ControlSet001\\Control\\Class\\{4d36e97b-e325-11ce-bfc1-08002be10318}"
               "\\LowerFilters (was ['oldraidflt'])",), fixable=True),
    Case("storage-class-filters", "Windows' own filters", _sys(), OK,
         f"{CS1}: every UpperFilters/LowerFilters driver of DiskDrive, Volume, SCSIAdapter, VolumeSnapshot, HDC has "
         "a service and its file",
         plan=("boot.class-filters skipped: no filter names a missing driver",)),
    Case("storage-class-filters", "contosoflt present with its file: kept",
         _sys(set_services=BROKEN_SET1["set_services"],
              set_class_filters={1: {H.VOLUME_CLASS: BOOT_BROKEN_FILTERS[H.VOLUME_CLASS]}}), OK,
         f"{CS1}: every UpperFilters/LowerFilters driver of DiskDrive, Volume, SCSIAdapter, VolumeSnapshot, HDC has "
         "a service and its file",
         plan=("boot.class-filters skipped: no filter names a missing driver",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
