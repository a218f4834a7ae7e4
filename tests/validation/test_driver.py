"""Validation cases of `driver` (a boot/system-start driver that stops the boot)."""

from __future__ import annotations

import pytest

from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK
from rescue.samples import hives as H
from system_samples import BROKEN_MISSING, BROKEN_SET1, system_context

S = "driver"
CS1 = "ControlSet001 (Select\\Current)"
CONTOSO = ("contosoflt (boot (0), FSFilter Bottom, third-party, \\Windows\\System32\\drivers\\contosoflt.sys {})")
DISK_GONE = H.ServiceSpec("disk", 0, 1, None, "System32\\drivers\\disk.sys")


def _sys(**kw):
    return system_context(S, **kw)


CASES = [
    Case("driver-image-missing", "third-party boot filter without its file",
         _sys(missing=BROKEN_MISSING, **BROKEN_SET1), FOUND, f"{CS1}: {CONTOSO.format('missing')}",
         plan=("driver.missing: set ControlSet001\\Services\\contosoflt\\Start = 4 (REG_DWORD)",), fixable=True),
    Case("driver-image-missing", "Windows' disk.sys missing: reported, not disabled",
         _sys(missing=("disk.sys",)), FOUND,
         f"{CS1}: disk (boot (0), no group, Windows, \\Windows\\System32\\drivers\\disk.sys missing)",
         plan=("driver.missing-windows skipped: \\Windows\\System32\\drivers\\disk.sys: Windows' own driver(s), not "
               "disabled: copy the file from a VM of the same Windows build and update level, or run "
               "`sfc /scannow /offbootdir=X:\\ /offwindir=X:\\Windows` from a repair VM",), fixable=False),
    Case("driver-image-missing", "every file there", _sys(**BROKEN_SET1), OK,
         f"{CS1}: the files of all 15 boot/system-start drivers exist",
         plan=("driver.missing skipped: every driver's file exists",)),
    Case("driver-disable", "--name contosoflt, boot start", _sys(options={"driver_name": "contosoflt"}, **BROKEN_SET1),
         FOUND, f"{CS1}: {CONTOSO.format('present')}",
         plan=("driver.disable: set ControlSet001\\Services\\contosoflt\\Start = 4 (REG_DWORD)",), fixable=True),
    Case("driver-disable", "--name storvsc: boot critical, refused",
         _sys(options={"driver_name": "storvsc"}), FOUND,
         f"{CS1}: storvsc (boot (0), Base, Windows, \\Windows\\System32\\drivers\\storvsc.sys present)",
         plan=("driver.disable skipped: storvsc is on the path to the disk or the network: disabling it would stop "
               "the boot (0x7B) or cut the VM off; restore its file or roll back the update instead",)),
    Case("driver-disable", "no --name: third-party drivers listed", _sys(**BROKEN_SET1), OK,
         f"{CS1}: 1 third-party boot/system-start driver(s): {CONTOSO.format('present')}; disable the one the stop "
         "error names with `rescue fix driver DISK --name NAME`", plan=None),
    Case("driver-disable", "no --name, none", _sys(), OK,
         f"{CS1}: no third-party boot- or system-start drivers", plan=None),
    Case("driver-disable", "--name contosoflt already disabled",
         _sys(options={"driver_name": "contosoflt"},
              set_services={1: (H.ServiceSpec("contosoflt", 4, 1, "FSFilter Bottom",
                                              "System32\\drivers\\contosoflt.sys"),)}),
         OK, f"{CS1}: contosoflt is already disabled (Start 4)",
         plan=("driver.disable skipped: contosoflt is already disabled (Start 4)",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
