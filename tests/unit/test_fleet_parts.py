"""Fleet mode's parts that need no appliance: VM lists, shares, exit codes, the per-VM view of a
session, and the command line's refusals."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rescue.disk.records import DiskInfo, Partition
from rescue.disk.view import SessionView
from rescue.errors import UsageError
from rescue.fleet import Outcome, VmDisks, VmReport, fleet_exit_code, shares, vm_groups


def test_each_disk_is_a_vm_and_a_manifest_line_is_a_vm(tmp_path):
    assert vm_groups(["a.vhd", "b.vhd"]) == [VmDisks(("a.vhd",)), VmDisks(("b.vhd",))]
    m = tmp_path / "vms"
    m.write_text("# fleet\nos1.vhd data1.vhd\n\n'os 2.vhd'  # the second VM\n")
    assert vm_groups([], str(m)) == [VmDisks(("os1.vhd", "data1.vhd")), VmDisks(("os 2.vhd",))]


@pytest.mark.parametrize("disks, text, needle", [
    (["a.vhd", "a.vhd"], None, "listed twice"),
    ([], "a.vhd\nb.vhd a.vhd\n", "listed twice"),
    (["x.vhd"], "a.vhd\n", "not both"),
    ([], "# nothing\n", "at least one disk"),
    ([], "'unclosed\n", "line 1"),
])
def test_bad_vm_lists_are_usage_errors(tmp_path, disks, text, needle):
    m = None
    if text is not None:
        m = tmp_path / "vms"
        m.write_text(text)
    with pytest.raises(UsageError, match=needle):
        vm_groups(disks, str(m) if m else None)


def test_shares_are_round_robin_and_never_empty():
    vms = [VmDisks((f"{i}.vhd",)) for i in range(5)]
    assert [[v.name for v in s] for s in shares(vms, 2)] == [["0.vhd", "2.vhd", "4.vhd"], ["1.vhd", "3.vhd"]]
    assert len(shares(vms[:1], 4)) == 1


def _r(status, code):
    return VmReport(VmDisks(("x",)), status, code, 0.0)


def test_fleet_exit_code_is_zero_only_when_every_vm_ended_well():
    assert fleet_exit_code([_r(Outcome.FIXED, 0), _r(Outcome.HEALTHY, 0), _r(Outcome.NOTHING_TO_DO, 0)]) == 0
    assert fleet_exit_code([_r(Outcome.FIXED, 0), _r(Outcome.FOUND, 1)]) == 1
    assert fleet_exit_code([_r(Outcome.REFUSED, 5), _r(Outcome.FOUND, 1), _r(Outcome.REFUSED, 4)]) == 5


@dataclass
class _Img:
    path: str


class _Session:
    """A session's disk records as an appliance would give them (three disks)."""

    def __init__(self):
        self.images = [_Img("vm1.vhd"), _Img("vm2-os.vhd"), _Img("vm2-data.vhd")]
        self.calls = []

    def disks(self):
        out = []
        for i, img in enumerate(self.images):
            dev = "/dev/sd" + "abc"[i]
            out.append(DiskInfo(i, img, dev, 1 << 30, "gpt", None, None,
                                (Partition(i, 1, dev + "1", 1 << 20, 1 << 29),)))
        return out

    def read_disk_bytes(self, disk, size, offset):
        self.calls.append(("read_disk_bytes", disk))
        return b""

    def mount(self, part, write=False):
        return "/" + part.key


def test_a_vm_sees_its_own_disks_numbered_from_zero():
    s = _Session()
    view = SessionView(s, [1, 2])
    assert [i.path for i in view.images] == ["vm2-os.vhd", "vm2-data.vhd"]
    assert [(d.index, d.device) for d in view.disks()] == [(0, "/dev/sdb"), (1, "/dev/sdc")]
    p = view.partition(1, 1)
    assert (p.disk, p.device) == (1, "/dev/sdc1")
    assert view.describe(p) == "vm2-data.vhd partition 1"
    view.read_disk_bytes(0, 512, 0)
    assert s.calls == [("read_disk_bytes", 1)]                     # mapped to the session's disk 1
    # Mount points come from the device, so two VMs' "disk 0 partition 1" never share one.
    assert view.mount(view.partition(0, 1)) != SessionView(s, [0]).mount(SessionView(s, [0]).partition(0, 1))


def test_fleet_refusals_on_the_command_line(cli, tmp_path):
    m = tmp_path / "vms.txt"
    m.write_text("a.vhd\na.vhd b.vhd\n")
    r = cli("diagnose", "--manifest", m)
    assert r.code == 2 and "listed twice" in r.err and "Traceback" not in r.err
    r = cli("fix", "no-memory", "--each", "x.vhd", "--expand", "4G", "--yes")
    assert r.code == 2 and "--expand" in r.err
    r = cli("fix", "no-memory", "--each", "x.vhd", "y.vhd", "--jobs", "2")
    assert r.code == 2 and "--yes" in r.err
    r = cli("undo", "--each", "x.vhd", "y.vhd")
    assert r.code == 2 and "--yes" in r.err
    r = cli("undo", "x.vhd", "y.vhd")
    assert r.code == 2 and "--each" in r.err


def test_missing_disks_are_reported_per_vm_without_a_launch(cli, tmp_path):
    import json

    r = cli("diagnose", "--each", tmp_path / "gone1.vhd", tmp_path / "gone2.vhd", "--json")
    docs = [json.loads(x) for x in r.out.splitlines()]
    assert [(d["status"], d["exit_code"]) for d in docs] == [("refused", 3), ("refused", 3)]
    assert r.code == 3 and "does not exist" in docs[0]["error"]
    import readme_contract as R

    assert R.check_keys(R.json_keys("Fleet `--json` lines (one per VM):"), docs) == []


def test_undo_each_hands_the_ntfs_flags_to_every_vm(cli, tmp_path, monkeypatch):
    """`undo --each --reset-ntfs-log --discard-hibernation` must reach each VM's engine (local run)
    and each child process (--jobs N), as `fix --each` does: otherwise an unclean volume is refused
    in fleet mode although the flag was given. Mocked at the CLI edge: the fleet runner."""
    import rescue.cli.fleet_cmd as fleet_cmd
    import rescue.fleet as fleet_mod

    seen = {}

    def fake_run_fleet(command, a, *, write, title, child_argv, local):
        seen["argv"] = child_argv("vms.txt")
        seen["local"] = local
        return 0

    def fake_undo_each(fleet, **kw):
        seen["undo_each"] = kw
        return iter(())

    monkeypatch.setattr(fleet_cmd, "run_fleet", fake_run_fleet)
    monkeypatch.setattr(fleet_mod, "undo_each", fake_undo_each)
    r = cli("undo", "--each", tmp_path / "a.vhd", tmp_path / "b.vhd", "--yes", "--reset-ntfs-log",
            "--discard-hibernation")
    assert r.code == 0, r.err
    assert "--reset-ntfs-log" in seen["argv"] and "--discard-hibernation" in seen["argv"]
    seen["local"](None, None)
    assert seen["undo_each"]["reset_ntfs_log"] is True and seen["undo_each"]["discard_hibernation"] is True
