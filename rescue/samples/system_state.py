"""Registry keys and files of the samples for the remote-access, pending-updates and crowdstrike-291
scenarios, kept apart from the general hive builders (rescue.samples.hives calls them).

Shapes as Windows Server 2016/2019 keep them:
- SYSTEM `ControlSetNNN\\Control\\Terminal Server` fDenyTSConnections, `...\\WinStations\\RDP-Tcp`
  PortNumber 3389 / SecurityLayer 2 / UserAuthentication 1, `Services\\TermService` (Start 3,
  Type 0x20, svchost -k NetworkService), `Services\\Dhcp` (Start 2, Type 0x20, LocalService),
  `Services\\SharedAccess\\Parameters\\FirewallPolicy` with the three profiles' EnableFirewall and
  the built-in rule "RemoteDesktop-UserMode-In-TCP" (a "v2.x|Action=Allow|Active=TRUE|..." string).
- SOFTWARE `Policies\\Microsoft\\Windows NT\\Terminal Services` (Group Policy copy of
  fDenyTSConnections), `Policies\\Microsoft\\WindowsFirewall\\<Profile>`, and
  `Microsoft\\Windows\\CurrentVersion\\Component Based Servicing` (RebootPending, PackagesPending,
  SessionsPending: a completed session on a settled image).
- SOFTWARE `Microsoft\\Windows NT\\CurrentVersion\\Winlogon` Shell / Userinit (logon).
- COMPONENTS: the component store's hive; its root values PendingXmlIdentifier, NextQueueEntryIndex,
  ExecutionState... exist only while a servicing transaction is in flight.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.samples.hives import ServiceSpec

if TYPE_CHECKING:
    from rescue.samples import WindowsOptions

RDP_RULE = "RemoteDesktop-UserMode-In-TCP"
FIREWALL_PROFILES = ("DomainProfile", "StandardProfile", "PublicProfile")
CBS = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
TS_POLICY = "Policies\\Microsoft\\Windows NT\\Terminal Services"
FW_POLICY = "Policies\\Microsoft\\WindowsFirewall"
PENDING_PACKAGE = "Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5830.1.8"


def rdp_rule(active: bool, port: int = 3389) -> str:
    """The built-in inbound rule as Windows stores it (FirewallRules value data)."""
    return ("v2.28|Action=Allow|Active=" + ("TRUE" if active else "FALSE") + "|Dir=In|Protocol=6|"
            f"LPort={port}|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|"
            "Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|")


@dataclass(frozen=True)
class RemoteAccess:
    """The SYSTEM side of Remote Desktop; the defaults are what a reachable Azure VM has."""

    deny_connections: int = 0                # Control\Terminal Server fDenyTSConnections
    port: int = 3389
    security_layer: int = 2                  # 0 RDP, 1 negotiate, 2 TLS
    user_authentication: int = 1             # NLA
    termservice_start: int = 3               # demand start (Windows' default); 4 disabled
    dhcp_start: int = 2                      # automatic (Windows' default); 4 disabled
    firewall_on: bool = True                 # EnableFirewall of the three profiles
    rdp_rule_active: Optional[bool] = True   # None: the rule is missing


BROKEN_RDP = RemoteAccess(deny_connections=1, security_layer=7, termservice_start=4, dhcp_start=4,
                          rdp_rule_active=False)


def _dword(h: Hive, key: str, name: str, n: int) -> None:
    h.set(key, name, V.REG_DWORD, V.encode_dword(n))


def _sz(h: Hive, key: str, name: str, text: str, expand: bool = False) -> None:
    h.set(key, name, V.REG_EXPAND_SZ if expand else V.REG_SZ, V.encode_sz(text))


def add_remote_access(h: Hive, cs: str, ra: RemoteAccess) -> None:
    """Terminal Server, the RDP-Tcp listener, TermService, Dhcp and the firewall of one control set."""
    ts = f"{cs}\\Control\\Terminal Server"
    _dword(h, ts, "fDenyTSConnections", ra.deny_connections)
    _dword(h, ts, "fSingleSessionPerUser", 1)
    rdp = f"{ts}\\WinStations\\RDP-Tcp"
    _dword(h, rdp, "PortNumber", ra.port)
    _dword(h, rdp, "SecurityLayer", ra.security_layer)
    _dword(h, rdp, "UserAuthentication", ra.user_authentication)
    _dword(h, rdp, "MinEncryptionLevel", 2)
    for svc, start, account, group in (("TermService", ra.termservice_start, "NT Authority\\NetworkService",
                                        "NetworkService"),
                                       ("Dhcp", ra.dhcp_start, "NT Authority\\LocalService",
                                        "LocalServiceNetworkRestricted")):
        key = f"{cs}\\Services\\{svc}"
        _dword(h, key, "Start", start)
        _dword(h, key, "Type", 0x20)
        _dword(h, key, "ErrorControl", 1)
        _sz(h, key, "ImagePath", f"%SystemRoot%\\System32\\svchost.exe -k {group} -p", expand=True)
        _sz(h, key, "ObjectName", account)
    fw = f"{cs}\\Services\\SharedAccess\\Parameters\\FirewallPolicy"
    for profile in FIREWALL_PROFILES:
        _dword(h, f"{fw}\\{profile}", "EnableFirewall", 1 if ra.firewall_on else 0)
    rules = f"{fw}\\FirewallRules"
    h.ensure_key(rules)
    _sz(h, rules, "RemoteDesktop-UserMode-In-UDP", rdp_rule(True).replace("Protocol=6", "Protocol=17"))
    if ra.rdp_rule_active is not None:
        _sz(h, rules, RDP_RULE, rdp_rule(ra.rdp_rule_active, ra.port))


def add_software_policies(h: Hive, *, rdp_policy_deny: Optional[int] = None,
                          firewall_policy: Tuple[Tuple[str, int], ...] = ()) -> None:
    """Group Policy copies (absent unless given): fDenyTSConnections, and EnableFirewall per profile."""
    if rdp_policy_deny is not None:
        _dword(h, TS_POLICY, "fDenyTSConnections", rdp_policy_deny)
    for profile, enabled in firewall_policy:
        _dword(h, f"{FW_POLICY}\\{profile}", "EnableFirewall", enabled)


def add_servicing_state(h: Hive, *, pending: bool) -> None:
    """Component Based Servicing: a settled image keeps one completed session record; an update
    stuck half-way adds RebootPending, PackagesPending and a session that never completed."""
    _sz(h, CBS, "LastTrustTime", "")
    done = f"{CBS}\\SessionsPending\\31060825_2143928151"
    _dword(h, done, "Complete", 1)
    h.ensure_key(f"{CBS}\\Packages")
    if pending:
        h.ensure_key(f"{CBS}\\RebootPending")
        _dword(h, f"{CBS}\\PackagesPending", PENDING_PACKAGE, 0x70)
        _dword(h, f"{CBS}\\SessionsPending\\31061403_3507284519", "Complete", 0)


def build_components_hive(path: str | Path, *, pending: bool = False) -> Path:
    """The COMPONENTS hive (root values mark a servicing transaction in flight)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_minimal_hive(path, root_name="ROOT", file_name="COMPONENTS", minor_version=5)
    h = Hive(path, write=True)
    h.ensure_key("CanonicalData\\Catalogs")
    h.ensure_key("CanonicalData\\Deployments")
    h.ensure_key("DerivedData\\Components")
    h.ensure_key("DerivedData\\VersionedIndex")
    _dword(h, "", "StoreFormatVersion", 0)
    if pending:
        h.set("", "PendingXmlIdentifier", V.REG_BINARY, "fd9e05ba2e3fdb0151f3000030055c14".encode("utf-16-le"))
        h.set("", "NextQueueEntryIndex", V.REG_BINARY, (3).to_bytes(4, "little"))
        _dword(h, "", "ExecutionState", 1)
        h.set("", "AdvancedInstallersNeedResolving", V.REG_BINARY, b"\x01")
    h.commit()
    return path


# --- driver (service-image-missing): software uninstalled badly, its services left behind ---------
# A Win32 service (Type 0x10) whose quoted ImagePath names an .exe that is gone, ErrorControl severe
# (a failed start restarts Windows into the last known good set): what the check reports and the
# fix disables. And one with ErrorControl normal and an unquoted path with spaces: listed, left as is.
CONTOSO_AGENT_DIR = "\\Program Files\\Contoso\\Agent"
MISSING_EXE_SERVICES = (
    ServiceSpec("ContosoAgent", 2, 0x10, None, '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" -service', 2),
    ServiceSpec("ContosoUpdate", 2, 0x10, None, "C:\\Program Files\\Contoso\\Update\\ContosoUpdate.exe /svc", 1),
)
CONTOSO_AGENT_LEFTOVER = f"{CONTOSO_AGENT_DIR}\\agent.config"     # the folder stays, the .exe is gone


# --- logon (0xC000021A): what Windows runs before the logon screen ---------------------------------
# As Windows Server ships them: SOFTWARE Winlogon Userinit / Shell, SYSTEM Session Manager
# BootExecute, SYSTEM\Setup SetupType 0 with an empty CmdLine.
USERINIT = "C:\\Windows\\system32\\userinit.exe,"
SHELL = "explorer.exe"
BOOT_EXECUTE = ("autocheck autochk *",)
# The broken sample: an uninstalled agent's logon hook left in Userinit, a disk tool's native
# program left in BootExecute (ControlSet001), a password-reset tool's setup-mode hook whose
# program is gone. Each names a file the volume does not have.
LOGON_HOOK = "C:\\ProgramData\\Contoso\\LogonHook\\hook.exe"
BROKEN_USERINIT = f"{USERINIT}{LOGON_HOOK},"
BROKEN_BOOT_EXECUTE = ("autocheck autochk *", "contosochk /boot")
BROKEN_SETUP = (2, "C:\\Windows\\Temp\\ContosoReset\\reset.exe -pw")


def add_winlogon(h: Hive, *, userinit: str = USERINIT, shell: str = SHELL) -> None:
    key = "Microsoft\\Windows NT\\CurrentVersion\\Winlogon"
    h.set(key, "AutoRestartShell", V.REG_DWORD, V.encode_dword(1))
    h.set(key, "Shell", V.REG_SZ, V.encode_sz(shell))
    h.set(key, "Userinit", V.REG_SZ, V.encode_sz(userinit))


# --- files -----------------------------------------------------------------------------------------
TXR = "\\Windows\\System32\\config\\TxR"
TXR_GUID = "{53b39e88-18c4-11ea-a811-000d3aa4692b}"
TXR_FILES = (f"{TXR_GUID}.TxR.0.regtrans-ms", f"{TXR_GUID}.TxR.1.regtrans-ms", f"{TXR_GUID}.TxR.blf",
             f"{TXR_GUID}.TM.blf", f"{TXR_GUID}.TMContainer00000000000000000001.regtrans-ms")
PENDING_XML = "\\Windows\\WinSxS\\pending.xml"
CROWDSTRIKE = "\\Windows\\System32\\drivers\\CrowdStrike"
FAULTY_291 = "C-00000291-00000000-00000032.sys"
FAULTY_TIME = calendar.timegm((2024, 7, 19, 4, 9, 14))
OTHER_CHANNEL = (("C-00000290-00000000-00000014.sys", calendar.timegm((2024, 7, 18, 22, 30, 0))),
                 ("CSAgent.sys", calendar.timegm((2024, 7, 2, 0, 0, 0))))


def pending_xml() -> bytes:
    return ("<?xml version='1.0' encoding='utf-8'?>\r\n<PendingTransaction Version=\"3.1\" "
            "Identifier=\"fd9e05ba2e3fdb0151f3000030055c14\">\r\n  <Transactions>\r\n    <Begin/>\r\n"
            f"    <Install><Package id=\"{PENDING_PACKAGE}\"/></Install>\r\n    <Commit/>\r\n"
            "  </Transactions>\r\n</PendingTransaction>\r\n").encode()


def txr_data(name: str) -> bytes:
    """Small CLFS-looking placeholders (the real ones are 64 KiB-1 MiB of log blocks)."""
    return (b"\x15\x00\x03\x00" + name.encode("utf-16-le")).ljust(4096 if name.endswith(".blf") else 8192, b"\0")


def channel_file(name: str) -> bytes:
    # The faulty channel file 291 was reported as filled with zeros in many dumps; any bytes do here.
    return (b"\xaa\xaa\xaa\xaa" + name.encode()).ljust(41_000, b"\0")


def volume_files(o: "WindowsOptions", hivedir: Path) -> tuple:
    """COMPONENTS and the TxR logs (every Windows volume has them), pending.xml when an update is
    stuck, the CrowdStrike folder with the faulty channel file 291 (rescue.samples.system_state)."""
    from rescue.samples.disks import FileSpec

    cfg = "\\Windows\\System32\\config"
    build_components_hive(hivedir / "COMPONENTS", pending=o.servicing_pending)
    files = [FileSpec(f"{cfg}\\COMPONENTS", host=hivedir / "COMPONENTS"),
             FileSpec(f"{cfg}\\COMPONENTS.LOG1"), FileSpec(f"{cfg}\\COMPONENTS.LOG2"),
             *(FileSpec(f"{TXR}\\{n}", txr_data(n)) for n in TXR_FILES)]
    if o.servicing_pending:
        files.append(FileSpec(PENDING_XML, pending_xml()))
    if o.service_exe_missing:
        files.append(FileSpec(CONTOSO_AGENT_LEFTOVER, b"<agent><server>contoso.example</server></agent>\r\n"))
    if o.crowdstrike_291:
        files += [FileSpec(f"{CROWDSTRIKE}\\{FAULTY_291}", channel_file(FAULTY_291), mtime=FAULTY_TIME),
                  *(FileSpec(f"{CROWDSTRIKE}\\{n}", channel_file(n), mtime=t) for n, t in OTHER_CHANNEL)]
    return tuple(files)
