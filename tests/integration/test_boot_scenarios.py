"""`rescue fix boot-config | safe-mode | boot-menu | repair-loop` end to end on the broken samples,
Gen1 and Gen2, and the result read back with python-hivex (not rescue's BCD decoder) and compared
with what bcdedit would hold: element codes, registry types and device bytes built from the
samples' identities by rescue.samples.hives (an encoder of its own).

Launch budget (TCG): every command is one launch; each test reads every image it made (pristine,
fixed, undone) back in ONE read-only session at its end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest

from rescue import samples
from rescue.bcd import constants as C
from rescue.disk.formats import detect
from rescue.disk.session import DiskSession
from rescue.samples.bcd_store import LOADER_GUID
from rescue.samples.disks import DELETED_LOADER_GUID
from rescue.target import win_to_posix

pytestmark = pytest.mark.appliance

REG_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 3, 4, 7
BCD_PATH = {"gen2": (1, "\\EFI\\Microsoft\\Boot\\BCD"), "gen1": (1, "\\Boot\\BCD")}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(cli, monkeypatch, tmp_path, *args):
    """(result, appliance launches it made)."""
    log = tmp_path / f"launches-{len(list(tmp_path.glob('launches-*')))}.log"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    result = cli(*args)
    return result, (len(log.read_text().splitlines()) if log.exists() else 0)


def snapshot(disk: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(disk, dest)
    return dest


def fetch_bcds(images: list, gen: str, workdir: Path) -> list:
    """The BCD file of each image, downloaded in one read-only session."""
    part, path = BCD_PATH[gen]
    out = []
    with DiskSession([detect(str(p)) for p in images], write=False) as s:
        parts = {(p.disk, p.number): p for p in s.partitions()}
        for i in range(len(images)):
            mp = s.mount(parts[(i, part)], write=False)
            local = workdir / f"bcd-{i}"
            s.download(s.resolve(mp + win_to_posix(path)), local)
            out.append(local)
    return out


class RawBcd:
    """Elements read with python-hivex: (registry type, bytes) as stored, nothing decoded."""

    def __init__(self, path: Path):
        import hivex

        self.h = hivex.Hivex(str(path))

    def _child(self, node, name: str):
        for c in self.h.node_children(node):
            if self.h.node_name(c).lower() == name.lower():
                return c
        return None

    def node(self, *names: str):
        node = self.h.root()
        for n in names:
            node = self._child(node, n) if node is not None else None
        return node

    def element(self, guid: str, code: int):
        node = self.node("Objects", guid, "Elements", f"{code:08x}")
        if node is None:
            return None
        for v in self.h.node_values(node):
            if self.h.value_key(v) == "Element":
                return self.h.value_value(v)
        return None

    def type_of(self, guid: str):
        node = self.node("Objects", guid, "Description")
        for v in self.h.node_values(node) if node is not None else ():
            if self.h.value_key(v) == "Type":
                return self.h.value_value(v)
        return None


def sz(text: str) -> bytes:
    return (text + "\x00").encode("utf-16-le")


def multi_sz(items: list) -> bytes:
    return "".join(i + "\x00" for i in items).encode("utf-16-le") + b"\x00\x00"


def q(n: int) -> bytes:
    return struct.pack("<Q", n)


def findings(report: dict, key: str = "before") -> dict:
    diag = report[key] if key else report
    return {f["id"]: f for f in diag["findings"]}


# --- boot-config -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gen", ["gen2", "gen1"])
def test_boot_config(gen, sample_disk, cli, monkeypatch, tmp_path):
    ids = samples.identity(f"{gen}-boot-config")
    disk = sample_disk(f"{gen}-boot-config.vhd")
    nobm = sample_disk(f"{gen}-no-bootmgr.vhd")
    nobm_ids = samples.identity(f"{gen}-no-bootmgr")
    pristine = snapshot(disk, tmp_path / "pristine" / disk.name)

    # The triage finds both faults, with the evidence, and names the fix; the other BCD scenarios are fine.
    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
    assert n == 1 and res.code != 0, res.err
    report = json.loads(res.out)
    f = findings(report, "")
    assert f["boot-config-loader-device"]["status"] == "found"
    assert "[not on the attached disks]" in f["boot-config-loader-device"]["evidence"]
    assert f["boot-config-loader-device"]["evidence"].endswith("; Windows is on C:")
    assert f["boot-config-default"]["status"] == "found"
    assert f"default names {DELETED_LOADER_GUID}, which does not exist" in f["boot-config-default"]["evidence"]
    for ok in ("boot-config-store", "boot-config-bootmgr", "boot-config-loader-path", "boot-menu-wait"):
        assert f[ok]["status"] == "ok", f[ok]
    for unknown in ("safe-mode", "repair-loop"):        # no default loader to look at, and they say why
        assert f[unknown]["status"] == "unknown", f[unknown]
        assert f[unknown]["evidence"] == (f"No default loader to check: {{bootmgr}} default names {DELETED_LOADER_GUID}, "
                                          "which is not a Windows Boot Loader of the store (boot-config repairs that).")
    assert f"rescue fix boot-config {disk}" in report["fix_commands"]

    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "0xC000000E", str(disk), "--dry-run", "--json")
    assert res.code == 0 and n == 1, res.err
    assert sha(disk) == before                                   # --dry-run changes nothing
    steps = {s["action"] for s in json.loads(res.out)["plan"]["steps"] if s["changes"]}
    assert steps == {"bcd.default", "bcd.loader-device"}         # only what is wrong

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "boot-config", str(disk), "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    out = json.loads(res.out)
    assert out["after"]["healthy"] is True, out["after"]
    fixed = snapshot(disk, tmp_path / "fixed" / disk.name)
    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
    assert res.code == 0 and n == 1, res.err

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "boot-config", str(nobm), "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    out = json.loads(res.out)
    bm = findings(out)["boot-config-bootmgr"]
    assert bm["status"] == "found" and bm["evidence"].startswith("the store has no {bootmgr} object")
    assert out["after"]["healthy"] is True, out["after"]

    orig_bcd, fixed_bcd, undone_bcd, nobm_bcd = fetch_bcds([pristine, fixed, disk, nobm], gen, tmp_path)
    assert sha(undone_bcd) == sha(orig_bcd)                      # undo is byte-exact
    raw = RawBcd(fixed_bcd)
    # bcdedit /set {default} device partition=C: and osdevice partition=C:: the 88-byte partition device.
    assert raw.element(LOADER_GUID, C.DEVICE) == (REG_BINARY, ids.os_device())
    assert raw.element(LOADER_GUID, C.OSDEVICE) == (REG_BINARY, ids.os_device())
    assert raw.element(C.GUID_BOOTMGR, C.BOOTMGR_DEFAULT) == (REG_SZ, sz(LOADER_GUID))
    assert raw.element(C.GUID_BOOTMGR, C.DISPLAYORDER) == (REG_MULTI_SZ, multi_sz([LOADER_GUID]))
    before_raw = RawBcd(orig_bcd)
    for code in (C.PATH, C.SYSTEMROOT, C.DESCRIPTION, 0x1500004B, 0x250000E0, C.OSLOADER_EMS):
        assert raw.element(LOADER_GUID, code) == before_raw.element(LOADER_GUID, code), hex(code)   # untouched

    # {bootmgr} recreated as bcdboot writes it.
    raw = RawBcd(nobm_bcd)
    assert raw.type_of(C.GUID_BOOTMGR) == (REG_DWORD, struct.pack("<I", C.TYPE_BOOTMGR))
    assert raw.element(C.GUID_BOOTMGR, C.DEVICE) == (REG_BINARY, nobm_ids.system_device())
    assert raw.element(C.GUID_BOOTMGR, C.PATH) == (
        (REG_SZ, sz("\\EFI\\Microsoft\\Boot\\bootmgfw.efi")) if gen == "gen2" else None)
    assert raw.element(C.GUID_BOOTMGR, C.BOOTMGR_DEFAULT) == (REG_SZ, sz(LOADER_GUID))
    assert raw.element(C.GUID_BOOTMGR, C.DISPLAYORDER) == (REG_MULTI_SZ, multi_sz([LOADER_GUID]))
    assert raw.element(C.GUID_BOOTMGR, C.INHERIT) == (REG_MULTI_SZ, multi_sz([C.GUID_GLOBALSETTINGS]))
    assert raw.element(C.GUID_BOOTMGR, C.TIMEOUT) == (REG_BINARY, q(30))


# --- safe-mode, boot-menu, repair-loop --------------------------------------------------------------
@pytest.mark.parametrize("gen", ["gen2", "gen1"])
def test_boot_options(gen, sample_disk, cli, monkeypatch, tmp_path):
    disk = sample_disk(f"{gen}-boot-options.vhd")
    pristine = snapshot(disk, tmp_path / "pristine" / disk.name)

    res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
    assert n == 1 and res.code != 0, res.err
    report = json.loads(res.out)
    f = findings(report, "")
    assert f["safe-mode"]["evidence"] == (
        "{default} (Windows Server): safeboot Network, safebootalternateshell Yes: Windows starts in Safe Mode "
        "with Networking (Command Prompt as the shell), where Remote Desktop and the Azure guest agent do not run")
    assert f["boot-menu-wait"]["evidence"] == (
        "{bootmgr}: displaybootmenu Yes, no timeout: the boot manager waits at its menu for a key, which nobody "
        "presses on a VM")
    assert f["repair-loop"]["evidence"].startswith(
        "{default} (Windows Server): bootstatuspolicy not set, recoveryenabled Yes: after a failed boot")
    assert all(f[i]["status"] == "found" for i in ("safe-mode", "boot-menu-wait", "repair-loop"))
    assert all(v["status"] == "ok" for k, v in f.items() if k.startswith("boot-config-")), f
    cmds = report["fix_commands"]
    assert {f"rescue fix {s} {disk}" for s in ("safe-mode", "boot-menu", "repair-loop")} <= set(cmds)

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "safe-mode", str(disk), "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    first_backup = json.loads(res.out)["backup"]
    after = findings(json.loads(res.out), "after")
    assert after["safe-mode"]["status"] == "ok"

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "boot-menu", str(disk), "--timeout", "7", "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    assert findings(json.loads(res.out), "after")["boot-menu-wait"]["status"] == "ok"

    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "repair-loop", str(disk), "--dry-run")
    assert res.code == 0 and n == 1 and sha(disk) == before, res.err
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "repair-loop", str(disk), "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    assert json.loads(res.out)["after"]["healthy"] is True
    fixed = snapshot(disk, tmp_path / "fixed" / disk.name)

    # Back to the state before the first fix in one step: that run's backup holds the original store.
    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--backup", first_backup, "--yes")
    assert res.code == 0 and n == 1, res.err

    orig_bcd, fixed_bcd, undone_bcd = fetch_bcds([pristine, fixed, disk], gen, tmp_path)
    assert sha(undone_bcd) == sha(orig_bcd)
    raw, old = RawBcd(fixed_bcd), RawBcd(orig_bcd)
    assert old.element(LOADER_GUID, 0x25000080) == (REG_BINARY, q(1))          # the sample really had them
    assert old.element(C.GUID_BOOTMGR, 0x26000020) == (REG_BINARY, b"\x01")
    assert raw.node("Objects", LOADER_GUID, "Elements", "25000080") is None     # deletevalue safeboot
    assert raw.node("Objects", LOADER_GUID, "Elements", "26000081") is None     # ... safebootalternateshell
    assert raw.node("Objects", C.GUID_BOOTMGR, "Elements", "26000020") is None  # ... displaybootmenu
    assert raw.element(C.GUID_BOOTMGR, C.TIMEOUT) == (REG_BINARY, q(7))         # /timeout 7
    assert raw.element(LOADER_GUID, 0x250000E0) == (REG_BINARY, q(1))           # IgnoreAllFailures
    assert raw.element(LOADER_GUID, 0x16000009) == (REG_BINARY, b"\x00")        # recoveryenabled No
    assert raw.element(LOADER_GUID, C.DEVICE) == old.element(LOADER_GUID, C.DEVICE)


def test_healthy_samples_have_nothing_to_do(sample_disk, cli, monkeypatch, tmp_path):
    """The Azure-prepared healthy samples (displaybootmenu Yes with timeout 5, IgnoreAllFailures,
    recoveryenabled No) stay healthy in the triage, and a fix has nothing to write."""
    for name in ("gen2-healthy.vhd", "gen1-healthy.vhd"):
        disk = sample_disk(name)
        res, n = run_cli(cli, monkeypatch, tmp_path, "diagnose", str(disk), "--json")
        assert n == 1 and res.code == 0, res.out + res.err
        f = findings(json.loads(res.out), "")
        ours = [k for k in f if k.startswith("boot-config-") or k in ("safe-mode", "boot-menu-wait", "repair-loop")]
        assert len(ours) == 10 and all(f[k]["status"] == "ok" for k in ours), {k: f[k] for k in ours}
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "boot-config", str(disk), "--yes", "--json")
    assert res.code == 0 and n == 1, res.err
    assert json.loads(res.out)["result"]["nothing_to_do"] is True and sha(disk) == before
