"""rescue.registry.image_path: a Win32 service's ImagePath resolved as the Service Control Manager
(CreateProcess) reads it, and the ServiceDll of a svchost-hosted service read from a real hive."""

from __future__ import annotations

import pytest

from rescue.hive import Hive
from rescue.registry.image_path import ServiceImage, resolve_command, resolve_file
from rescue.registry.services import current_control_set, read_service
from rescue.samples import hives as H

PF = "\\Program Files"


@pytest.mark.parametrize("stored,candidates,arguments", [
    # quoted path with arguments: the quotes end the name
    ('"C:\\Program Files\\Contoso\\Agent\\agent.exe" -service', (f"{PF}\\Contoso\\Agent\\agent.exe",), "-service"),
    ('"C:\\Program Files\\Contoso\\agent.exe"', (f"{PF}\\Contoso\\agent.exe",), ""),
    # a quoted name without an extension gets .exe, as CreateProcess adds it
    ('"C:\\Tools\\agent"', ("\\Tools\\agent.exe",), ""),
    # svchost: no spaces in the path, the rest is arguments
    ("%SystemRoot%\\System32\\svchost.exe -k netsvcs -p", ("\\Windows\\System32\\svchost.exe",), "-k netsvcs -p"),
    ("%windir%\\system32\\svchost.exe -k LocalServiceNetworkRestricted",
     ("\\Windows\\system32\\svchost.exe",), "-k LocalServiceNetworkRestricted"),
    ("C:\\Windows\\System32\\spoolsv.exe", ("\\Windows\\System32\\spoolsv.exe",), ""),
    # unquoted with spaces: each space-separated prefix, .exe appended, until one ends in .exe
    ("C:\\Program Files\\Contoso Agent\\agent.exe /run",
     ("\\Program.exe", f"{PF}\\Contoso.exe", f"{PF}\\Contoso Agent\\agent.exe"), "/run"),
    ("C:\\Program Files\\sub dir\\program name",
     ("\\Program.exe", f"{PF}\\sub.exe", f"{PF}\\sub dir\\program.exe", f"{PF}\\sub dir\\program name.exe"), ""),
    # an unquoted path without spaces keeps its arguments apart
    ("C:\\Tools\\agent.exe -k x y", ("\\Tools\\agent.exe",), "-k x y"),
    # %ProgramFiles% and friends; expanded before CreateProcess parses it, so an unquoted
    # %ProgramFiles% path is as ambiguous as a written-out one
    ("%ProgramFiles%\\Contoso\\agent.exe", ("\\Program.exe", f"{PF}\\Contoso\\agent.exe"), ""),
    ('"%ProgramFiles(x86)%\\Contoso\\agent.exe" -x', ("\\Program Files (x86)\\Contoso\\agent.exe",), "-x"),
    ("%ProgramData%\\Contoso\\agent.exe", ("\\ProgramData\\Contoso\\agent.exe",), ""),
    ("%SystemDrive%\\WindowsAzure\\GuestAgent\\WaAppAgent.exe",
     ("\\WindowsAzure\\GuestAgent\\WaAppAgent.exe",), ""),
    # NT paths
    ("\\SystemRoot\\System32\\lsass.exe", ("\\Windows\\System32\\lsass.exe",), ""),
    ("\\??\\C:\\Tools\\agent.exe", ("\\Tools\\agent.exe",), ""),
    # a bare name: SCM's current folder, System32
    ("svchost.exe -k x", ("\\Windows\\System32\\svchost.exe",), "-k x"),
    # lower-case drive letter and doubled spaces
    ("c:\\tools\\agent.exe  -a", ("\\tools\\agent.exe",), "-a"),
])
def test_resolve_command(stored, candidates, arguments):
    got = resolve_command(stored)
    assert got == ServiceImage(stored, candidates, arguments, None)
    assert got.path == candidates[-1]
    assert got.ambiguous == (len(candidates) > 1)


@pytest.mark.parametrize("stored,arguments,why", [
    ('"D:\\Apps\\agent.exe" -run', "-run", "on another volume (D:), not checked"),
    ("\\??\\E:\\agent\\agent.exe", "", "on another volume (E:), not checked"),
    ("d:\\Program Files\\x.exe -a", "-a", "on another volume (D:), not checked"),
    ("\\\\fileserver\\share\\agent.exe", "", "on a network path, not checked"),
    ("%AgentHome%\\agent.exe", "", "names %AgentHome%, which rescue does not expand offline: not checked"),
    ("   ", "", "empty ImagePath"),
])
def test_resolve_command_unchecked(stored, arguments, why):
    got = resolve_command(stored)
    assert got == ServiceImage(stored, (), arguments, why)
    assert got.path is None


def test_program_files_and_system_drive_given():
    got = resolve_command("%ProgramFiles%\\X\\x.exe", program_files="C:\\Apps")
    assert got.candidates == ("\\Apps\\X\\x.exe",)
    assert resolve_command("D:\\Windows\\x.exe", system_drive="D").candidates == ("\\Windows\\x.exe",)
    assert resolve_command("C:\\Windows\\x.exe", system_drive="D").unchecked == \
        "on another volume (C:), not checked"


@pytest.mark.parametrize("stored,want", [
    ("%SystemRoot%\\System32\\dhcpcore.dll", "\\Windows\\System32\\dhcpcore.dll"),
    ('"C:\\Program Files\\Contoso\\svc host.dll"', f"{PF}\\Contoso\\svc host.dll"),   # spaces, no args
    ("C:\\Program Files\\Contoso\\svc.dll", f"{PF}\\Contoso\\svc.dll"),
])
def test_resolve_file(stored, want):
    assert resolve_file(stored) == ServiceImage(stored, (want,), "", None)


def test_service_dll_read_from_parameters(tmp_path):
    specs = {1: (H.ServiceSpec("ContosoSvc", 2, 0x20, None, "%SystemRoot%\\system32\\svchost.exe -k ContosoGroup",
                               1, service_dll="%ProgramFiles%\\Contoso\\contososvc.dll"),
                 H.ServiceSpec("ContosoAgent", 2, 0x10, None, "C:\\Program Files\\Contoso\\agent.exe", 2))}
    path = H.build_system_hive(tmp_path / "SYSTEM", set_services=specs)
    hive = Hive(path)
    try:
        cs = current_control_set(hive)
        hosted = read_service(hive, cs, "ContosoSvc")
        own = read_service(hive, cs, "ContosoAgent")
        disk = read_service(hive, cs, "disk")
    finally:
        hive.close()
    assert hosted is not None and own is not None and disk is not None
    assert hosted.is_win32 and hosted.starts_automatically and hosted.type_text == "shared process 0x20"
    assert hosted.file == "\\Windows\\system32\\svchost.exe"
    assert hosted.service_dll == ServiceImage("%ProgramFiles%\\Contoso\\contososvc.dll",
                                              (f"{PF}\\Contoso\\contososvc.dll",), "", None)
    assert [f.path for f in hosted.files] == ["\\Windows\\system32\\svchost.exe", f"{PF}\\Contoso\\contososvc.dll"]
    assert hosted.third_party_reason == f"{PF}\\Contoso\\contososvc.dll is outside \\Windows"
    assert own.image is not None and own.image.candidates == ("\\Program.exe", f"{PF}\\Contoso\\agent.exe")
    assert own.error_control_text == "ErrorControl 2 severe" and own.type_text == "own process 0x10"
    assert own.service_dll is None and own.third_party_reason == f"{PF}\\Contoso\\agent.exe is outside \\Windows"
    # drivers keep the kernel's resolution and their inbox rule
    assert not disk.is_win32 and disk.image is None and disk.file == "\\Windows\\System32\\drivers\\disk.sys"
    assert disk.inbox and not disk.starts_automatically


@pytest.mark.parametrize("hive_name,third_party", [
    ("system/regipy_win7_x86_SYSTEM",
     {"AdobeARMservice", "enterceptAgent", "McAfee SiteAdvisor Enterprise Service", "McAfeeFramework", "McShield",
      "McTaskManager", "mfefire", "VMMEMCTL", "VMTools", "VMUpgradeHelper"}),
    ("system/regipy_win10_gpt_dirty_SYSTEM_B",
     {"ApHidMonitorService", "ClickToRunSvc", "dbupdate", "gupdate", "NVDisplay.ContainerLocalSystem"}),
])
def test_real_windows_automatic_services(hive_name, third_party):
    """Every automatic-start service of a real Windows 7 and Windows 10 SYSTEM hive resolves to a
    file on C: (nothing left unchecked); Windows' own (svchost + ServiceDll, lsass, Defender's
    platform folder, the automatic-start drivers) are told apart from the vendors' by place."""
    from realdata import need

    hive = Hive(need(hive_name))
    try:
        from rescue.registry.services import read_services

        auto = [s for s in read_services(hive, current_control_set(hive)) if s.starts_automatically]
    finally:
        hive.close()
    assert len(auto) > 50
    assert all(f.unchecked is None and f.path and f.path.startswith("\\") for s in auto for f in s.files)
    assert {s.name for s in auto if not s.inbox} == third_party
    by_name = {s.name: s for s in auto}
    assert [f.path for f in by_name["Dhcp"].files] == ["\\Windows\\system32\\svchost.exe",
                                                       "\\Windows\\system32\\dhcpcore.dll"]
    assert [f.path for f in by_name["SamSs"].files] == ["\\Windows\\system32\\lsass.exe"]      # hosted by lsass
    if "McShield" in by_name:       # stored with a doubled separator before the file name
        assert by_name["McShield"].file == "\\Program Files\\Common Files\\McAfee\\SystemCore\\mcshield.exe"
