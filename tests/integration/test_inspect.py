"""`rescue inspect` on the sample disks: every format, Gen1/Gen2, data disks, and every bad input.

Launch budget: one launch reads all eight format variants and a CHS-sized VHD; each inspect is one
launch; inputs that are rejected on the host (missing, truncated, not a disk) launch nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from rescue.disk.formats import detect
from rescue.disk.session import DiskSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from image_helpers import set_vhd_current_size  # noqa: E402
import readme_contract as R  # noqa: E402

pytestmark = pytest.mark.appliance


def sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_every_format_reads_the_same_tables(sample_disk, tmp_path):
    names = [f"{g}-broken.{f}" for g in ("gen1", "gen2") for f in ("vhd", "vhdx", "qcow2", "raw")]
    images = [detect(str(sample_disk(n))) for n in names]
    assert [i.format for i in images] == ["vpc", "vhdx", "qcow2", "raw"] * 2
    # A VHD as Virtual PC / older qemu write them (creator "qemu"): qemu sizes it by its CHS
    # geometry, not by the footer's current_size, and rescue must agree with what the guest sees.
    chs = tmp_path / "chs.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic",
                    images[7].path, str(chs)], check=True)
    set_vhd_current_size(chs, 1 << 30)      # the footer now disagrees with the geometry
    images.append(detect(str(chs)))
    with DiskSession(images) as s:                       # one launch, nine disks, read-only
        disks = s.disks()
        # Device names and sizes come from the host (no list_devices / blockdev_getsize64 in the
        # appliance): what the appliance says must match, the CHS-sized VHD included.
        assert [s.disks_device(i) for i in range(len(images))] == list(s.g.list_devices())
        assert [d.size for d in disks] == [s.g.blockdev_getsize64(d.device) for d in disks]
        assert disks[-1].size != 1 << 30                                  # the CHS size, not the footer's
    disks = disks[:-1]
    for i, name in enumerate(names):
        d = disks[i]
        ref = disks[0] if name.startswith("gen1") else disks[4]
        assert d.table == ("mbr" if name.startswith("gen1") else "gpt"), name
        assert [(p.number, p.start, p.size, p.fstype) for p in d.partitions] == \
               [(p.number, p.start, p.size, p.fstype) for p in ref.partitions], name
        assert (d.mbr_signature, d.gpt_guid) == (ref.mbr_signature, ref.gpt_guid)


def test_gen2_with_data_disk(sample_disk, cli):
    os_disk, data = sample_disk("gen2-broken.vhd"), sample_disk("data-disk.vhd")
    before = sha(os_disk), sha(data)
    r = cli("inspect", os_disk, data, "--json")
    assert r.code == 0, r.err
    j = r.json()
    assert R.check_keys(R.json_keys("`rescue inspect --json` keys (stable):"), j) == []   # README's contract
    assert j["generation"] == "gen2"
    assert j["bcd"] == {"path": "\\EFI\\Microsoft\\Boot\\BCD", "disk": str(os_disk), "partition": 1}
    [win] = j["windows"]
    assert (win["disk"], win["partition"], win["control_set"], win["build"]) == (str(os_disk), 3, 1, 17763)
    vols = {(v["disk"], v["partition"]): v for v in j["volumes"]}
    c = vols[(str(os_disk), 3)]
    assert (c["letter"], c["fstype"], c["role"]) == ("C:", "ntfs", "windows")
    assert 0 < c["free_bytes"] < 300 * 10**6            # the article's threshold
    assert vols[(str(os_disk), 1)]["role"] == "esp"
    data_vol = [v for v in j["volumes"] if v["disk"] == str(data) and v["fstype"] == "ntfs"][0]
    assert data_vol["letter"] == "E:"                    # from SYSTEM\MountedDevices (DMIO:ID: GUID)
    assert any("300 MB" in f for f in j["findings"])
    assert j["bcd_summary"]["badmemory_pages"] == 3
    assert "/dev/sd" not in r.out                          # never the appliance's names
    assert (sha(os_disk), sha(data)) == before            # looking never writes


def test_gen1_human_output(sample_disk, cli):
    disk = sample_disk("gen1-broken.vhdx")
    r = cli("inspect", disk)
    assert r.code == 0, r.err
    assert "Gen1 (BIOS, MBR)" in r.out and "\\Boot\\BCD" in r.out and "Windows Server 2016" in r.out
    assert "Traceback" not in r.out + r.err


@pytest.mark.parametrize("names,code,needle", [
    (("no-windows.vhd", "empty.raw"), 4, "No Windows installation"),
    (("two-windows.vhd",), 4, "more than one Windows"),
    (("bitlocker.vhd",), 5, "BitLocker"),
])
def test_refusals_after_launch(names, code, needle, sample_disk, cli):
    disks = [sample_disk(n) for n in names]
    before = [sha(d) for d in disks]
    r = cli("inspect", *disks)
    assert r.code == code, (r.code, r.err)
    assert needle in r.err and "Traceback" not in r.err
    assert len([line for line in r.err.splitlines() if line.startswith("error:")]) == 1
    assert [sha(d) for d in disks] == before


def test_hibernated_is_reported_not_fatal(sample_disk, cli):
    disk = sample_disk("hibernated.vhd")
    before = sha(disk)
    r = cli("inspect", disk, "--json")
    assert r.code == 0, r.err
    states = {v["partition"]: v["state"] for v in r.json()["volumes"]}
    assert states[3] == "hibernated"
    assert any("hibernat" in f.lower() for f in r.json()["findings"])
    assert sha(disk) == before


@pytest.mark.parametrize("make,needle", [
    (lambda sd, tmp: sd("truncated.vhd"), "truncated"),
    (lambda sd, tmp: sd("not-a-disk.vhd"), "not"),
    (lambda sd, tmp: tmp / "missing.vhd", "does not exist"),
])
def test_rejected_on_the_host(make, needle, sample_disk, cli, tmp_path, monkeypatch):
    log = tmp_path / "launches.log"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    path = make(sample_disk, tmp_path)
    r = cli("inspect", path)
    assert r.code == 3, (r.code, r.err)
    assert needle in r.err and "Traceback" not in r.err
    assert not log.exists()                               # no appliance for what the host can reject
