"""Cannot RDP to the VM (it boots, but Remote Desktop refuses or never answers): the registry side of
Remote Desktop, the services it needs and the guest firewall, checked and repaired offline.

Sources:
  - Microsoft, "Troubleshoot Remote Desktop connections to an Azure virtual machine" and "Reset
    Remote Desktop Services or its administrator password in a Windows VM" (reset-rdp: what
    `az vm user reset-remote-access` / VMAccess restores: RDP enabled, the listener on 3389, the
    firewall rule for 3389 on), "Troubleshoot an RDP general error in Azure VM" (offline: attach the
    OS disk to a repair VM, load SYSTEM and SOFTWARE, set fDenyTSConnections 0 in the Terminal
    Server key and in the Policies copy, SecurityLayer / UserAuthentication on RDP-Tcp),
    "Cannot connect remotely to a VM because the DHCP Client service is disabled" (offline: Dhcp
    Start=2 in ControlSet001/002) and "Azure VM Guest OS firewall is blocking inbound traffic".
  - Azure/repair-script-library src/windows/win-fix-rdp-connectivity.ps1 (what counts as evidence:
    fDenyTSConnections=1 locally or by policy, both repaired; TermService/SessionEnv/UmRdpService
    disabled (Start=4) -> 3, Windows' demand start; SecurityLayer outside {0,1,2} -> 2,
    UserAuthentication outside {0,1} -> 1; a port other than 3389 only reported unless asked to
    reset it, because a moved port may be deliberate) and src/windows/win-dhcp-fix.ps1 (Dhcp Start=2
    in every control set).

Checks (each over every ControlSetNNN, since Windows may boot any of them as Last Known Good):
  rdp-denied            fDenyTSConnections 1 (or not set) in Control\\Terminal Server, or 1 in the Group
                        Policy copy (SOFTWARE Policies\\Microsoft\\Windows NT\\Terminal Services, which
                        wins) -> 0 in both places
  rdp-port              RDP-Tcp PortNumber not 3389 -> 3389 only with --reset-port
  rdp-security          RDP-Tcp SecurityLayer / UserAuthentication outside their documented sets -> 2 / 1
  rdp-services-disabled TermService (and SessionEnv, UmRdpService when present) Start=4 -> 3
  firewall-blocks-rdp   a firewall profile on (its Group Policy EnableFirewall wins over the local one)
                        while the built-in rule RemoteDesktop-UserMode-In-TCP is missing or
                        Active=FALSE -> the rule active again (the firewall stays on, as Azure's
                        image guidance wants). Policy-defined firewall rules are not read.
  dhcp-disabled         Services\\Dhcp Start not 2 -> 2 (Automatic, as Windows ships it)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from rescue.hive.hive import RegValue
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.repairs.scenarios import _hives as H
from rescue.safety.plan import Step

RDP_PORT = 3389
TS = "Control\\Terminal Server"
RDP_TCP = f"{TS}\\WinStations\\RDP-Tcp"
TS_POLICY = "Policies\\Microsoft\\Windows NT\\Terminal Services"
FW = "Services\\SharedAccess\\Parameters\\FirewallPolicy"
FW_POLICY = "Policies\\Microsoft\\WindowsFirewall"
PROFILES = ("DomainProfile", "StandardProfile", "PublicProfile")
RDP_RULE = "RemoteDesktop-UserMode-In-TCP"
RDP_SERVICES = ("TermService", "SessionEnv", "UmRdpService")   # the listener path
DEMAND_START, AUTO_START, DISABLED = 3, 2, 4
SECURITY_LAYERS = (0, 1, 2)
USER_AUTH = (0, 1)
DEFAULT_RULE = ("v2.28|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|"
                "Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|"
                "EmbedCtxt=@FirewallAPI.dll,-28752|")
_ACTIVE = re.compile(r"\|Active=(TRUE|FALSE)\|", re.IGNORECASE)


# --- what was read -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SetState:
    """The Remote Desktop side of one control set."""

    name: str                                   # ControlSet001
    ts_present: bool
    listener_present: bool
    deny: Optional[RegValue]
    port: Optional[RegValue]
    security_layer: Optional[RegValue]
    user_auth: Optional[RegValue]
    services: Tuple[Tuple[str, bool, Optional[RegValue]], ...]   # (service, key present, Start)
    firewall: Tuple[Tuple[str, Optional[RegValue]], ...]         # (profile, EnableFirewall)
    rule: Optional[RegValue]


@dataclass(frozen=True)
class RdpState:
    sets: Tuple[SetState, ...]
    policy_deny: Optional[RegValue]
    policy_firewall: Tuple[Tuple[str, Optional[RegValue]], ...]


def state(ctx: RepairContext) -> RdpState:
    def load() -> RdpState:
        system = H.hive(ctx, "SYSTEM")
        software = H.hive(ctx, "SOFTWARE")
        sets = []
        for cs in H.control_sets(system):
            svcs = tuple((s, system.find(f"{cs}\\Services\\{s}") is not None,
                          system.get(f"{cs}\\Services\\{s}", "Start")) for s in (*RDP_SERVICES, "Dhcp"))
            sets.append(SetState(
                cs, system.find(f"{cs}\\{TS}") is not None, system.find(f"{cs}\\{RDP_TCP}") is not None,
                system.get(f"{cs}\\{TS}", "fDenyTSConnections"), system.get(f"{cs}\\{RDP_TCP}", "PortNumber"),
                system.get(f"{cs}\\{RDP_TCP}", "SecurityLayer"), system.get(f"{cs}\\{RDP_TCP}", "UserAuthentication"),
                svcs, tuple((p, system.get(f"{cs}\\{FW}\\{p}", "EnableFirewall")) for p in PROFILES),
                system.get(f"{cs}\\{FW}\\FirewallRules", RDP_RULE)))
        return RdpState(tuple(sets), software.get(TS_POLICY, "fDenyTSConnections"),
                        tuple((p, software.get(f"{FW_POLICY}\\{p}", "EnableFirewall")) for p in PROFILES))

    return ctx.memo("remote-access:state", load)


def _no_sets(check_id: str, title: str) -> Finding:
    return Finding(check_id, title, UNKNOWN, "SYSTEM has no ControlSetNNN key")


# --- rdp-denied --------------------------------------------------------------------------------------------
DENIED = "Remote Desktop connections allowed (fDenyTSConnections 0)"


def _check_denied(ctx: RepairContext) -> Finding:
    s = state(ctx)
    if not s.sets:
        return _no_sets("rdp-denied", DENIED)
    bad = [f"{c.name} fDenyTSConnections {H.show(c.deny)}" for c in s.sets if H.dword(c.deny) != 0]
    if H.dword(s.policy_deny) not in (None, 0):
        bad.append(f"Group Policy fDenyTSConnections {H.show(s.policy_deny)} (overrides the local setting)")
    if bad:
        return Finding("rdp-denied", DENIED, FOUND, "; ".join(bad), fixable=True)
    policy = "no Group Policy value" if s.policy_deny is None else f"Group Policy {H.show(s.policy_deny)}"
    return Finding("rdp-denied", DENIED, OK,
                   f"fDenyTSConnections 0 in {', '.join(c.name for c in s.sets)}; {policy}")


def _plan_denied(ctx: RepairContext, finding: Finding):
    if finding.status != FOUND:
        return Step("rdp.allow", "Allow Remote Desktop connections", skipped="fDenyTSConnections is already 0")
    s = state(ctx)
    why = "allow Remote Desktop connections (reset-rdp)"
    changes = [H.set_dword(ctx, "SYSTEM", f"{c.name}\\{TS}", "fDenyTSConnections", 0, c.deny, why)
               for c in s.sets if H.dword(c.deny) != 0]
    if H.dword(s.policy_deny) not in (None, 0):
        changes.append(H.set_dword(ctx, "SOFTWARE", TS_POLICY, "fDenyTSConnections", 0, s.policy_deny, why))
    return Step("rdp.allow", "Allow Remote Desktop connections", tuple(changes))


# --- rdp-port ----------------------------------------------------------------------------------------------
PORT = f"RDP listener on port {RDP_PORT}"


def _check_port(ctx: RepairContext) -> Finding:
    s = state(ctx)
    if not s.sets:
        return _no_sets("rdp-port", PORT)
    listening = [c for c in s.sets if c.listener_present]
    if not listening:
        return Finding("rdp-port", PORT, FOUND, f"no {RDP_TCP} key in any control set (a damaged installation: "
                       "`az vm user reset-remote-access` recreates the listener)")
    bad = [f"{c.name} PortNumber {H.show(c.port)}" for c in listening if H.dword(c.port) != RDP_PORT]
    if bad:
        return Finding("rdp-port", PORT, FOUND, "; ".join(bad) + " (a moved port needs its own firewall and NSG "
                       "rules; --reset-port moves it back)", fixable=True, fix_option="--reset-port")
    return Finding("rdp-port", PORT, OK, f"PortNumber {RDP_PORT} in {', '.join(c.name for c in listening)}")


def _plan_port(ctx: RepairContext, finding: Finding):
    title = f"Move the RDP listener back to port {RDP_PORT}"
    if finding.status != FOUND or not finding.fixable:
        return Step("rdp.port", title, skipped=f"the listener is on {RDP_PORT}" if finding.status != FOUND
                    else "no RDP-Tcp listener key to change")
    if not ctx.options.get("reset_port"):
        return Step("rdp.port", title, skipped="the port may have been moved on purpose: add --reset-port to move "
                                               f"it back to {RDP_PORT}")
    return Step("rdp.port", title, tuple(
        H.set_dword(ctx, "SYSTEM", f"{c.name}\\{RDP_TCP}", "PortNumber", RDP_PORT, c.port, "--reset-port")
        for c in state(ctx).sets if c.listener_present and H.dword(c.port) != RDP_PORT))


# --- rdp-security --------------------------------------------------------------------------------------------
SECURITY = "RDP listener security layer and NLA values valid"


def _bad_security(c: SetState) -> List[Tuple[str, Optional[RegValue], int]]:
    out: List[Tuple[str, Optional[RegValue], int]] = []
    if c.security_layer is not None and H.dword(c.security_layer) not in SECURITY_LAYERS:
        out.append(("SecurityLayer", c.security_layer, 2))
    if c.user_auth is not None and H.dword(c.user_auth) not in USER_AUTH:
        out.append(("UserAuthentication", c.user_auth, 1))
    return out


def _check_security(ctx: RepairContext) -> Finding:
    s = state(ctx)
    listening = [c for c in s.sets if c.listener_present]
    if not listening:
        return Finding("rdp-security", SECURITY, UNKNOWN, "no RDP-Tcp listener key")
    bad = [f"{c.name} {name} {H.show(v)} (valid: {', '.join(map(str, SECURITY_LAYERS if name == 'SecurityLayer' else USER_AUTH))})"
           for c in listening for name, v, _ in _bad_security(c)]
    if bad:
        return Finding("rdp-security", SECURITY, FOUND, "; ".join(bad), fixable=True)
    c = listening[0]
    return Finding("rdp-security", SECURITY, OK, f"SecurityLayer {H.show(c.security_layer)}, UserAuthentication "
                   f"{H.show(c.user_auth)} in {', '.join(x.name for x in listening)}")


def _plan_security(ctx: RepairContext, finding: Finding):
    title = "Bring the RDP listener's security values back into their documented sets"
    if finding.status != FOUND:
        return Step("rdp.security", title, skipped="SecurityLayer and UserAuthentication are valid")
    return Step("rdp.security", title, tuple(
        H.set_dword(ctx, "SYSTEM", f"{c.name}\\{RDP_TCP}", name, want, v, f"{name} outside its documented values")
        for c in state(ctx).sets if c.listener_present for name, v, want in _bad_security(c)))


# --- rdp-services-disabled ------------------------------------------------------------------------------------
SERVICES = "Remote Desktop services not disabled"


def _disabled(c: SetState) -> List[Tuple[str, Optional[RegValue]]]:
    return [(name, start) for name, present, start in c.services
            if name in RDP_SERVICES and present and H.dword(start) == DISABLED]


def _check_services(ctx: RepairContext) -> Finding:
    s = state(ctx)
    if not s.sets:
        return _no_sets("rdp-services-disabled", SERVICES)
    missing = [c.name for c in s.sets if not dict((n, p) for n, p, _ in c.services)["TermService"]]
    bad = [f"{c.name} {name} Start 4 (disabled)" for c in s.sets for name, _ in _disabled(c)]
    if bad:
        return Finding("rdp-services-disabled", SERVICES, FOUND, "; ".join(bad), fixable=True)
    if missing:
        return Finding("rdp-services-disabled", SERVICES, FOUND, f"no TermService key in {', '.join(missing)}")
    starts = sorted({f"{n} Start {H.show(st)}" for c in s.sets for n, p, st in c.services if p and n in RDP_SERVICES})
    return Finding("rdp-services-disabled", SERVICES, OK, ", ".join(starts))


def _plan_services(ctx: RepairContext, finding: Finding):
    title = "Set the disabled Remote Desktop services back to demand start"
    if finding.status != FOUND or not finding.fixable:
        return Step("rdp.services", title, skipped="no Remote Desktop service is disabled")
    return Step("rdp.services", title, tuple(
        H.set_dword(ctx, "SYSTEM", f"{c.name}\\Services\\{name}", "Start", DEMAND_START, start,
                    "disabled; Windows ships it demand-start (3)")
        for c in state(ctx).sets for name, start in _disabled(c)))


# --- firewall-blocks-rdp ------------------------------------------------------------------------------------
FIREWALL = "guest firewall lets Remote Desktop in"


def _on_profiles(s: RdpState, c: SetState) -> List[str]:
    policy = dict(s.policy_firewall)
    out = []
    for profile, local in c.firewall:
        pol = policy.get(profile)
        enabled = H.dword(pol) if pol is not None else H.dword(local)
        if enabled != 0:           # not set: Windows Firewall is on by default
            out.append(profile + (" (Group Policy)" if pol is not None else ""))
    return out


def _rule_active(rule: Optional[RegValue]) -> Optional[bool]:
    if rule is None or not isinstance(rule.value, str):
        return None
    m = _ACTIVE.search("|" + rule.value)
    return m is not None and m.group(1).upper() == "TRUE"


def _check_firewall(ctx: RepairContext) -> Finding:
    s = state(ctx)
    if not s.sets:
        return _no_sets("firewall-blocks-rdp", FIREWALL)
    bad, ok = [], []
    for c in s.sets:
        on = _on_profiles(s, c)
        active = _rule_active(c.rule)
        if not on:
            ok.append(f"{c.name}: firewall off in every profile")
        elif active:
            ok.append(f"{c.name}: rule {RDP_RULE} active")
        else:
            bad.append(f"{c.name}: firewall on ({', '.join(on)}) and rule {RDP_RULE} "
                       + ("missing" if c.rule is None else "inactive (Active=FALSE)"))
    if bad:
        return Finding("firewall-blocks-rdp", FIREWALL, FOUND, "; ".join(bad), fixable=True)
    return Finding("firewall-blocks-rdp", FIREWALL, OK, "; ".join(ok))


def _plan_firewall(ctx: RepairContext, finding: Finding):
    title = f"Turn the firewall rule {RDP_RULE} back on"
    if finding.status != FOUND:
        return Step("firewall.rdp-rule", title, skipped="the firewall lets Remote Desktop in")
    s = state(ctx)
    changes = []
    for c in s.sets:
        if not _on_profiles(s, c) or _rule_active(c.rule):
            continue
        data = DEFAULT_RULE if c.rule is None or not isinstance(c.rule.value, str) else \
            _ACTIVE.sub("|Active=TRUE|", c.rule.value, count=1)
        changes.append(H.set_sz(ctx, "SYSTEM", f"{c.name}\\{FW}\\FirewallRules", RDP_RULE, data, c.rule,
                                "inbound Remote Desktop (TCP 3389) allowed, the firewall stays on"))
    return Step("firewall.rdp-rule", title, tuple(changes))


# --- dhcp-disabled ---------------------------------------------------------------------------------------------
DHCP = "DHCP Client service automatic"


def _dhcp(c: SetState) -> Tuple[bool, Optional[RegValue]]:
    return next((present, start) for name, present, start in c.services if name == "Dhcp")


def _check_dhcp(ctx: RepairContext) -> Finding:
    s = state(ctx)
    if not s.sets:
        return _no_sets("dhcp-disabled", DHCP)
    missing = [c.name for c in s.sets if not _dhcp(c)[0]]
    if missing:
        return Finding("dhcp-disabled", DHCP, FOUND, f"no Services\\Dhcp key in {', '.join(missing)}")
    bad = [f"{c.name} Dhcp Start {H.show(_dhcp(c)[1])}" for c in s.sets if H.dword(_dhcp(c)[1]) != AUTO_START]
    if bad:
        return Finding("dhcp-disabled", DHCP, FOUND, "; ".join(bad) + " (no address lease, so no network)",
                       fixable=True)
    return Finding("dhcp-disabled", DHCP, OK, f"Dhcp Start 2 in {', '.join(c.name for c in s.sets)}")


def _plan_dhcp(ctx: RepairContext, finding: Finding):
    title = "Set the DHCP Client service back to automatic start"
    if finding.status != FOUND or not finding.fixable:
        return Step("dhcp.start", title, skipped="the DHCP Client service starts automatically" if finding.status != FOUND
                    else "no Dhcp service key to change")
    return Step("dhcp.start", title, tuple(
        H.set_dword(ctx, "SYSTEM", f"{c.name}\\Services\\Dhcp", "Start", AUTO_START, _dhcp(c)[1], "win-dhcp-fix")
        for c in state(ctx).sets if H.dword(_dhcp(c)[1]) != AUTO_START))


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return ("Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore -g RG -n VM` if you "
            "used `az vm repair create`).",
            f"Start the VM and connect with RDP (port {RDP_PORT} unless you kept a moved port); check that the NSG "
            "allows that port from your address (`az network nsg rule list`).",
            "If it still refuses, look at Boot diagnostics and the serial console (`rescue diagnose` found what the "
            "registry can tell).")


SCENARIO = register(Scenario(
    name="remote-access",
    aliases=("rdp", "cannot-rdp"),
    summary="Cannot RDP to the VM: RDP denied, listener port/security, services, guest firewall, DHCP client",
    title="Restore Remote Desktop access",
    source="Microsoft: Troubleshoot Remote Desktop connections to an Azure VM; Reset RDP configuration; DHCP "
           "Client disabled (repair-script-library win-fix-rdp-connectivity, win-dhcp-fix)",
    options=(Option("reset_port", "--reset-port", f"Move the RDP listener back to port {RDP_PORT} when it was moved.",
                    kind=OptionKind.FLAG, default=False, diagnose=False),),
    checks=(
        Check("rdp-denied", DENIED, _check_denied, _plan_denied),
        Check("rdp-port", PORT, _check_port, _plan_port, options=("reset_port",)),
        Check("rdp-security", SECURITY, _check_security, _plan_security),
        Check("rdp-services-disabled", SERVICES, _check_services, _plan_services),
        Check("firewall-blocks-rdp", FIREWALL, _check_firewall, _plan_firewall),
        Check("dhcp-disabled", DHCP, _check_dhcp, _plan_dhcp),
    ),
    next_steps=next_steps,
))
