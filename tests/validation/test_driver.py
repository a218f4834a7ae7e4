"""Validation cases of `driver` (a boot/system-start driver that stops the boot)."""

from __future__ import annotations

import pytest

from harness import Case, run_case
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.samples import hives as H
from rescue.samples.system_state import MISSING_EXE_SERVICES
from system_samples import BROKEN_MISSING, BROKEN_SET1, system_context

S = "driver"
CS1 = "ControlSet001 (Select\\Current)"
CONTOSO = ("contosoflt (boot (0), FSFilter Bottom, third-party, \\Windows\\System32\\drivers\\contosoflt.sys {})")
DISK_GONE = H.ServiceSpec("disk", 0, 1, None, "System32\\drivers\\disk.sys")


def _sys(**kw):
    return system_context(S, **kw)


# service-image-missing: the folders a volume would list (the root for the unquoted path's first
# candidate \Program.exe, System32 for svchost.exe, the vendor's folders)
LISTED = {"\\": ["Program Files", "Windows", "pagefile.sys"], "\\Windows\\System32": ["svchost.exe"],
          "\\Program Files\\Contoso\\Agent": ["agent.config"], "\\Program Files\\Contoso\\Update": []}
AGENT_THERE = {**LISTED, "\\Program Files\\Contoso\\Agent": ["agent.config", "ContosoAgent.exe"]}
EXES = {1: MISSING_EXE_SERVICES}
STOPS = ("automatic-start service(s) whose file is missing stop the boot (ErrorControl severe/critical: Windows "
         "restarts into the last known good control set, and a critical one fails the boot there too): ")
AGENT = ('ContosoAgent (automatic (2), own process 0x10, ErrorControl 2 severe, third-party, ImagePath '
         '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" -service -> '
         '\\Program Files\\Contoso\\Agent\\ContosoAgent.exe missing)')
UPDATE = ("missing but not boot-stopping (ErrorControl ignore/normal: the Service Control Manager logs event 7000 "
          "and goes on): ContosoUpdate (automatic (2), own process 0x10, ErrorControl 1 normal, third-party, "
          "ImagePath C:\\Program Files\\Contoso\\Update\\ContosoUpdate.exe /svc -> \\Program Files\\Contoso\\Update\\"
          "ContosoUpdate.exe missing (unquoted path with spaces: \\Program.exe missing too))")
HOSTED = H.ServiceSpec("ContosoHost", 2, 0x20, None, "%SystemRoot%\\System32\\svchost.exe -k ContosoGroup", 3,
                       service_dll="%ProgramFiles%\\Contoso\\Host\\contosohost.dll")
WMI = H.ServiceSpec("Winmgmt", 2, 0x20, None, "%systemroot%\\system32\\svchost.exe -k netsvcs -p", 2,
                    service_dll="%SystemRoot%\\system32\\wbem\\WMIsvc.dll")
ON_D = H.ServiceSpec("ContosoData", 2, 0x10, None, '"D:\\Contoso\\data.exe" -run', 2)


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
    Case("service-image-missing", "third-party auto-start .exe gone, ErrorControl severe (the sample's state)",
         _sys(set_services=EXES, listings=LISTED), FOUND, f"{CS1}: 1 {STOPS}{AGENT}; {UPDATE}",
         plan=("service.missing: set ControlSet001\\Services\\ContosoAgent\\Start = 4 (REG_DWORD)",), fixable=True),
    Case("service-image-missing", "svchost-hosted, its ServiceDll gone; another volume not checked",
         _sys(set_services={1: (HOSTED, ON_D)}, listings={**LISTED, "\\Program Files\\Contoso\\Host": []}), FOUND,
         f"{CS1}: 1 {STOPS}ContosoHost (automatic (2), shared process 0x20, ErrorControl 3 critical, third-party, "
         "ServiceDll %ProgramFiles%\\Contoso\\Host\\contosohost.dll -> \\Program Files\\Contoso\\Host\\contosohost.dll "
         'missing); ContosoData ("D:\\Contoso\\data.exe" -run): on another volume (D:), not checked',
         plan=("service.missing: set ControlSet001\\Services\\ContosoHost\\Start = 4 (REG_DWORD)",), fixable=True),
    Case("service-image-missing", "Windows' own ServiceDll gone: reported, not disabled",
         _sys(set_services={1: (WMI,)}, listings={**LISTED, "\\Windows\\System32\\wbem": ["wbemcore.dll"]}), FOUND,
         f"{CS1}: 1 {STOPS}Winmgmt (automatic (2), shared process 0x20, ErrorControl 2 severe, Windows, ServiceDll "
         "%SystemRoot%\\system32\\wbem\\WMIsvc.dll -> \\Windows\\system32\\wbem\\WMIsvc.dll missing)",
         plan=("service.missing-windows skipped: \\Windows\\system32\\wbem\\WMIsvc.dll: Windows' own service(s) (or on "
               "the path to the disk or the network), not disabled: copy the file from a VM of the same Windows build "
               "and update level, or run `sfc /scannow /offbootdir=X:\\ /offwindir=X:\\Windows` from a repair VM; for "
               "software installed under \\Windows, reinstall it",), fixable=False),
    Case("service-image-missing", "only ErrorControl normal missing: not boot-stopping, listed",
         _sys(set_services=EXES, listings=AGENT_THERE), OK,
         f"{CS1}: no automatic-start service whose file is missing stops the boot; {UPDATE}",
         plan=("service.missing skipped: no automatic-start service whose file is missing stops the boot "
               "(ContosoUpdate only log event 7000; `rescue services disable DISK NAME` quiets one if wanted)",)),
    Case("service-image-missing", "every file there",
         _sys(set_services=EXES, listings={**AGENT_THERE, "\\Program Files\\Contoso\\Update": ["ContosoUpdate.exe"]}),
         OK, f"{CS1}: the files of all 3 automatic-start services and drivers exist",
         plan=("service.missing skipped: no automatic-start service whose file is missing stops the boot",)),
    Case("service-image-missing", "a hive file: no volume", _sys(set_services=EXES, listing=False), UNKNOWN,
         f"{CS1}: no Windows volume to look for the services' files on",
         plan=("service.missing skipped: no Windows volume to look for the services' files on",)),
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
