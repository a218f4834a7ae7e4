"""remote-access, pending-updates, crowdstrike-291 and logon end to end on a sample disk with all four
broken at once (gen2-system-broken.vhd), and `rescue files delete` on the Gen1 one; the results are
read back with libguestfs and hivex directly (not through rescue's own disk or hive code). The same
disk carries a third-party automatic-start service whose .exe is gone: the driver scenario's
service-image-missing finds it in the same triage, `rescue fix driver` disables it (no dry run of its
own: its plan lines are validation cases) and the same undo chain takes it back.

Launch budget (TCG): the triage 1; per scenario a dry run, the fix and an undo (12); the driver fix
and its undo (2); files delete: dry run, delete, undo, a pattern matching nothing (4); the healthy
triage 1; the read-back 1.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import guestfs
import hivex
import pytest

pytestmark = pytest.mark.appliance

SCENARIOS = ("remote-access", "pending-updates", "crowdstrike-291", "logon")
EXPECTED = {
    "remote-access": {"rdp-denied", "rdp-security", "rdp-services-disabled", "firewall-blocks-rdp", "dhcp-disabled"},
    "pending-updates": {"pending-xml", "cbs-pending", "components-pending", "txr-logs"},
    "crowdstrike-291": {"crowdstrike-channel-291"},
    "logon": {"logon-userinit", "boot-execute", "setup-mode"},
}
CS_FILE = "/Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000032.sys"
CS_OTHER = "/Windows/System32/drivers/CrowdStrike/C-00000290-00000000-00000014.sys"
PENDING = "/Windows/WinSxS/pending.xml"
TXR = "/Windows/System32/config/TxR"
HIVES = ("SYSTEM", "SOFTWARE", "COMPONENTS")
AGENT = ('ContosoAgent (automatic (2), own process 0x10, ErrorControl 2 severe, third-party, ImagePath '
         '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" -service -> '
         '\\Program Files\\Contoso\\Agent\\ContosoAgent.exe missing)')


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(cli, monkeypatch, tmp_path, *args):
    log = tmp_path / f"launches-{len(list(tmp_path.glob('launches-*')))}.log"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    result = cli(*args)
    return result, len(log.read_text().splitlines()) if log.exists() else 0


class Volume:
    """C: of one image, read with libguestfs itself (ntfs-3g read-only) and hivex."""

    def __init__(self, g, mountpoint: str, workdir: Path):
        self.g, self.mp, self.dir = g, mountpoint, workdir

    def exists(self, path: str) -> bool:
        return self.g.exists(self.mp + path)

    def listdir(self, path: str) -> list[str]:
        return sorted(self.g.ls(self.mp + path)) if self.exists(path) else []

    def sha(self, path: str) -> str:
        return self.g.checksum("sha256", self.mp + path)

    def hive(self, name: str) -> hivex.Hivex:
        local = self.dir / f"{self.mp.strip('/')}-{name}"
        self.g.download(f"{self.mp}/Windows/System32/config/{name}", str(local))
        return hivex.Hivex(str(local))


def value(h: hivex.Hivex, key: str, name: str):
    node = h.root()
    for part in key.split("\\"):
        node = h.node_get_child(node, part)
        if node is None:
            return None
    v = h.node_get_value(node, name) if name is not None else None
    if v is None:
        return None
    t, data = h.value_value(v)
    if t == 7:                                  # REG_MULTI_SZ
        return [x for x in data.decode("utf-16-le").split("\0") if x]
    return int.from_bytes(data[:4], "little") if t == 4 else data.decode("utf-16-le").rstrip("\0")


def has_key(h: hivex.Hivex, key: str) -> bool:
    node = h.root()
    for part in key.split("\\"):
        node = h.node_get_child(node, part)
        if node is None:
            return False
    return True


def open_volumes(images, workdir: Path):
    g = guestfs.GuestFS(python_return_dict=True)
    for path, fmt in images:
        g.add_drive_opts(str(path), readonly=1, format=fmt)
    g.launch()
    vols = []
    for i, (path, _) in enumerate(images):
        mp = f"/d{i}"
        g.mkmountpoint(mp)
        part = 3 if "gen2" in path.name else 2
        g.mount_ro(f"/dev/sd{chr(ord('a') + i)}{part}", mp)
        vols.append(Volume(g, mp, workdir))
    return g, vols


def check_repaired(v: Volume) -> None:
    system, software, components = (v.hive(n) for n in HIVES)
    for cs in ("ControlSet001", "ControlSet002"):
        assert value(system, f"{cs}\\Control\\Terminal Server", "fDenyTSConnections") == 0
        assert value(system, f"{cs}\\Control\\Terminal Server\\WinStations\\RDP-Tcp", "SecurityLayer") == 2
        assert value(system, f"{cs}\\Services\\TermService", "Start") == 3
        assert value(system, f"{cs}\\Services\\Dhcp", "Start") == 2
        rule = value(system, f"{cs}\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules",
                     "RemoteDesktop-UserMode-In-TCP")
        assert "|Active=TRUE|" in rule and "|LPort=3389|" in rule
        assert value(system, f"{cs}\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile",
                     "EnableFirewall") == 1                         # the firewall stays on
    assert value(software, "Policies\\Microsoft\\Windows NT\\Terminal Services", "fDenyTSConnections") == 0
    cbs = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
    assert not has_key(software, f"{cbs}\\RebootPending") and not has_key(software, f"{cbs}\\PackagesPending")
    assert not has_key(software, f"{cbs}\\SessionsPending\\31061403_3507284519")
    assert value(software, f"{cbs}\\SessionsPending\\31060825_2143928151", "Complete") == 1   # history kept
    root_values = {components.value_key(x) for x in components.node_values(components.root())}
    assert root_values == {"StoreFormatVersion"}
    assert not v.exists(PENDING) and v.exists(PENDING + ".old")
    assert v.listdir(TXR) == []
    assert not v.exists(CS_FILE) and v.exists(CS_OTHER)
    # driver: the service whose .exe is gone is disabled in the current set only (LKG keeps it);
    # the one whose ErrorControl is normal does not stop the boot and is left as it was
    assert value(system, "Select", "Current") == 1
    assert value(system, "ControlSet001\\Services\\ContosoAgent", "Start") == 4
    assert value(system, "ControlSet002\\Services\\ContosoAgent", "Start") == 2
    assert value(system, "ControlSet001\\Services\\ContosoUpdate", "Start") == 2
    assert v.exists("/Program Files/Contoso/Agent/agent.config")
    # logon: the missing hook, native program and setup-mode command gone, the rest as it was
    winlogon = "Microsoft\\Windows NT\\CurrentVersion\\Winlogon"
    assert value(software, winlogon, "Userinit") == "C:\\Windows\\system32\\userinit.exe,"
    assert value(software, winlogon, "Shell") == "explorer.exe"
    for cs in ("ControlSet001", "ControlSet002"):
        assert value(system, f"{cs}\\Control\\Session Manager", "BootExecute") == ["autocheck autochk *"]
    assert (value(system, "Setup", "SetupType"), value(system, "Setup", "CmdLine")) == (0, "")


def test_four_scenarios_triage_fix_and_undo(sample_disk, cli, monkeypatch, tmp_path):
    pristine = sample_disk("gen2-system-broken.vhd", dest=tmp_path / "pristine")
    disk = sample_disk("gen2-system-broken.vhd")

    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
    assert (res.code, n) == (1, 1), res.err
    diag = json.loads(res.out)
    found = {}
    for f in diag["findings"]:
        if f["status"] == "found":
            found.setdefault(f["scenario"], set()).add(f["id"])
    for name, ids in EXPECTED.items():
        assert ids <= found.get(name, set()), (name, found.get(name))
    by_id = {f["id"]: f for f in diag["findings"]}
    assert "C-00000291-00000000-00000032.sys 41,000 bytes written 2024-07-19 04:09:14 UTC (the faulty version)" \
        in by_id["crowdstrike-channel-291"]["evidence"]
    assert "Group Policy fDenyTSConnections 1" in by_id["rdp-denied"]["evidence"]
    # read from the volume's own folders: the hook's folder is not there, contosochk.exe is not in System32
    assert "hook.exe -> \\ProgramData\\Contoso\\LogonHook\\hook.exe missing" in by_id["logon-userinit"]["evidence"]
    assert "contosochk /boot -> \\Windows\\System32\\contosochk.exe missing" in by_id["boot-execute"]["evidence"]
    assert by_id["logon-shell"]["status"] == "ok"
    svc = by_id["service-image-missing"]
    assert (svc["status"], svc["scenario"], svc["fixable"]) == ("found", "driver", True)
    assert "1 automatic-start service(s) whose file is missing stop the boot" in svc["evidence"]
    assert AGENT in svc["evidence"]                             # the listing of the real folder, .exe gone
    assert "ContosoUpdate.exe missing (unquoted path with spaces: \\Program.exe missing too)" in svc["evidence"]
    assert f"rescue fix driver {disk}" in diag["fix_commands"]
    mine = [c for c in diag["fix_commands"] if c.split()[2] in SCENARIOS]
    assert sorted(c.split()[2] for c in mine) == sorted(SCENARIOS)          # one command per scenario
    assert all(c == f"rescue fix {c.split()[2]} {disk}" for c in mine)

    before = sha(disk)
    backups = []
    for name in SCENARIOS:
        res, n = run_cli(cli, monkeypatch, tmp_path, "fix", name, str(disk), "--dry-run", "--json")
        assert (res.code, n) == (0, 1), res.err
        assert json.loads(res.out)["plan"]["steps"] and sha(disk) == before      # nothing written
        res, n = run_cli(cli, monkeypatch, tmp_path, "fix", name, str(disk), "--yes", "--json")
        assert (res.code, n) == (0, 1), res.err
        report = json.loads(res.out)
        after = {f["id"]: f["status"] for f in report["after"]["findings"]}
        assert all(after[i] == "ok" for i in EXPECTED[name]), after
        backups.append(report["backup"])
        before = sha(disk)

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "driver", str(disk), "--yes", "--json")
    assert (res.code, n) == (0, 1), res.err
    report = json.loads(res.out)
    after = {f["id"]: f for f in report["after"]["findings"]}
    assert after["service-image-missing"]["status"] == "ok", after["service-image-missing"]
    assert "ContosoUpdate" in after["service-image-missing"]["evidence"]      # listed, not boot-stopping
    backups.append(report["backup"])

    fixed = tmp_path / "fixed" / disk.name
    fixed.parent.mkdir()
    shutil.copyfile(disk, fixed)
    for _ in (*SCENARIOS, "driver"):            # each undo steps back one run, newest first
        res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
        assert (res.code, n) == (0, 1), res.err

    g, (orig, repaired, undone) = open_volumes([(pristine, "vpc"), (fixed, "vpc"), (disk, "vpc")], tmp_path)
    try:
        check_repaired(repaired)
        assert set(backups) <= set(repaired.listdir("/rescue-backup"))
        for path in (*(f"/Windows/System32/config/{h}" for h in HIVES), PENDING, CS_FILE,
                     *(f"{TXR}/{n}" for n in orig.listdir(TXR))):
            assert undone.sha(path) == orig.sha(path), path                # byte-identical after undo
        assert not undone.exists(PENDING + ".old")
        assert len(orig.listdir(TXR)) == 5
    finally:
        g.close()


def test_files_delete_dry_run_delete_undo(sample_disk, cli, monkeypatch, tmp_path):
    pristine = sample_disk("gen1-system-broken.vhdx", dest=tmp_path / "pristine")
    disk = sample_disk("gen1-system-broken.vhdx")
    pattern = "Windows\\System32\\drivers\\CrowdStrike\\C-0000029?-*.sys"
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "files", "delete", str(disk), pattern, "--dry-run", "--json")
    assert (res.code, n) == (0, 1), res.err
    [step] = json.loads(res.out)["plan"]["steps"]
    assert [(c["file"]["path"], c["backup"]) for c in step["changes"]] == [
        ("\\Windows\\System32\\drivers\\CrowdStrike\\C-00000290-00000000-00000014.sys", True),
        ("\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291-00000000-00000032.sys", True)]
    assert "last written 2024-07-19 04:09:14 UTC" in step["notes"][1]
    assert sha(disk) == before

    res, n = run_cli(cli, monkeypatch, tmp_path, "files", "delete", str(disk), pattern, "--yes", "--json")
    assert (res.code, n) == (0, 1), res.err
    assert json.loads(res.out)["result"]["applied"] is True
    deleted = tmp_path / "deleted" / disk.name
    deleted.parent.mkdir()
    shutil.copyfile(disk, deleted)
    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
    assert (res.code, n) == (0, 1), res.err

    g, (orig, gone, undone) = open_volumes([(pristine, "vhdx"), (deleted, "vhdx"), (disk, "vhdx")], tmp_path)
    try:
        assert not gone.exists(CS_FILE) and not gone.exists(CS_OTHER)
        assert gone.exists("/Windows/System32/drivers/CrowdStrike/CSAgent.sys")        # not matched
        for path in (CS_FILE, CS_OTHER):
            assert undone.sha(path) == orig.sha(path)
    finally:
        g.close()


def test_healthy_disk_triage_and_a_pattern_matching_nothing(sample_disk, cli, monkeypatch, tmp_path):
    disk = sample_disk("gen2-healthy.vhd")
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
    assert n == 1
    diag = json.loads(res.out)
    mine = [f for f in diag["findings"] if f["scenario"] in SCENARIOS]
    assert {f["id"] for f in mine} >= set().union(*EXPECTED.values())
    assert all(f["status"] == "ok" for f in mine), [f for f in mine if f["status"] != "ok"]
    assert (res.code, diag["healthy"]) == (0, True), [f for f in diag["findings"] if f["status"] == "found"]
    # A healthy volume holds every automatic-start service's file (svchost.exe for TermService, Dhcp).
    services = next(f for f in diag["findings"] if f["id"] == "service-image-missing")
    assert "automatic-start services and drivers exist" in services["evidence"], services["evidence"]
    assert "missing" not in services["evidence"]

    res, n = run_cli(cli, monkeypatch, tmp_path, "files", "delete", str(disk),
                     "Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys", "--yes")
    assert (res.code, n) == (7, 1)
    assert "No file matches \\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys" in res.err
    assert "Traceback" not in res.err and sha(disk) == before


def test_bad_file_scenario_triage_fix_and_undo(sample_disk, cli, monkeypatch, tmp_path):
    """`fix bad-file --pattern`: the triage with the pattern finds the files and prints the command
    carrying it; the dry run changes nothing; the fix deletes them (kept); undo puts them back."""
    pristine = sample_disk("gen2-system-broken.vhd", dest=tmp_path / "pristine")
    disk = sample_disk("gen2-system-broken.vhd")
    pattern = "Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys"
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--scenario", "bad-file",
                     "--pattern", pattern, "--json")
    assert (res.code, n) == (1, 1), res.err
    doc = json.loads(res.out)
    [finding] = [f for f in doc["findings"] if f["id"] == "bad-file-present"]
    assert finding["status"] == "found" and "C-00000291-00000000-00000032.sys 41,000 bytes" in finding["evidence"]
    assert doc["fix_commands"] == [f"rescue fix bad-file {disk} --pattern '{pattern}'"]
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "bad-file", str(disk), "--pattern", pattern, "--dry-run",
                     "--json")
    assert (res.code, n, sha(disk)) == (0, 1, before), res.err
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "bad-file", str(disk), "--pattern", pattern, "--yes",
                     "--json")
    assert (res.code, n) == (0, 1), res.err
    report = json.loads(res.out)
    assert report["after"]["healthy"] and report["backup"]
    deleted = tmp_path / "deleted" / disk.name
    deleted.parent.mkdir()
    shutil.copyfile(disk, deleted)
    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
    assert (res.code, n) == (0, 1), res.err
    g, (orig, gone, undone) = open_volumes([(pristine, "vpc"), (deleted, "vpc"), (disk, "vpc")], tmp_path)
    try:
        assert not gone.exists(CS_FILE) and gone.exists("/Windows/System32/drivers/CrowdStrike/CSAgent.sys")
        assert undone.sha(CS_FILE) == orig.sha(CS_FILE)
    finally:
        g.close()


def test_services_list_automatic_on_a_disk_finds_the_missing_service_files(sample_disk, cli, monkeypatch, tmp_path):
    """`rescue services list --automatic` through the appliance: presence read from the Windows
    volume itself (the agent's folder is there, its .exe is not), one read-only launch, no write."""
    disk = sample_disk("gen2-system-broken.vhd")
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "services", "list", str(disk), "--automatic", "--json")
    assert (res.code, n) == (0, 1), res.err
    doc = json.loads(res.out)
    assert doc["automatic"] is True and doc["control_set"].startswith("ControlSet001")
    by_name = {d["name"]: d for d in doc["drivers"]}
    agent = by_name["ContosoAgent"]
    assert (agent["start_type"], agent["file_present"], agent["missing_files"]) == \
        ("automatic", False, ["\\Program Files\\Contoso\\Agent\\ContosoAgent.exe"])
    update = by_name["ContosoUpdate"]
    assert update["file_present"] is False and update["image"]["candidates"] == [
        "\\Program.exe", "\\Program Files\\Contoso\\Update\\ContosoUpdate.exe"]
    # Windows' own services are left out without --all.
    assert "Dhcp" not in by_name
    assert sha(disk) == before
