"""Space findings (pure) and the cleanup plan built from a scan (no appliance)."""

from __future__ import annotations

import pytest

from rescue.errors import UsageError
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Diagnosis
from rescue.safety.plan import DeleteFile
from rescue.space import cleanup as C
from rescue.space.findings import space_findings, space_section_data, suggest_size
from rescue.space.fragmentation import FileFragments, FragReport, judge
from rescue.space.ntfs import FreeSpace

MB = 1_000_000


def _scan(free: int, files: dict[str, list[tuple[str, int, int]]], *, include=frozenset()) -> C.VolumeScan:
    cats = []
    for cat in C.CATEGORIES:
        fs = tuple(C.FoundFile(p, size, reclaim) for p, size, reclaim in files.get(cat.key, []))
        cats.append(C.CategoryScan(cat.key, cat.title, cat.opt_in, (not cat.opt_in) or cat.key in include,
                                   (f"\\{cat.key}",), fs,
                                   skipped=(C.Skipped("\\Windows\\Temp\\ro.tmp", "read-only attribute set"),)
                                   if cat.key == "windows-temp" else ()))
    return C.VolumeScan(disk=0, partition=3, letter="C:", cluster_size=4096, size_bytes=256 * 2**20,
                        free_bytes=free, categories=tuple(cats))


def _by_id(findings):
    return {f.id: f for f in findings}


def test_low_space_with_enough_to_clean_suggests_cleanup_not_expand():
    scan = _scan(100 * MB, {"windows-temp": [("\\Windows\\Temp\\a.tmp", 250 * MB, 250 * MB)],
                            "recycle-bin": [("\\$Recycle.Bin\\x", 5 * MB, 5 * MB)]})
    f = _by_id(space_findings(free_bytes=100 * MB, size_bytes=256 * 2**20, letter="C:", scan=scan,
                              disk_bytes=2**30))
    assert f["space-low"].status == FOUND and "under 300 MB" in f["space-low"].evidence
    assert f["space-cleanup"].status == FOUND and f["space-cleanup"].fix_option == "--cleanup"
    assert "cleanup can free 238.4 MiB" in f["space-cleanup"].evidence and "recycle-bin" in f["space-cleanup"].evidence
    assert f["space-expand"].status == OK                      # 350 MB after cleanup
    assert f["space-fragmentation"].status == UNKNOWN
    d = Diagnosis(("os.vhd",), tuple(x.of("no-memory") for x in f.values()))
    assert d.fix_command() == "rescue fix no-memory os.vhd --cleanup"


def test_low_space_cleanup_not_enough_recommends_expand_with_a_size():
    scan = _scan(10 * MB, {"memory-dumps": [("\\Windows\\MEMORY.DMP", 20 * MB, 20 * MB)]})
    f = _by_id(space_findings(free_bytes=10 * MB, size_bytes=256 * 2**20, scan=scan, disk_bytes=2**30,
                              disk_path="/vms/os disk.vhd"))
    assert f["space-expand"].status == FOUND and f["space-expand"].fix_option == "--expand 4G"
    assert f["space-expand"].evidence == ("even after cleanup the OS volume would have 28.6 MiB free: grow "
                                          "'/vms/os disk.vhd' (now 1 GiB) to 4G with `--expand 4G`")
    d = Diagnosis(("/vms/os disk.vhd",), tuple(x.of("no-memory") for x in f.values()))
    # One command does all of it: cleanup, grow image + partition + NTFS, and the article's edits.
    assert d.fix_commands() == ["rescue fix no-memory '/vms/os disk.vhd' --cleanup --expand 4G"]


def test_plenty_of_space_is_healthy():
    scan = _scan(5_000 * MB, {"windows-temp": [("\\Windows\\Temp\\a", 1 * MB, 1 * MB)]})
    f = space_findings(free_bytes=5_000 * MB, size_bytes=10**10, scan=scan, disk_bytes=127 * 2**30)
    assert all(x.status == OK for x in f if x.id != "space-fragmentation")
    assert "not needed" in _by_id(f)["space-cleanup"].evidence


def test_unknown_free_space():
    f = _by_id(space_findings(free_bytes=None, size_bytes=None))
    assert f["space-low"].status == UNKNOWN and f["space-expand"].status == UNKNOWN


def test_suggested_sizes_follow_azure_tiers_up_to_1t():
    assert suggest_size(2**30) == "4G" and suggest_size(127 * 2**30) == "256G" and suggest_size(600 * 2**30) == "1T"
    assert suggest_size(2 * 2**40) == "1T"


def test_fragmentation_judgement_and_finding():
    frag_free = FreeSpace(total_clusters=100_000, free_clusters=50_000, free_extents=9_000, largest_free_extent=400)
    files = (FileFragments("\\$MFT", 0, 3), FileFragments("\\pagefile.sys", 2**30, 250))
    rec, reasons = judge(frag_free, 4096, files)
    assert rec and any("0.8%" in r for r in reasons) and any("pagefile.sys is in 250 fragments" in r for r in reasons)
    report = FragReport(0, 3, "C:", 4096, frag_free, files, rec, reasons)
    f = _by_id(space_findings(free_bytes=200 * MB, size_bytes=10**9, frag=report))
    assert f["space-fragmentation"].status == FOUND
    assert "defrag C: /u /x /g" in f["space-fragmentation"].evidence and "No NTFS defragmenter" in f["space-fragmentation"].evidence
    ok = FreeSpace(100_000, 50_000, 3, 45_000)
    assert judge(ok, 4096, (FileFragments("\\$MFT", 0, 2),)) == (False, ())


def test_section_data_by_category():
    scan = _scan(100 * MB, {"thumbnails": [("\\Users\\a\\thumbcache_32.db", 4096, 4096)]})
    data = space_section_data([scan])
    v = data["volumes"][0]
    assert v["categories"]["thumbnails"] == {"files": 1, "bytes": 4096, "reclaim_bytes": 4096, "opt_in": False,
                                             "truncated": False}
    assert v["largest_free_extent_bytes"] is None


def test_plan_lists_every_file_not_kept_and_opt_in_skipped():
    scan = _scan(100 * MB, {"windows-temp": [("\\Windows\\Temp\\a.tmp", 100, 0), ("\\Windows\\Temp\\b.tmp", 9000, 12288)],
                            "windows-old": [("\\Windows.old\\x.dll", 5000, 8192)]})
    plan = C.build_plan(scan)
    changes = plan.changes
    assert [c.file.path for c in changes] == ["\\Windows\\Temp\\a.tmp", "\\Windows\\Temp\\b.tmp"]
    assert all(isinstance(c, DeleteFile) and not c.backup and c.file.partition == 3 for c in changes)
    steps = {s.action: s for s in plan.steps}
    assert "opt-in: add --include windows-old" in steps["space.cleanup.windows-old"].skipped
    assert "read-only" in steps["space.cleanup.windows-temp"].notes[0]
    assert steps["space.cleanup.update-cache"].skipped == "nothing to remove"
    included = C.build_plan(_scan(0, {"windows-old": [("\\Windows.old\\x.dll", 5000, 8192)]},
                                  include=frozenset({"windows-old"})))
    assert [c.file.path for c in included.changes] == ["\\Windows.old\\x.dll"]


def test_include_parsing():
    assert C.parse_include(["recycle-bin"]) == {"recycle-bin"}
    assert C.parse_include(["all"]) == set(C.OPT_IN_KEYS)
    assert C.parse_include(["Recycle-Bin,windows-old"]) == {"recycle-bin", "windows-old"}
    with pytest.raises(UsageError, match="Unknown cleanup category 'temp'"):
        C.parse_include(["temp"])


def test_name_patterns():
    cbs = next(r for c in C.CATEGORIES for r in c.roots if r.path.endswith("CBS"))
    assert C._matches("CBS.log", cbs) and C._matches("CbsPersist_1.CAB", cbs) and not C._matches("keep.txt", cbs)
    rb = next(c for c in C.CATEGORIES if c.key == "recycle-bin").roots[0]
    assert not C._matches("desktop.ini", rb) and C._matches("$RABC.txt", rb)


def test_block_device_too_small_says_grow_it_on_the_cloud_side_then_fill():
    scan = _scan(10 * MB, {})
    f = _by_id(space_findings(free_bytes=10 * MB, size_bytes=256 * 2**20, scan=scan, disk_bytes=127 * 2**30,
                              disk_path="/dev/sdc", block_device=True))
    assert f["space-expand"].status == FOUND and not f["space-expand"].fixable
    assert f["space-expand"].evidence == (
        "even after cleanup the OS volume would have 9.5 MiB free: /dev/sdc (now 127 GiB) is a block device, "
        "grow it on the cloud side first (Azure, VM deallocated: `az disk update -g RG -n DISK --size-gb 256`), "
        "attach it again, then add `--expand fill`")
