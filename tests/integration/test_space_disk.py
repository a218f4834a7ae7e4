"""Free space on real images through the real appliance: cleanup deletes exactly the
category files (dry-run counts and bytes exact, decoys, junctions, symlinks and read-only files
untouched, free space rises by what was reported), expand grows raw/VHD/VHDX/qcow2 Gen1/Gen2 disks
with their data intact, refusals leave the image byte-identical, fragmentation is measured.

Launches are counted: one prep launch builds the extras into copies of the samples, every CLI call
is one launch, one verification launch reads all results."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import struct
from pathlib import Path

import pytest

from conftest import copy_image
from orphans import orphan_holding
from rescue.disk.builder import DiskBuilder
from rescue.disk.formats import detect
from rescue.disk.session import DiskSession

pytestmark = pytest.mark.appliance

MiB, GiB = 1 << 20, 1 << 30
WINRE = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"


def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_raw(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def _data(name: str, size: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


# What the prep adds to gen2-broken's C: (besides the sample's own category files).
ADDED = {
    "windows-temp": [("\\Windows\\Temp\\big.tmp", 300_000), ("\\Windows\\Temp\\nested\\deep\\x.tmp", 5_000),
                     ("\\Windows\\Temp\\tiny.txt", 10)],
    "user-temp": [("\\Users\\azureuser\\AppData\\Local\\Temp\\u1.tmp", 40_000),
                  ("\\Users\\second\\AppData\\Local\\Temp\\u2.tmp", 9_000)],
    "update-cache": [("\\Windows\\SoftwareDistribution\\Download\\abc\\update.cab", 200_000)],
    "delivery-optimization": [
        ("\\Windows\\ServiceProfiles\\NetworkService\\AppData\\Local\\Microsoft\\Windows\\DeliveryOptimization\\Cache\\x.dat", 70_000),
        ("\\ProgramData\\Microsoft\\Windows\\DeliveryOptimization\\Cache\\y.dat", 10_000)],
    "error-reports": [("\\Users\\azureuser\\AppData\\Local\\Microsoft\\Windows\\WER\\ReportArchive\\r1\\Report.wer", 8_000)],
    "memory-dumps": [("\\Windows\\Minidump\\second.dmp", 66_000), ("\\Windows\\MEMORY.DMP", 500_000)],
    "setup-logs": [("\\Windows\\Logs\\CBS\\CbsPersist_20261101.cab", 30_000),
                   ("\\Windows\\Logs\\CBS\\CbsPersist_20261102.log", 5_000), ("\\Windows\\Logs\\DISM\\dism.log", 20_000)],
    "thumbnails": [("\\Users\\second\\AppData\\Local\\Microsoft\\Windows\\Explorer\\thumbcache_32.db", 16_384)],
    "recycle-bin": [("\\$Recycle.Bin\\S-1-5-21-1000\\$RABC123.txt", 12_000)],
    "windows-old": [("\\Windows.old\\Windows\\System32\\old.dll", 50_000)],
}
MANY = [(f"\\Windows\\Temp\\many\\f{i:04d}.tmp", 100) for i in range(1500)]   # a plan of thousands of deletions
DECOYS = [("\\Windows\\Logs\\CBS\\keep.txt", 3_000), ("\\Windows\\Logs\\CBS\\sub\\nested.log", 3_000),
          ("\\Users\\azureuser\\AppData\\Local\\Microsoft\\Windows\\Explorer\\iconcache_32.db", 7_000),
          ("\\Windows\\System32\\decoy.dll", 9_000), ("\\Windows\\TempX\\notme.tmp", 4_000),
          ("\\ProgramData\\Microsoft\\Windows\\WER\\Temp\\w.tmp", 1_000),
          ("\\Users\\azureuser\\Documents\\report.docx", 6_000),
          ("\\$Recycle.Bin\\S-1-5-21-1000\\desktop.ini", 100)]
READONLY = ("\\Windows\\Temp\\readonly.tmp", 12_000)
JUNCTION = "\\Windows\\Temp\\escape"                  # -> C:\Windows\System32 (NTFS mount point)
ROOT_JUNCTION = "\\Users\\third\\AppData\\Local\\Temp"  # a category folder that is itself a junction
SYMLINK = "\\Windows\\Temp\\link.tmp"
MFT_EXTENSION = 16 * 1024                              # ntfs-3g grows $MFT by 16 records of 1 KiB


def _posix(mp: str, win: str) -> str:
    return mp + win.replace("\\", "/")


def _junction_data(target: str) -> bytes:
    """IO_REPARSE_TAG_MOUNT_POINT reparse buffer (MS-FSCC 2.1.2.5) for a junction to `target`."""
    sub = ("\\??\\" + target).encode("utf-16-le")
    pr = target.encode("utf-16-le")
    body = struct.pack("<HHHH", 0, len(sub), len(sub) + 2, len(pr)) + sub + b"\0\0" + pr + b"\0\0"
    return struct.pack("<IHH", 0xA0000003, len(body), 0) + body


def _expected(base: str) -> dict[str, list[tuple[str, int]]]:
    """Every file each category holds on the prepared disk: the sample's own and the added ones."""
    from rescue.samples import options
    from rescue.samples.disks import _CLEANUP_FILES
    from rescue.space.cleanup import CATEGORIES

    exp = {k: list(v) for k, v in ADDED.items()}
    exp["windows-temp"] += MANY
    sample = list(_CLEANUP_FILES)
    if options(base).download_cache_mib:
        sample.append(("\\Windows\\SoftwareDistribution\\Download\\9c1f3b7e2d\\windows10.0-kb5031361-x64.cab",
                       options(base).download_cache_mib * MiB))
    owner = {"\\Windows\\Temp": "windows-temp", "\\Users\\azureuser\\AppData\\Local\\Temp": "user-temp",
             "\\ProgramData\\Microsoft\\Windows\\WER": "error-reports", "\\Windows\\Minidump": "memory-dumps",
             "\\Windows\\Logs\\CBS": "setup-logs", "\\Windows\\SoftwareDistribution\\DeliveryOptimization": "delivery-optimization",
             "\\Users\\azureuser\\AppData\\Local\\Microsoft\\Windows\\Explorer": "thumbnails",
             "\\Windows\\SoftwareDistribution\\Download": "update-cache"}
    for path, size in sample:
        key = next(k for prefix, k in owner.items() if path.startswith(prefix + "\\"))
        exp[key].append((path, size))
    assert set(exp) == {c.key for c in CATEGORIES}
    return exp


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Copies of the samples with the extras, built in ONE launch: the cleanup disk (gen2-broken.raw
    plus category files, decoys, junctions, a symlink, a read-only file, 1500 small files) and a
    gen2 disk with a recovery partition right behind C:."""
    from rescue import samples

    d = tmp_path_factory.mktemp("space")
    clean = copy_image(samples.sample_path("gen2-broken.raw"), d / "cleanup.raw")
    rec = copy_image(samples.sample_path("gen2-broken.raw"), d / "recovery.raw")
    with DiskSession([detect(str(clean)), detect(str(rec))], write=True) as s:
        part = s.partition(0, 3)
        mp = s.mount(part, write=True)
        tar = d / "extras.tar"       # every extra file in one call (one call per file is slow under TCG)
        with tarfile.open(tar, "w") as t:
            for path, size in [f for files in ADDED.values() for f in files] + MANY + DECOYS + [READONLY]:
                info = tarfile.TarInfo(path.lstrip("\\").replace("\\", "/"))
                info.size = size
                t.addfile(info, io.BytesIO(_data(path, size)))
        build = DiskBuilder(s)
        build.extract_tar(tar, mp)
        build.set_ntfs_xattr(_posix(mp, READONLY[0]), "system.ntfs_attrib_be", (0x21).to_bytes(4, "big"))
        s.makedirs(_posix(mp, JUNCTION))
        build.set_ntfs_xattr(_posix(mp, JUNCTION), "system.ntfs_reparse_data", _junction_data("C:\\Windows\\System32"))
        s.makedirs(_posix(mp, ROOT_JUNCTION))
        build.set_ntfs_xattr(_posix(mp, ROOT_JUNCTION), "system.ntfs_reparse_data", _junction_data("C:\\Windows\\System32"))
        build.symlink(_posix(mp, "\\Users\\azureuser\\Documents\\report.docx"), _posix(mp, SYMLINK))
        s.umount(part)
        # recovery.raw: a WinRE partition (100 MiB, NTFS) starting right after C: (which ends at 763903)
        build.add_partition(1, 763904, 763904 + 204800 - 1)
        build.set_partition_attrs(1, 4, gpt_type=WINRE, name="Recovery")
        build.mkfs(1, 4, "ntfs", label="Recovery")
    return {"cleanup": clean, "recovery": rec, "dir": d}


def test_cleanup_dry_run_counts_then_deletes_exactly_those(prepared, cli):
    disk = prepared["cleanup"]
    exp = _expected("gen2-broken")
    before = _sha_file(disk)

    # 1. dry run, every category included: exact counts and bytes, nothing written
    r = cli("cleanup", disk, "--dry-run", "--include", "all", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    cats = {c["key"]: c for c in doc["cleanup"]["categories"]}
    for key, files in exp.items():
        assert cats[key]["files"] == len(files), (key, cats[key])
        assert cats[key]["bytes"] == sum(n for _, n in files), key
    kept = {k["path"]: k["reason"] for c in cats.values() for k in c["skipped"]}
    assert "read-only" in kept[READONLY[0]]
    assert "junction" in kept[JUNCTION] and "junction" in kept[SYMLINK]
    assert "category folder is a junction" in kept[ROOT_JUNCTION]
    assert doc["result"]["dry_run"] and not doc["result"]["applied"]
    assert _sha_file(disk) == before

    # 2. apply without opt-in categories
    r = cli("cleanup", disk, "--yes", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["result"]["applied"]
    reported = doc["cleanup"]["reclaim_bytes"]
    deleted = {f["path"] for f in doc["result"]["files"]}
    want = {p for k, files in exp.items() if k not in ("recycle-bin", "windows-old") for p, _ in files}
    assert deleted == want
    assert doc["seconds"]["apply"] < 120          # 1500+ deletions batched (about 2 ms each under TCG)

    # 3. read the result back in one launch
    with DiskSession([detect(str(disk))]) as s:
        mp = s.mount(s.partition(0, 3))
        for p in want:
            assert s.resolve(_posix(mp, p)) is None, p
        survivors = DECOYS + [READONLY] + ADDED["recycle-bin"] + ADDED["windows-old"]
        for p, size in survivors:
            real = s.resolve(_posix(mp, p))
            assert real and s.sha256(real) == hashlib.sha256(_data(p, size)).hexdigest(), p
        assert s.lstat(_posix(mp, JUNCTION)).kind == "link" and s.lstat(_posix(mp, SYMLINK)).kind == "link"
        assert s.is_file(_posix(mp, "\\Windows\\System32\\config\\SYSTEM"))
        # The plan and the manifest of what was deleted are kept on the disk.
        backup = _posix(mp, "\\rescue-backup\\" + doc["result"]["backup_id"])
        manifest = json.loads(s.read_file(backup + "/manifest.json"))
        assert {f["file"]["path"] for f in manifest["files"]} >= want
        tree, _ = s.lstat_tree(_posix(mp, "\\rescue-backup"))
        backup_bytes = sum(e.allocated for e in tree if e.kind == "file" and e.allocated % 4096 == 0)
        free_after = s.usage(mp).free_bytes
    # Free space rose by what was reported, less what the backup folder now takes. Allowed for on
    # top: directory index blocks ntfs-3g may release, and the backup's new MFT records, which can
    # make ntfs-3g extend $MFT (16 records at a time: 16 KiB with 1 KiB records) whatever the size
    # of the volume's other files (that extension is not a file in the backup folder).
    gained = free_after + backup_bytes - doc["free_before"]
    assert reported - 2 * MFT_EXTENSION <= gained <= reported + 256 * 1024, (reported, gained)


def _volume_facts(s, disk: int, part: int, files: list[str]) -> dict:
    p = s.partition(disk, part)
    mp = s.mount(p)
    return {"part_size": p.size, "part_start": p.start, "fs_size": s.usage(mp).size_bytes,
            "free": s.usage(mp).free_bytes,
            "sha": {f: s.sha256(s.resolve(_posix(mp, f))) for f in files}}


FILES = ["\\Windows\\System32\\config\\SYSTEM", "\\Windows\\System32\\config\\SOFTWARE",
         "\\Users\\azureuser\\Desktop\\notes.txt", "\\Windows\\System32\\ntoskrnl.exe"]


def test_expand_every_format_gen1_and_gen2(sample_disk, cli, tmp_path):
    from rescue import samples

    gen2_head = _sha_bytes(_read_raw(samples.sample_path("gen2-broken.raw"), 0, MiB))
    cases = [  # (sample, args, expected disk size)
        ("gen2-broken.vhd", ["--add", "1G"], 2 * GiB),                 # dynamic VHD, GPT
        ("gen1-broken.vhdx", ["--size", "1536M"], 1536 * MiB),         # VHDX, MBR
        ("gen2-broken.qcow2", ["--size", "2G"], 2 * GiB),
        ("gen1-broken.raw", [], GiB),                                  # no growth: fill the free space
    ]
    disks = []
    for name, args, size in cases:
        disk = sample_disk(name)
        with contextlib.ExitStack() as stack:
            holder = None
            if name == "gen2-broken.vhd":
                # An appliance orphaned by a killed run still holds the image's lock: expand reaps
                # it before its in-use check instead of refusing.
                holder = stack.enter_context(orphan_holding(disk, "vpc"))
            r = cli("expand", disk, *args, "--yes", "--json")
            assert r.code == 0, r.err
            assert holder is None or holder.poll() is not None          # reaped, not left holding
        res = r.json()["expand"]
        assert res["plan"]["new_disk_size"] == size and detect(str(disk)).virtual_size == size
        assert res["image_grown"] == (size > GiB)
        assert res["filesystem_size_after"] > res["filesystem_size_before"]
        disks.append((name, disk, res))
    orig = {g: samples.sample_path(f"{g}-broken.raw") for g in ("gen1", "gen2")}
    with DiskSession([detect(str(d)) for _, d, _ in disks] + [detect(str(orig["gen1"])), detect(str(orig["gen2"]))]) as s:
        ref = {"gen1": _volume_facts(s, 4, 2, FILES), "gen2": _volume_facts(s, 5, 3, FILES)}
        for i, (name, disk, res) in enumerate(disks):
            gen = name.split("-")[0]
            part = 3 if gen == "gen2" else 2
            got = _volume_facts(s, i, part, FILES)
            plan = res["plan"]
            assert got["part_start"] == ref[gen]["part_start"]
            assert got["part_size"] == plan["new_partition_size"] > ref[gen]["part_size"]
            assert plan["new_partition_size"] + plan["partition_start"] > plan["new_disk_size"] - 2 * MiB
            assert got["fs_size"] == res["filesystem_size_after"]
            assert got["sha"] == ref[gen]["sha"], name            # data unchanged
            assert got["free"] > ref[gen]["free"]
            assert s.disks()[i].size == plan["new_disk_size"]
        assert s.disks()[0].table == "gpt" and s.disks()[1].table == "mbr"
        # GPT: the backup header moved to the new end (the primary names it)
        hdr = s.read_disk_bytes(0, 512, 512)
        assert struct.unpack_from("<Q", hdr, 32)[0] == 2 * GiB // 512 - 1
        # MBR: disk signature (BCD + MountedDevices name partitions by it) unchanged
        assert s.disks()[1].mbr_signature == s.disks()[4].mbr_signature
        # The saved partition table sits in a backup folder named like every run's, with a manifest.
        mp = s.mount(s.partition(0, 3))
        [backup_id] = s.listdir(f"{mp}/rescue-backup")
        assert disks[0][2]["backup"] == f"\\rescue-backup\\{backup_id}"
        manifest = json.loads(s.read_file(f"{mp}/rescue-backup/{backup_id}/manifest.json"))
        assert (manifest["kind"], manifest["status"], manifest["files"]) == ("expand", "applied", [])
        assert manifest["plan"]["expand"]["new_disk_size"] == 2 * GiB
        assert manifest["plan"]["saved"] == {"disk-first-1MiB.bin": MiB, f"disk-at-{GiB - MiB}.bin": MiB}
        assert s.sha256(f"{mp}/rescue-backup/{backup_id}/disk-first-1MiB.bin") == gen2_head

        # Fragmentation of the grown gen2 VHD, measured in the same launch (metadata only).
        from rescue.cli.space_cmd import _render_frag
        from rescue.space.fragmentation import report
        fr = report(s, s.partition(0, 3), letter="C:")
        _render_frag(fr)
        j = fr.to_json()
        assert 0 < j["largest_free_extent_bytes"] <= j["free_bytes"] == s.usage(s.mount(s.partition(0, 3))).free_bytes
        # most of the free space is the one extent the growth added behind the old end
        assert j["largest_free_extent_bytes"] > GiB * 0.9
        paths = {x["path"]: x for x in j["files"]}
        assert {"\\$MFT", "\\pagefile.sys", "\\Windows\\System32\\config\\SYSTEM"} <= set(paths)
        assert paths["\\pagefile.sys"]["fragments"] >= 1 and paths["\\pagefile.sys"]["size"] == 16 * MiB
        assert j["defrag_command"] == "defrag C: /u /x /g" and "No NTFS defragmenter" in j["advice"]

    # `rescue backups` lists the grow as what it is; `rescue undo` says it cannot undo it.
    gen2 = disks[0][1]
    before = _sha_file(gen2)
    r = cli("backups", gen2, "--json")
    assert r.code == 0, r.err
    [b] = r.json()
    assert (b["id"], b["kind"], b["status"], b["files"]) == (backup_id, "expand", "applied", 0)
    r = cli("undo", gen2, "--yes")
    err = " ".join(r.err.split())                # the terminal may wrap the sentence
    assert r.code == 7 and "grew the disk" in err and "cannot be undone by `rescue undo`" in err, err
    assert _sha_file(gen2) == before


def test_refusals_leave_the_image_byte_identical(prepared, sample_disk, cli):
    from rescue.space.ntfs import VOLUME_IS_DIRTY, Volume

    # recovery partition right behind C:
    rec = prepared["recovery"]
    before = _sha_file(rec)
    r = cli("expand", rec, "--add", "1G", "--yes")
    assert r.code == 5 and "recovery partition" in r.err.lower() and "reagentc" in r.err
    assert _sha_file(rec) == before and detect(str(rec)).virtual_size == GiB

    # over the VHD format limit: refused before any launch
    vhd = sample_disk("gen2-broken.vhd")
    before = _sha_file(vhd)
    r = cli("expand", vhd, "--size", "3T", "--allow-large", "--yes")
    assert r.code == 2 and "2040 GiB" in r.err
    r = cli("expand", vhd, "--size", "2T", "--yes")
    assert r.code == 2 and "1 TB" in r.err
    assert _sha_file(vhd) == before

    # NTFS marked dirty (flag set on the host in $Volume and its $MFTMirr copy)
    raw = sample_disk("gen1-broken.raw")
    start = 206848 * 512
    with open(raw, "r+b") as fh:
        def read(off, n):
            fh.seek(start + off)
            return fh.read(n)
        v = Volume(read)
        rec3 = v.record(3)
        pos = struct.unpack_from("<H", rec3, 0x14)[0]
        while struct.unpack_from("<I", rec3, pos)[0] != 0x70:
            pos += struct.unpack_from("<I", rec3, pos + 4)[0]
        at = pos + struct.unpack_from("<H", rec3, pos + 0x14)[0] + 10
        for lcn in (v.boot.mft_lcn, v.boot.mftmirr_lcn):
            fh.seek(start + lcn * v.boot.cluster_size + 3 * v.boot.record_size + at)
            fh.write(struct.pack("<H", VOLUME_IS_DIRTY))
    before = _sha_file(raw)
    r = cli("expand", raw, "--add", "1G", "--yes")
    assert r.code == 5 and "dirty" in r.err
    assert _sha_file(raw) == before
