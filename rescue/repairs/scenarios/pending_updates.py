"""Stuck at "Applying updates", "Working on updates" or "Undoing changes made to your computer": a
servicing transaction the boot keeps handing back to, abandoned offline.

Sources:
  - Microsoft, "Azure VM is unresponsive while applying Windows Update / stuck at 'Getting Windows
    ready'" and "Windows VM stuck at 'Undoing changes made to your computer'" (Azure; offline: attach
    the OS disk to a repair VM, `dism /image:F:\\ /cleanup-image /revertpendingactions`, rename
    F:\\Windows\\WinSxS\\pending.xml).
  - Azure/repair-script-library src/windows/win-fix-pending-servicing.ps1 (what rescue follows,
    without DISM): the markers the boot path reads are (1) WinSxS\\pending.xml, renamed; (2) the
    Component Based Servicing keys PackagesPending, RebootPending and RebootInProgress, removed, and
    SessionsPending read by completion state (a settled image keeps one record per finished session
    with Complete=1, which is history, never evidence); (3) the COMPONENTS hive's root values
    ExecutionState, PendingXmlIdentifier, NextQueueEntryIndex, NextQueueEntryIndexBCDB,
    AdvancedInstallersNeedResolving and StoreDirty, evidence only when not 0/empty, removed;
    (4) the transactional registry logs in System32\\config\\TxR (*.blf, *.regtrans-ms), which are
    present on every healthy installation and therefore cleared only when a marker of 1-3 was found.
    Every change is backed up first. Unlike the script, rescue also removes a SessionsPending record
    that never completed (Complete not 1): it is the stuck session itself, and left in place it keeps
    the image marked as mid-servicing; completed records are left alone. rescue does not run DISM:
    the update itself stays installed or staged; Windows Update offers it again once the VM boots.

Reads: SOFTWARE and COMPONENTS through the same safe hive path as SYSTEM (pending .LOG1/.LOG2
replayed on a host copy); pending.xml's size (and its bytes only when the fix moves it); one listing
of config\\TxR. COMPONENTS absent (some images, or a damaged one): its check says so (unknown).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from rescue.files import MatchedFile, delete_step
from rescue.hive import values as V
from rescue.hive.hive import RegValue
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.repairs.scenarios import _hives as H
from rescue.repairs.sources import SourceError
from rescue.safety.plan import DeleteFile, DeleteKey, FileRef, Step, WriteFile
from rescue.units import format_bytes

PENDING_XML = "\\Windows\\WinSxS\\pending.xml"
RENAMED_XML = "\\Windows\\WinSxS\\pending.xml.old"
MAX_PENDING_XML = 64 << 20
CBS = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
CBS_KEYS = ("RebootPending", "PackagesPending", "RebootInProgress")
COMPONENT_VALUES = ("ExecutionState", "PendingXmlIdentifier", "NextQueueEntryIndex", "NextQueueEntryIndexBCDB",
                    "AdvancedInstallersNeedResolving", "StoreDirty")
TXR = "\\Windows\\System32\\config\\TxR"
TXR_SUFFIXES = (".blf", ".regtrans-ms")


def _root(ctx: RepairContext) -> Tuple[Optional[int], Optional[int]]:
    root = ctx.layout.require_root() if ctx.layout is not None else None
    return (root.disk, root.partition) if root is not None else (None, None)


# --- pending.xml -----------------------------------------------------------------------------------------
XML = "no pending servicing transaction (WinSxS\\pending.xml)"


def _check_xml(ctx: RepairContext) -> Finding:
    size = sources.file_size(ctx, PENDING_XML)
    if size is None:
        return Finding("pending-xml", XML, OK, f"no {PENDING_XML}")
    return Finding("pending-xml", XML, FOUND, f"{PENDING_XML} ({size:,} bytes): the next boot resumes that "
                   "servicing transaction", fixable=size <= MAX_PENDING_XML)


def _plan_xml(ctx: RepairContext, finding: Finding):
    title = f"Rename {PENDING_XML} to pending.xml.old"
    if finding.status != FOUND:
        return Step("servicing.pending-xml", title, skipped="no pending.xml")
    if not finding.fixable:
        return Step("servicing.pending-xml", title, skipped=f"pending.xml is over {format_bytes(MAX_PENDING_XML, exact=True)}: "
                    "rename it by hand from a repair VM")
    disk, part = _root(ctx)
    data = sources.file_data(ctx, PENDING_XML)
    # A rename as a copy under the new name, then the original deleted and kept in the backup: both
    # are undone byte for byte (the copy is removed, the original restored).
    return Step("servicing.pending-xml", title, (
        WriteFile(FileRef(RENAMED_XML, disk, part), data, reason="pending.xml kept under its new name"),
        DeleteFile(FileRef(PENDING_XML, disk, part), len(data), backup=True,
                   reason="the transaction the boot would resume")))


# --- Component Based Servicing ----------------------------------------------------------------------------
CBS_TITLE = "no pending Component Based Servicing state (RebootPending, PackagesPending, SessionsPending)"


def _incomplete_sessions(ctx: RepairContext) -> List[Tuple[str, Optional[RegValue]]]:
    software = H.hive(ctx, "SOFTWARE")
    out = []
    for name in software.child_names(f"{CBS}\\SessionsPending"):
        complete = software.get(f"{CBS}\\SessionsPending\\{name}", "Complete")
        if H.dword(complete) != 1:
            out.append((name, complete))
    return out


def _cbs_markers(ctx: RepairContext) -> List[str]:
    software = H.hive(ctx, "SOFTWARE")
    out = []
    for k in CBS_KEYS:
        node = software.find(f"{CBS}\\{k}")
        if node is None:
            continue
        if k == "PackagesPending":
            n = len(software.children(node)) + len(software.values(node))
            out.append(f"CBS\\{k} ({n} package(s))")
        else:
            out.append(f"CBS\\{k}")
    out += [f"CBS\\SessionsPending\\{n} Complete {H.show(v)}" for n, v in _incomplete_sessions(ctx)]
    return out


def _check_cbs(ctx: RepairContext) -> Finding:
    markers = _cbs_markers(ctx)
    if markers:
        return Finding("cbs-pending", CBS_TITLE, FOUND, "; ".join(markers), fixable=True)
    software = H.hive(ctx, "SOFTWARE")
    done = len(software.child_names(f"{CBS}\\SessionsPending"))
    return Finding("cbs-pending", CBS_TITLE, OK, f"no RebootPending, PackagesPending or RebootInProgress; "
                   f"{done} completed servicing session record(s)")


def _plan_cbs(ctx: RepairContext, finding: Finding):
    title = "Clear the pending Component Based Servicing state"
    if finding.status != FOUND:
        return Step("servicing.cbs", title, skipped="no pending servicing state in SOFTWARE")
    software = H.hive(ctx, "SOFTWARE")
    ref = sources.hive_ref(ctx, "SOFTWARE")
    changes = [DeleteKey(ref, f"{CBS}\\{k}", reason="servicing marker") for k in CBS_KEYS
               if software.find(f"{CBS}\\{k}") is not None]
    changes += [DeleteKey(ref, f"{CBS}\\SessionsPending\\{n}", reason="a servicing session that never completed")
                for n, _ in _incomplete_sessions(ctx)]
    return Step("servicing.cbs", title, tuple(changes))


# --- COMPONENTS -------------------------------------------------------------------------------------------
COMP_TITLE = "no interrupted transaction in the COMPONENTS hive"


def _set(v: RegValue) -> bool:
    """A value outside "absent, 0 or empty" (a settled store)."""
    if v.type == V.REG_DWORD:
        return H.dword(v) not in (None, 0)
    return any(v.data) if v.type not in (V.REG_SZ, V.REG_EXPAND_SZ) else bool(V.decode_sz(v.data))


def _component_values(ctx: RepairContext) -> List[RegValue]:
    comp = H.hive(ctx, "COMPONENTS")
    return [v for v in (comp.get("", n) for n in COMPONENT_VALUES) if v is not None and _set(v)]


def _check_components(ctx: RepairContext) -> Finding:
    found = _component_values(ctx)
    if found:
        return Finding("components-pending", COMP_TITLE, FOUND,
                       "; ".join(f"{v.name} {H.show(v) if v.type == V.REG_DWORD else v.type_name + ' ' + str(len(v.data)) + ' bytes'}"
                                 for v in found), fixable=True)
    return Finding("components-pending", COMP_TITLE, OK, f"none of {', '.join(COMPONENT_VALUES)} set")


def _plan_components(ctx: RepairContext, finding: Finding):
    title = "Clear the COMPONENTS hive's pending transaction values"
    if finding.status != FOUND:
        return Step("servicing.components", title, skipped="no pending values in COMPONENTS")
    return Step("servicing.components", title, tuple(
        H.delete_value(ctx, "COMPONENTS", "", v, "interrupted servicing transaction") for v in _component_values(ctx)))


# --- config\TxR -------------------------------------------------------------------------------------------
TXR_TITLE = "no transaction logs of a stuck update in config\\TxR"


def _txr_files(ctx: RepairContext) -> Tuple[MatchedFile, ...]:
    disk, part = _root(ctx)
    return tuple(MatchedFile(FileRef(f"{TXR}\\{e.name}", disk, part), e.name, e.size, e.mtime)
                 for e in sources.folder(ctx, TXR)
                 if e.kind == "file" and e.name.lower().endswith(TXR_SUFFIXES))


def _markers(ctx: RepairContext) -> List[str]:
    """Which servicing markers are there (the TxR logs are cleared only on one of them)."""
    out = []
    for what, probe in (("pending.xml", lambda: sources.file_size(ctx, PENDING_XML) is not None),
                        ("CBS pending state", lambda: bool(_cbs_markers(ctx))),
                        ("COMPONENTS pending values", lambda: bool(_component_values(ctx)))):
        try:
            if probe():
                out.append(what)
        except SourceError:
            continue            # that source's own check reports it
    return out


def _check_txr(ctx: RepairContext) -> Finding:
    files = _txr_files(ctx)
    if not files:
        return Finding("txr-logs", TXR_TITLE, OK, f"no transaction logs in {TXR}")
    markers = _markers(ctx)
    total = sum(f.size for f in files)
    if markers:
        return Finding("txr-logs", TXR_TITLE, FOUND, f"{len(files)} transaction log(s) in {TXR} ({total:,} bytes) "
                       f"with a stuck update ({', '.join(markers)})", fixable=True)
    return Finding("txr-logs", TXR_TITLE, OK, f"{len(files)} transaction log(s) in {TXR}: normal on a running "
                   "installation, left alone (no servicing marker)")


def _plan_txr(ctx: RepairContext, finding: Finding):
    if finding.status != FOUND:
        return Step("servicing.txr", "Remove the transaction logs in config\\TxR",
                    skipped="no servicing marker: the logs belong to a healthy registry")
    files = _txr_files(ctx)
    return delete_step("servicing.txr", f"Remove the {len(files)} transaction logs in config\\TxR", files,
                       reason="uncommitted registry side of the stuck servicing transaction")


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return ("Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore -g RG -n VM` if you "
            "used `az vm repair create`).",
            "Start the VM and watch Boot diagnostics: it should reach the logon screen without 'Applying updates' or "
            "'Undoing changes'.",
            "Once it is up, run Windows Update again (or remove the update that failed with "
            "`dism /online /remove-package`).")


SCENARIO = register(Scenario(
    name="pending-updates",
    aliases=("applying-updates", "undoing-changes", "working-on-updates"),
    summary="Stuck at 'Applying updates' / 'Undoing changes': pending.xml, CBS and COMPONENTS pending state, TxR logs",
    title="Abandon the stuck servicing transaction",
    source="Microsoft: Azure VM stuck applying updates / 'Undoing changes made to your computer' "
           "(repair-script-library win-fix-pending-servicing)",
    checks=(
        Check("pending-xml", XML, _check_xml, _plan_xml),
        Check("cbs-pending", CBS_TITLE, _check_cbs, _plan_cbs),
        Check("components-pending", COMP_TITLE, _check_components, _plan_components),
        Check("txr-logs", TXR_TITLE, _check_txr, _plan_txr),
    ),
    next_steps=next_steps,
))
