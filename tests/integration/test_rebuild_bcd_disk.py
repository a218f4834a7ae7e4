"""`rescue fix rebuild-bcd` end to end on disks whose store is missing or corrupt (Gen1 and Gen2),
checked in the images' own files with python-hivex (not rescue's BCD decoder), and the Gen1
active flag checked in the raw image's sector 0 on the host (struct, not rescue's MBR code).

Launch budget per broken sample: dry run, fix (its JSON carries the diagnosis before and after),
undo, and one read-only session that reads the pristine, fixed and undone images together; the
SIGKILL test adds a kill and an undo for each of the two MBR fault points.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import hivex
import pytest

from rescue import samples
from rescue.bcd import constants as C
from test_fix import DiskFiles, open_three, run_cli

pytestmark = pytest.mark.appliance

STORE = {"gen2": "\\EFI\\Microsoft\\Boot\\BCD", "gen1": "\\Boot\\BCD"}
# What bcdboot copies from the sample's \Windows\Boot stand-ins, and where it lands.
COPIED = {"gen2": (("\\Windows\\Boot\\EFI\\en-US\\bootmgfw.efi.mui", "\\EFI\\Microsoft\\Boot\\en-US\\bootmgfw.efi.mui"),
                   ("\\Windows\\Boot\\Fonts\\segmono_boot.ttf", "\\EFI\\Microsoft\\Boot\\Fonts\\segmono_boot.ttf")),
          "gen1": (("\\Windows\\Boot\\PCAT\\en-US\\bootmgr.exe.mui", "\\Boot\\en-US\\bootmgr.exe.mui"),
                   ("\\Windows\\Boot\\Fonts\\segmono_boot.ttf", "\\Boot\\Fonts\\segmono_boot.ttf"))}
SAME = {"gen2": (("\\Windows\\Boot\\EFI\\bootmgfw.efi", "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"),
                 ("\\Windows\\Boot\\EFI\\bootmgfw.efi", "\\EFI\\Boot\\bootx64.efi")),
        "gen1": (("\\Windows\\Boot\\PCAT\\bootmgr", "\\bootmgr"),)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sector0(image: Path) -> bytes:
    with open(image, "rb") as fh:
        return fh.read(512)


def boot_flags(sector: bytes) -> list[int]:
    """The four MBR entries' status bytes, read with struct (UEFI spec 2.10 §5.2.1: entries of 16
    bytes at 446, BootIndicator first), independently of rescue's MBR code."""
    assert sector[510:512] == b"\x55\xaa"
    return [struct.unpack_from("<B3sB3sII", sector, 446 + 16 * i)[0] for i in range(4)]


def differing(a: bytes, b: bytes) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a, b)) if x != y]


def hive_objects(path: Path) -> dict:
    """{guid: (type, {code: (reg type, bytes)})} read with python-hivex."""
    h = hivex.Hivex(str(path))
    out = {}
    for node in h.node_children(h.node_get_child(h.root(), "Objects")):
        desc = h.node_get_child(node, "Description")
        type_ = struct.unpack("<I", h.value_value(h.node_get_value(desc, "Type"))[1][:4])[0]
        els = h.node_get_child(node, "Elements")
        out[h.node_name(node).lower()] = (type_, {
            int(h.node_name(e), 16): h.value_value(h.node_get_value(e, "Element")) for e in h.node_children(els)})
    return out


def sz(text: str) -> tuple[int, bytes]:
    return 1, (text + "\0").encode("utf-16le")


def check_rebuilt_store(path: Path, base: str) -> None:
    """The store holds what bcdboot writes for this disk: element codes, types and device bytes."""
    gen = samples.options(base).generation
    ids = samples.identity(base)                     # the devices the sample's own hives name
    objects = hive_objects(path)
    bootmgr_type, bootmgr = objects[C.GUID_BOOTMGR]
    assert bootmgr_type == C.TYPE_BOOTMGR
    assert bootmgr[C.DEVICE] == (3, ids.system_device())
    loader = bootmgr[C.BOOTMGR_DEFAULT][1].decode("utf-16le").rstrip("\0")
    resume = bootmgr[0x23000006][1].decode("utf-16le").rstrip("\0")
    assert bootmgr[C.DISPLAYORDER] == (7, (loader + "\0\0").encode("utf-16le"))
    assert bootmgr[0x24000010] == (7, (C.GUID_MEMDIAG + "\0\0").encode("utf-16le"))
    assert bootmgr[C.TIMEOUT] == (3, (30).to_bytes(8, "little"))
    assert (C.PATH in bootmgr) == (gen == "gen2")
    ltype, lel = objects[loader]
    ext = "efi" if gen == "gen2" else "exe"
    assert ltype == C.TYPE_OSLOADER
    assert lel[C.DEVICE] == lel[C.OSDEVICE] == (3, ids.os_device())
    assert lel[C.PATH] == sz(f"\\Windows\\system32\\winload.{ext}")
    assert lel[C.SYSTEMROOT] == sz("\\Windows")
    assert lel[C.DESCRIPTION] == sz("Windows Server")
    assert lel[0x23000003] == sz(resume)
    assert lel[C.INHERIT] == (7, (C.GUID_BOOTLOADERSETTINGS + "\0\0").encode("utf-16le"))
    rtype, rel = objects[resume]
    assert rtype == C.TYPE_RESUME
    assert rel[C.DEVICE] == rel[C.OSDEVICE] == (3, ids.os_device())
    assert rel[C.PATH] == sz(f"\\Windows\\system32\\winresume.{ext}")
    assert rel[C.SYSTEMROOT] == sz("\\hiberfil.sys")
    mtype, mel = objects[C.GUID_MEMDIAG]
    assert mtype == C.TYPE_MEMDIAG and mel[C.DEVICE] == (3, ids.system_device())
    assert mel[C.PATH] == sz("\\EFI\\Microsoft\\Boot\\memtest.efi" if gen == "gen2" else "\\boot\\memtest.exe")
    wanted = {C.GUID_BOOTMGR, C.GUID_MEMDIAG, C.GUID_BADMEMORY, C.GUID_EMSSETTINGS, C.GUID_GLOBALSETTINGS,
              C.GUID_BOOTLOADERSETTINGS, C.GUID_DBGSETTINGS, C.GUID_RESUMELOADERSETTINGS, C.GUID_HYPERVISORSETTINGS,
              loader, resume} | ({C.GUID_FWBOOTMGR} if gen == "gen2" else set())
    assert set(objects) == wanted
    assert objects[C.GUID_GLOBALSETTINGS] == (C.TYPE_INHERIT_ANY, {C.INHERIT: (7, "\0".join(
        [C.GUID_DBGSETTINGS, C.GUID_EMSSETTINGS, C.GUID_BADMEMORY, "", ""]).encode("utf-16le"))})


@pytest.mark.parametrize("name,cause", [
    ("gen2-nobcd.vhd", "missing"),
    ("gen2-badbcd.raw", "cannot be read"),
    ("gen1-nobcd.vhdx", "missing"),
    ("gen1-badbcd.raw", "cannot be read"),          # raw: sector 0 is compared on the host
])
def test_rebuild_then_undo(name, cause, sample_disk, cli, monkeypatch, tmp_path):
    base = name.rsplit(".", 1)[0]
    gen = samples.options(base).generation
    win, sysp = (3, 1) if gen == "gen2" else (2, 1)
    pristine = sample_disk(name, dest=tmp_path / "pristine")
    disk = sample_disk(name)
    before = sha(disk)
    raw = name.endswith(".raw")
    mbr_before = sector0(disk) if raw else b""

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "rebuild-bcd", str(disk), "--dry-run", "--json")
    assert res.code == 0, res.err
    assert n == 1 and sha(disk) == before                               # a dry run changes nothing
    plan = json.loads(res.out)["plan"]
    written = [c["file"]["path"] for s in plan["steps"] for c in s["changes"] if c["file"]]
    assert written[0] == STORE[gen]
    mbr_changes = [c for s in plan["steps"] for c in s["changes"] if c["kind"] == "set-active-partition"]
    # gen1-badbcd has no active partition: the plan sets the flag on System Reserved (partition 1).
    assert [(c["disk"], c["partition"], c["changed_offsets"]) for c in mbr_changes] == \
        ([(0, 1, [446])] if base == "gen1-badbcd" else [])
    assert plan["sectors"] == ([{"disk": 0, "disk_path": str(disk), "offset": 0, "size": 512}]
                               if base == "gen1-badbcd" else [])

    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "rebuild-bcd", str(disk), "--yes", "--json")
    assert res.code == 0, res.err
    assert n == 1
    report = json.loads(res.out)
    found = {f["id"]: f for f in report["before"]["findings"]}
    assert found["bcd-store"]["status"] == "found" and found["bcd-store"]["fixable"]
    assert cause in found["bcd-store"]["evidence"] and STORE[gen] in found["bcd-store"]["evidence"]
    assert (found["active-partition"]["status"], found["active-partition"]["fixable"]) == \
        (("found", True) if base == "gen1-badbcd" else ("ok", False))
    after = {f["id"]: f["status"] for f in report["after"]["findings"]}
    assert after == {"bcd-store": "ok", "boot-files": "ok", "active-partition": "ok"}
    if raw:
        mbr_fixed = sector0(disk)
        if base == "gen1-badbcd":
            # Exactly one byte: partition 1's boot indicator, 0x00 -> 0x80; CHS, types, LBAs, the
            # disk signature and the boot code as they were.
            assert boot_flags(mbr_before) == [0, 0, 0, 0]
            assert differing(mbr_before, mbr_fixed) == [446] and boot_flags(mbr_fixed) == [0x80, 0, 0, 0]
            assert [e["role"] for e in report["result"]["sectors"]] == ["mbr"]
        else:
            assert mbr_fixed == mbr_before
    snapshot = tmp_path / "fixed" / name
    snapshot.parent.mkdir()
    shutil.copyfile(disk, snapshot)

    res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes")
    assert res.code == 0, res.err
    assert n == 1
    if raw:
        assert sector0(disk) == mbr_before                                  # sector 0 byte for byte

    with open_three(pristine, snapshot, disk) as s:
        orig, fixed, undone = (DiskFiles(s, i, tmp_path / f"d{i}") for i in range(3))
        for i in range(3):
            (tmp_path / f"d{i}").mkdir()
        store = fixed.fetch(sysp, STORE[gen])
        check_rebuilt_store(store, base)
        for src, dest in COPIED[gen] + SAME[gen]:
            assert sha(fixed.fetch(win, src)) == sha(fixed.fetch(sysp, dest)), dest
        for _src, dest in COPIED[gen]:
            assert not orig.exists(sysp, dest) and not undone.exists(sysp, dest), dest   # undo removed the copies
        if cause == "missing":
            assert not orig.exists(sysp, STORE[gen]) and not undone.exists(sysp, STORE[gen])
        else:
            assert sha(orig.fetch(sysp, STORE[gen])) == sha(undone.fetch(sysp, STORE[gen]))  # byte-identical
        backups = fixed.listdir(win, "\\rescue-backup")
        assert report["backup"] in backups

    # `rescue bcd enum` on the rebuilt store (a BCD file: no appliance) lists what bcdboot creates.
    res = cli("bcd", "enum", str(store), "all", "--json")
    assert res.code == 0, res.err
    listed = {o["alias"] or o["identifier"] for o in json.loads(res.out)}
    assert {"{bootmgr}", "{memdiag}", "{badmemory}", "{emssettings}", "{globalsettings}",
            "{bootloadersettings}"} <= listed


_RUN = "import sys; from rescue.cli.main import run; sys.exit(run(sys.argv[1:]))"


def test_sigkill_at_the_mbr_write_then_undo_restores_sector_0(sample_disk, cli, monkeypatch, tmp_path):
    """A fix killed (SIGKILL, as a crash or power loss) just before and just after it writes the MBR:
    sector 0 is then the old one or the new one, never anything else, and `rescue undo` brings back
    the sector byte for byte (and the store's absence: the files were switched before the MBR)."""
    disk = sample_disk("gen1-badbcd.raw")
    pristine = sector0(disk)
    for point, want in (("before-mbr-write", pristine), ("after-mbr-write", None)):
        proc = subprocess.run([sys.executable, "-c", _RUN, "fix", "rebuild-bcd", str(disk), "--yes"],
                              env={**os.environ, "RESCUE_FAULT": point}, capture_output=True, text=True,
                              timeout=1800)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        killed = sector0(disk)
        if want is not None:
            assert killed == want, point
        else:
            assert differing(pristine, killed) == [446] and boot_flags(killed)[0] == 0x80, point
        res, n = run_cli(cli, monkeypatch, tmp_path, "undo", str(disk), "--yes", "--json")
        assert res.code == 0, (point, res.err)
        assert n == 1
        assert sector0(disk) == pristine, point
        restored = json.loads(res.out)["result"]["restored_sectors"]
        assert len(restored) == (0 if want is not None else 1), point


@pytest.mark.parametrize("name", ["gen2-healthy.vhd", "gen1-healthy.vhd"])
def test_healthy_disk_has_nothing_to_rebuild(name, sample_disk, cli, monkeypatch, tmp_path):
    disk = sample_disk(name)
    before = sha(disk)
    res, n = run_cli(cli, monkeypatch, tmp_path, "fix", "rebuild-bcd", str(disk), "--yes", "--json")
    assert res.code == 0, res.err
    assert n == 1
    report = json.loads(res.out)
    assert report["result"]["nothing_to_do"] is True
    assert {f["id"]: f["status"] for f in report["before"]["findings"]} == {
        "bcd-store": "ok", "boot-files": "ok", "active-partition": "ok"}
    assert sha(disk) == before


def test_inspect_names_the_system_partition_without_a_store(sample_disk, cli, monkeypatch, tmp_path):
    """No store, no active partition: inspect still says where the store belongs (System Reserved)."""
    disk = sample_disk("gen1-badbcd.vhd")
    res, n = run_cli(cli, monkeypatch, tmp_path, "inspect", str(disk), "--json")
    assert n == 1
    doc = json.loads(res.out)
    assert doc["system_partition"] == {"disk": str(disk), "partition": 1, "how": "system-reserved", "active": False}
    vols = {v["partition"]: v["role"] for v in doc["volumes"]}
    assert vols == {1: "system-reserved", 2: "windows"}
