"""Validation cases of `remote-access` (cannot RDP): SYSTEM and SOFTWARE hives built with hivex, the
exact finding and the exact planned edits."""

from __future__ import annotations

import pytest

from harness import Case, context, run_case
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.samples.hives import NO_REMOTE_ACCESS, build_software_hive, build_system_hive
from rescue.samples.system_state import RemoteAccess, rdp_rule

S = "remote-access"
TS = "Control\\Terminal Server"
RDP = f"{TS}\\WinStations\\RDP-Tcp"
FW = "Services\\SharedAccess\\Parameters\\FirewallPolicy"
SETS = ("ControlSet001", "ControlSet002")


def _hives(ra=None, *, policy_deny=None, fw_policy=(), options=None):
    def build(d):
        return context(d, scenario=S, system=build_system_hive(d / "SYSTEM", remote_access=ra),
                       software=build_software_hive(d / "SOFTWARE", rdp_policy_deny=policy_deny,
                                                    firewall_policy=fw_policy), options=options)
    return build


def each(fmt: str) -> tuple:
    return tuple(fmt.format(cs=cs) for cs in SETS)


CASES = [
    # --- rdp-denied ---
    Case("rdp-denied", "denied locally and by policy", _hives(RemoteAccess(deny_connections=1), policy_deny=1), FOUND,
         "ControlSet001 fDenyTSConnections 1; ControlSet002 fDenyTSConnections 1; Group Policy fDenyTSConnections 1 "
         "(overrides the local setting)",
         plan=(*each(f"rdp.allow: set {{cs}}\\{TS}\\fDenyTSConnections = 0 (REG_DWORD)"),
               "rdp.allow: set Policies\\Microsoft\\Windows NT\\Terminal Services\\fDenyTSConnections = 0 (REG_DWORD)"),
         fixable=True),
    Case("rdp-denied", "denied by policy only", _hives(policy_deny=1), FOUND,
         "Group Policy fDenyTSConnections 1 (overrides the local setting)",
         plan=("rdp.allow: set Policies\\Microsoft\\Windows NT\\Terminal Services\\fDenyTSConnections = 0 (REG_DWORD)",),
         fixable=True),
    Case("rdp-denied", "value absent", _hives(NO_REMOTE_ACCESS), FOUND,
         "ControlSet001 fDenyTSConnections not set; ControlSet002 fDenyTSConnections not set",
         plan=each(f"rdp.allow: set {{cs}}\\{TS}\\fDenyTSConnections = 0 (REG_DWORD)"), fixable=True),
    Case("rdp-denied", "allowed", _hives(policy_deny=0), OK,
         "fDenyTSConnections 0 in ControlSet001, ControlSet002; Group Policy 0",
         plan=("rdp.allow skipped: fDenyTSConnections is already 0",)),
    # --- rdp-port ---
    Case("rdp-port", "moved to 3390, no --reset-port", _hives(RemoteAccess(port=3390)), FOUND,
         "ControlSet001 PortNumber 3390; ControlSet002 PortNumber 3390 (a moved port needs its own firewall and NSG "
         "rules; --reset-port moves it back)",
         plan=("rdp.port skipped: the port may have been moved on purpose: add --reset-port to move it back to 3389",),
         fixable=True),
    Case("rdp-port", "moved to 3390, --reset-port", _hives(RemoteAccess(port=3390), options={"reset_port": True}),
         FOUND, "ControlSet001 PortNumber 3390; ControlSet002 PortNumber 3390 (a moved port needs its own firewall and "
                "NSG rules; --reset-port moves it back)",
         plan=each(f"rdp.port: set {{cs}}\\{RDP}\\PortNumber = 3389 (REG_DWORD)"), fixable=True),
    Case("rdp-port", "no listener key", _hives(NO_REMOTE_ACCESS), FOUND,
         f"no {RDP} key in any control set (a damaged installation: `az vm user reset-remote-access` recreates the "
         "listener)", plan=("rdp.port skipped: no RDP-Tcp listener key to change",), fixable=False),
    Case("rdp-port", "3389", _hives(), OK, "PortNumber 3389 in ControlSet001, ControlSet002",
         plan=("rdp.port skipped: the listener is on 3389",)),
    # --- rdp-security ---
    Case("rdp-security", "SecurityLayer 7, UserAuthentication 5",
         _hives(RemoteAccess(security_layer=7, user_authentication=5)), FOUND,
         "; ".join(f"{cs} SecurityLayer 7 (valid: 0, 1, 2); {cs} UserAuthentication 5 (valid: 0, 1)" for cs in SETS),
         plan=tuple(line for cs in SETS for line in (
             f"rdp.security: set {cs}\\{RDP}\\SecurityLayer = 2 (REG_DWORD)",
             f"rdp.security: set {cs}\\{RDP}\\UserAuthentication = 1 (REG_DWORD)")), fixable=True),
    Case("rdp-security", "TLS and NLA", _hives(), OK,
         "SecurityLayer 2, UserAuthentication 1 in ControlSet001, ControlSet002",
         plan=("rdp.security skipped: SecurityLayer and UserAuthentication are valid",)),
    Case("rdp-security", "no listener", _hives(NO_REMOTE_ACCESS), UNKNOWN, "no RDP-Tcp listener key",
         plan=("rdp.security skipped: SecurityLayer and UserAuthentication are valid",)),
    # --- rdp-services-disabled ---
    Case("rdp-services-disabled", "TermService disabled", _hives(RemoteAccess(termservice_start=4)), FOUND,
         "ControlSet001 TermService Start 4 (disabled); ControlSet002 TermService Start 4 (disabled)",
         plan=each("rdp.services: set {cs}\\Services\\TermService\\Start = 3 (REG_DWORD)"), fixable=True),
    Case("rdp-services-disabled", "TermService missing", _hives(NO_REMOTE_ACCESS), FOUND,
         "no TermService key in ControlSet001, ControlSet002",
         plan=("rdp.services skipped: no Remote Desktop service is disabled",), fixable=False),
    Case("rdp-services-disabled", "demand start", _hives(), OK, "TermService Start 3",
         plan=("rdp.services skipped: no Remote Desktop service is disabled",)),
    # --- firewall-blocks-rdp ---
    Case("firewall-blocks-rdp", "rule inactive", _hives(RemoteAccess(rdp_rule_active=False)), FOUND,
         "; ".join(f"{cs}: firewall on (DomainProfile, StandardProfile, PublicProfile) and rule "
                   "RemoteDesktop-UserMode-In-TCP inactive (Active=FALSE)" for cs in SETS),
         plan=each(f"firewall.rdp-rule: set {{cs}}\\{FW}\\FirewallRules\\RemoteDesktop-UserMode-In-TCP = "
                   f"{rdp_rule(True)!r} (REG_SZ)"), fixable=True),
    Case("firewall-blocks-rdp", "local firewall off, Group Policy turns Public on, rule missing",
         _hives(RemoteAccess(firewall_on=False, rdp_rule_active=None), fw_policy=(("PublicProfile", 1),)), FOUND,
         "; ".join(f"{cs}: firewall on (PublicProfile (Group Policy)) and rule RemoteDesktop-UserMode-In-TCP missing"
                   for cs in SETS),
         plan=each(f"firewall.rdp-rule: set {{cs}}\\{FW}\\FirewallRules\\RemoteDesktop-UserMode-In-TCP = "
                   f"{rdp_rule(True)!r} (REG_SZ)"), fixable=True),
    Case("firewall-blocks-rdp", "rule active", _hives(), OK,
         "ControlSet001: rule RemoteDesktop-UserMode-In-TCP active; ControlSet002: rule RemoteDesktop-UserMode-In-TCP "
         "active", plan=("firewall.rdp-rule skipped: the firewall lets Remote Desktop in",)),
    Case("firewall-blocks-rdp", "firewall off, rule inactive", _hives(RemoteAccess(firewall_on=False,
                                                                                    rdp_rule_active=False)), OK,
         "ControlSet001: firewall off in every profile; ControlSet002: firewall off in every profile",
         plan=("firewall.rdp-rule skipped: the firewall lets Remote Desktop in",)),
    # --- dhcp-disabled ---
    Case("dhcp-disabled", "Dhcp disabled", _hives(RemoteAccess(dhcp_start=4)), FOUND,
         "ControlSet001 Dhcp Start 4; ControlSet002 Dhcp Start 4 (no address lease, so no network)",
         plan=each("dhcp.start: set {cs}\\Services\\Dhcp\\Start = 2 (REG_DWORD)"), fixable=True),
    Case("dhcp-disabled", "Dhcp manual", _hives(RemoteAccess(dhcp_start=3)), FOUND,
         "ControlSet001 Dhcp Start 3; ControlSet002 Dhcp Start 3 (no address lease, so no network)",
         plan=each("dhcp.start: set {cs}\\Services\\Dhcp\\Start = 2 (REG_DWORD)"), fixable=True),
    Case("dhcp-disabled", "automatic", _hives(), OK, "Dhcp Start 2 in ControlSet001, ControlSet002",
         plan=("dhcp.start skipped: the DHCP Client service starts automatically",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
