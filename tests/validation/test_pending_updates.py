"""Validation cases of `pending-updates` (stuck at "Applying updates" / "Undoing changes"): SOFTWARE
and COMPONENTS built with hivex, pending.xml and the config\\TxR listing given as records; the exact
finding and the exact planned change."""

from __future__ import annotations

import pytest

from harness import Case, context, run_case, windows_layout
from rescue.repairs import sources
from rescue.repairs.findings import FOUND, OK
from rescue.samples.hives import build_software_hive
from rescue.samples.system_state import PENDING_PACKAGE, TXR_FILES, build_components_hive, pending_xml
from rescue.target import FolderEntry

S = "pending-updates"
CBS = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
TXR = "\\Windows\\System32\\config\\TxR"
XML = pending_xml()
TXR_LIST = tuple(FolderEntry(n, "file", 4096 if n.endswith(".blf") else 8192, 1.7e9) for n in TXR_FILES)


def _sample(*, cbs=False, components=False, xml=False, txr=True, no_components=False):
    def build(d):
        hives = {"SOFTWARE": build_software_hive(d / "SOFTWARE", servicing_pending=cbs)}
        if not no_components:
            hives["COMPONENTS"] = build_components_hive(d / "COMPONENTS", pending=components)
        ctx = context(d, scenario=S, hives=hives, layout=windows_layout(c_free=10 << 30))
        if no_components:       # as on a disk without \Windows\System32\config\COMPONENTS
            sources.preset_hive(ctx, "COMPONENTS", d / "COMPONENTS")
        sources.preset_file(ctx, "\\Windows\\WinSxS\\pending.xml", XML if xml else None)
        sources.preset_folder(ctx, TXR, TXR_LIST + (FolderEntry("notes", "dir", 0, None),) if txr else ())
        return ctx
    return build


ALL = dict(cbs=True, components=True, xml=True)
SKIP_TXR = ("servicing.txr skipped: no servicing marker: the logs belong to a healthy registry",)

CASES = [
    Case("pending-xml", "pending.xml", _sample(xml=True), FOUND,
         f"\\Windows\\WinSxS\\pending.xml ({len(XML):,} bytes): the next boot resumes that servicing transaction",
         plan=(f"servicing.pending-xml: write file \\Windows\\WinSxS\\pending.xml.old ({len(XML):,} bytes)",
               f"servicing.pending-xml: delete file \\Windows\\WinSxS\\pending.xml ({len(XML):,} bytes)"), fixable=True),
    Case("pending-xml", "none", _sample(), OK, "no \\Windows\\WinSxS\\pending.xml",
         plan=("servicing.pending-xml skipped: no pending.xml",)),
    Case("cbs-pending", "RebootPending, PackagesPending, incomplete session", _sample(cbs=True), FOUND,
         "CBS\\RebootPending; CBS\\PackagesPending (1 package(s)); CBS\\SessionsPending\\31061403_3507284519 Complete 0",
         plan=(f"servicing.cbs: delete key {CBS}\\RebootPending and everything below it",
               f"servicing.cbs: delete key {CBS}\\PackagesPending and everything below it",
               f"servicing.cbs: delete key {CBS}\\SessionsPending\\31061403_3507284519 and everything below it"),
         fixable=True),
    Case("cbs-pending", "settled: one completed session", _sample(), OK,
         "no RebootPending, PackagesPending or RebootInProgress; 1 completed servicing session record(s)",
         plan=("servicing.cbs skipped: no pending servicing state in SOFTWARE",)),
    Case("components-pending", "interrupted transaction", _sample(components=True), FOUND,
         "ExecutionState 1; PendingXmlIdentifier REG_BINARY 64 bytes; NextQueueEntryIndex REG_BINARY 4 bytes; "
         "AdvancedInstallersNeedResolving REG_BINARY 1 bytes",
         plan=("servicing.components: delete \\ExecutionState (was 1)",
               f"servicing.components: delete \\PendingXmlIdentifier (was '{'fd9e05ba2e3fdb0151f3000030055c14'.encode('utf-16-le').hex()}')",
               "servicing.components: delete \\NextQueueEntryIndex (was '03000000')",
               "servicing.components: delete \\AdvancedInstallersNeedResolving (was '01')"), fixable=True),
    Case("components-pending", "settled store", _sample(), OK,
         "none of ExecutionState, PendingXmlIdentifier, NextQueueEntryIndex, NextQueueEntryIndexBCDB, "
         "AdvancedInstallersNeedResolving, StoreDirty set",
         plan=("servicing.components skipped: no pending values in COMPONENTS",)),
    Case("txr-logs", "logs with a stuck update", _sample(**ALL), FOUND,
         f"5 transaction log(s) in {TXR} (32,768 bytes) with a stuck update (pending.xml, CBS pending state, "
         "COMPONENTS pending values)",
         plan=tuple(f"servicing.txr: delete file {TXR}\\{n} ({4096 if n.endswith('.blf') else 8192:,} bytes)"
                    for n in TXR_FILES), fixable=True),
    Case("txr-logs", "logs, only COMPONENTS marks the update, COMPONENTS absent elsewhere", _sample(cbs=True,
                                                                                                no_components=True),
         FOUND, f"5 transaction log(s) in {TXR} (32,768 bytes) with a stuck update (CBS pending state)",
         plan=tuple(f"servicing.txr: delete file {TXR}\\{n} ({4096 if n.endswith('.blf') else 8192:,} bytes)"
                    for n in TXR_FILES), fixable=True),
    Case("txr-logs", "logs of a healthy registry", _sample(), OK,
         f"5 transaction log(s) in {TXR}: normal on a running installation, left alone (no servicing marker)",
         plan=SKIP_TXR),
    Case("txr-logs", "no logs", _sample(txr=False, **ALL), OK, f"no transaction logs in {TXR}", plan=SKIP_TXR),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)


def test_components_absent_is_unknown_with_why(tmp_path):
    from rescue.repairs.base import get
    from rescue.repairs.runner import run_checks

    ctx = _sample(no_components=True)(tmp_path)
    try:
        by_id = {f.id: f for f in run_checks(ctx, get(S))}
    finally:
        ctx.target.close()
    assert "components-pending" not in by_id
    f = by_id["components-unreadable"]
    assert (f.status.value, f.title) == ("unknown", "COMPONENTS readable")
    assert f.evidence == f"{tmp_path / 'COMPONENTS'} does not exist."
