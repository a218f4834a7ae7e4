"""Fleet mode end to end: ten VMs (Gen1/Gen2, VHD/VHDX/qcow2, one with a data disk, healthy ones,
BitLocker, no Windows, hibernated, two Windows) triaged, fixed and undone, ONE appliance launch per
command; each VM's result its own; refused disks left byte for byte; undo byte-exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import readme_contract as R

from test_fix import DiskFiles, check_article_outcome, layout_of, open_three, run_cli, sha

pytestmark = pytest.mark.appliance

# (name, extra data disk or None, triage status, triage exit, fix status, fix exit)
VMS = [
    ("gen2-broken.vhd", None, "found", 1, "fixed", 0),
    ("gen1-broken.vhdx", None, "found", 1, "fixed", 0),
    ("gen2-broken.qcow2", "data-disk.vhd", "found", 1, "fixed", 0),
    ("gen1-broken.vhd", None, "found", 1, "fixed", 0),
    ("gen2-healthy.qcow2", None, "healthy", 0, "nothing-to-do", 0),
    ("gen1-healthy.vhdx", None, "healthy", 0, "nothing-to-do", 0),
    ("bitlocker.vhd", None, "refused", 5, "refused", 5),
    ("no-windows.vhd", None, "refused", 4, "refused", 4),
    ("hibernated.vhd", None, "found", 1, "refused", 5),
    ("two-windows.vhd", None, "refused", 4, "refused", 4),
]
FIXED = [v for v in VMS if v[4] == "fixed"]
UNTOUCHED = [v for v in VMS if v[4] in ("refused", "nothing-to-do")]


def _lines(out: str) -> list[dict]:
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def test_triage_fix_and_undo_of_ten_vms(sample_disk, cli, monkeypatch, tmp_path):
    pristine = {}
    disks = {}
    lines = []
    for name, data, *_ in VMS:
        disks[name] = sample_disk(name)
        pristine[name] = sample_disk(name, dest=tmp_path / "pristine")
        line = [str(disks[name])]
        if data:
            line.append(str(sample_disk(data)))
        lines.append(" ".join(line))
    manifest = tmp_path / "vms.txt"
    manifest.write_text("# OS disk, then its data disks\n" + "\n".join(lines) + "\n")
    before = {name: sha(p) for name, p in disks.items()}

    # --- triage: one launch, one JSON line per VM, exit = the highest VM's code --------------------
    res, launches = run_cli(cli, monkeypatch, tmp_path, "diagnose", "--manifest", manifest, "--json", "--jobs", "1")
    assert launches == 1, res.err
    docs = _lines(res.out)
    assert [d["disk"] for d in docs] == [str(disks[v[0]]) for v in VMS]
    for (name, data, status, code, *_), d in zip(VMS, docs):
        assert (d["status"], d["exit_code"]) == (status, code), (name, d)
        assert R.check_keys(R.json_keys("Fleet `--json` lines (one per VM):"), d) == []   # README's contract
    assert docs[2]["disks"] == [str(disks["gen2-broken.qcow2"]), lines[2].split()[1]]
    assert "rescue fix no-memory" in docs[0]["fix_commands"][0]
    assert res.code == 5
    assert {name: sha(p) for name, p in disks.items()} == before            # looking never writes

    # --- fix: one launch; refusals stop nothing else and change no byte ----------------------------
    res, launches = run_cli(cli, monkeypatch, tmp_path, "fix", "no-memory", "--manifest", manifest,
                            "--yes", "--json", "--jobs", "1")
    assert launches == 1, res.err
    docs = {d["disk"]: d for d in _lines(res.out)}
    for name, _data, _s, _c, status, code in VMS:
        d = docs[str(disks[name])]
        assert (d["status"], d["exit_code"]) == (status, code), (name, d)
        if status == "fixed":
            assert d["backup_id"] and d["result"]["applied"]
            assert {f["id"] for f in d["findings"] if f["status"] == "found"} <= {"space-low", "space-cleanup",
                                                                                 "space-expand",
                                                                                 "space-fragmentation",
                                                                                 "dump-volume-too-small"}
    assert res.code == 5
    for name, *_ in UNTOUCHED:
        assert sha(disks[name]) == before[name], name

    # --- undo --each on the fixed VMs: one launch ----------------------------------------------------
    fixed_disks = [str(disks[v[0]]) for v in FIXED]
    snapshots = {}
    for name, *_ in FIXED:
        snapshots[name] = tmp_path / "fixed" / name
        snapshots[name].parent.mkdir(exist_ok=True)
        snapshots[name].write_bytes(disks[name].read_bytes())
    res, launches = run_cli(cli, monkeypatch, tmp_path, "undo", "--each", *fixed_disks, "--yes", "--json",
                            "--jobs", "1")
    assert launches == 1 and res.code == 0, res.err
    assert [d["status"] for d in _lines(res.out)] == ["undone"] * len(FIXED)

    # --- read back in one session: fixed snapshots hold the article's outcome, undone = pristine ----
    order = [p for name, *_ in FIXED for p in (pristine[name], snapshots[name], disks[name])]
    with open_three(*order) as s:
        for i, (name, *_) in enumerate(FIXED):
            orig, fixed, undone = (DiskFiles(s, 3 * i + k, tmp_path) for k in range(3))
            check_article_outcome(fixed, name)
            win, sysp, bcd_path = layout_of(name)
            for part, path in ((win, "\\Windows\\System32\\config\\SYSTEM"), (sysp, bcd_path)):
                assert sha(orig.fetch(part, path)) == sha(undone.fetch(part, path)), (name, path)
