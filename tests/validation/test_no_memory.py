"""Validation cases of `no-memory` (stop error 0xC0000017): each check on a sample with the cause
and one without, with the exact finding and the exact planned change."""

from __future__ import annotations

import pytest

from harness import Case, context, run_case, windows_layout
from rescue.repairs import sources
from rescue.repairs.findings import FOUND, OK
from rescue.samples.bcd_store import build_bcd_hive
from rescue.samples.hives import build_system_hive
from rescue.space import cleanup as C
from rescue.space.findings import space_findings

MB = 1_000_000
S = "no-memory"


def _system(**opts):
    return lambda d, **o: context(d, scenario=S, system=build_system_hive(d / "SYSTEM", **opts), options=o or None)


def _bcd(**opts):
    return lambda d: context(d, scenario=S, bcd=build_bcd_hive(d / "BCD", **opts))


def _dump(*, ram: int, c_free: int, data_free=None):
    def build(d):
        return context(d, scenario=S, system=build_system_hive(d / "SYSTEM"), options={"ram_bytes": ram},
                       layout=windows_layout(c_free=c_free, data_free=data_free))
    return build


def _scan(free: int, files: dict) -> C.VolumeScan:
    cats = tuple(C.CategoryScan(cat.key, cat.title, cat.opt_in, not cat.opt_in, (f"\\{cat.key}",),
                                tuple(C.FoundFile(p, size, reclaim) for p, size, reclaim in files.get(cat.key, [])))
                 for cat in C.CATEGORIES)
    return C.VolumeScan(disk=0, partition=3, letter="C:", cluster_size=4096, size_bytes=256 * 2**20,
                        free_bytes=free, categories=cats)


def _frag(free_extents: int, largest: int, pagefile_fragments: int):
    from rescue.space.fragmentation import FileFragments, FragReport, judge
    from rescue.space.ntfs import FreeSpace

    free = FreeSpace(total_clusters=100_000, free_clusters=50_000, free_extents=free_extents,
                     largest_free_extent=largest)
    files = (FileFragments("\\$MFT", 0, 3), FileFragments("\\pagefile.sys", 2**30, pagefile_fragments))
    rec, reasons = judge(free, 4096, files)
    return FragReport(0, 3, "C:", 4096, free, files, rec, reasons)


def _space(free: int, files: dict, *, cleanup: bool = False, disk_bytes: int = 2**30, frag=None):
    def build(d):
        ctx = context(d, scenario=S, options={"cleanup": cleanup})
        scan = _scan(free, files)
        findings = space_findings(free_bytes=free, size_bytes=256 * 2**20, letter="C:", scan=scan,
                                  disk_bytes=disk_bytes, disk_path="os.vhd", frag=frag)
        sources.preset_space(ctx, tuple(findings), scan, for_cleanup=cleanup)
        return ctx
    return build


LOW = {"windows-temp": [("\\Windows\\Temp\\a.tmp", 250 * MB, 250 * MB)]}
TINY = {"windows-temp": [("\\Windows\\Temp\\a.tmp", 1 * MB, 1 * MB)]}

CASES = [
    # --- article step 2: free space ---
    Case("space-low", "100 MB free", _space(100 * MB, LOW), FOUND,
         "C: has 95.4 MiB free of 256.0 MiB (under 300 MB: 0xC0000017)", plan=None),
    Case("space-low", "5 GB free", _space(5_000 * MB, TINY, disk_bytes=127 * 2**30), OK,
         "C: has 4.7 GiB free of 256.0 MiB", plan=None),
    Case("space-cleanup", "250 MB of temp files, --cleanup", _space(100 * MB, LOW, cleanup=True), FOUND,
         "cleanup can free 238.4 MiB (windows-temp 1 file 238.4 MiB)",
         plan=("space.cleanup.windows-temp: delete file \\Windows\\Temp\\a.tmp (250,000,000 bytes, not backed up)",
               *(f"space.cleanup.{k} skipped: nothing to remove" for k in
                 ("user-temp", "update-cache", "delivery-optimization", "error-reports", "memory-dumps",
                  "setup-logs", "thumbnails")),
               *(f"space.cleanup.{k} skipped: opt-in: add --include {k} (0 files, 0 bytes)" for k in
                 ("recycle-bin", "windows-old"))),
         fixable=True),
    Case("space-cleanup", "250 MB of temp files, without --cleanup", _space(100 * MB, LOW), FOUND,
         "cleanup can free 238.4 MiB (windows-temp 1 file 238.4 MiB)",
         plan=("space.cleanup skipped: OS volume under 300 MB free: add --cleanup to remove what Disk Cleanup "
               "removes, or --expand SIZE to grow the disk",)),
    Case("space-cleanup", "plenty free", _space(5_000 * MB, TINY, disk_bytes=127 * 2**30), OK,
         "cleanup can free 976.6 KiB (windows-temp 1 file 976.6 KiB) (not needed: enough free space)", plan=()),
    Case("space-expand", "cleanup not enough", _space(10 * MB, TINY), FOUND,
         "even after cleanup C: would have 10.5 MiB free: grow os.vhd (now 1 GiB) to 4G with `--expand 4G`",
         plan=None, fixable=True),
    Case("space-expand", "plenty free", _space(5_000 * MB, TINY, disk_bytes=127 * 2**30), OK,
         "4.7 GiB free after cleanup", plan=None),
    Case("space-fragmentation", "9000 free extents, page file in 250 pieces",
         _space(5_000 * MB, TINY, disk_bytes=127 * 2**30, frag=_frag(9_000, 400, 250)), FOUND,
         "largest free extent 1.6 MiB of 195.3 MiB free (9,000 free extents); free space is fragmented: the largest "
         "free extent holds 0.8% of the free space (9,000 free extents); \\pagefile.sys is in 250 fragments; No NTFS "
         "defragmenter exists for Linux, so rescue does not defragment; run Windows' own `defrag C: /u /x /g` after "
         "the VM boots.", plan=None),
    Case("space-fragmentation", "3 free extents", _space(5_000 * MB, TINY, disk_bytes=127 * 2**30,
                                                          frag=_frag(3, 45_000, 2)), OK,
         "largest free extent 175.8 MiB of 195.3 MiB free (3 free extents)", plan=None),
    # --- step 3: bad-memory list ---
    Case("bcd-badmemory", "3 pages", _bcd(bad_memory_pfns=(0xFFE38, 0x100F, 0x3A7C2)), FOUND,
         "badmemorylist in {badmemory} marks 3 page(s) unusable: 0xffe38, 0x100f, 0x3a7c2",
         plan=("bcd.badmemory: delete key Objects\\{5189b25c-5558-4bf2-bca4-289b11bd29e2}\\Elements\\1700000a "
               "and everything below it",), fixable=True),
    Case("bcd-badmemory", "none", _bcd(), OK, "{badmemory} has no badmemorylist",
         plan=("bcd.badmemory skipped: no bad-memory list in {badmemory}",)),
    # --- step 5: EMS ---
    Case("ems-off", "ems absent, no port", _bcd(), FOUND,
         "ems of {default} (Windows Server) is not set; EMS port unset, baud rate unset (article: 1, 115200)",
         plan=("bcd.ems: set Objects\\{0ee1c3a2-9f4b-11ee-8c1a-00155d010203}\\Elements\\260000b0\\Element = "
               "'01' (REG_BINARY)",
               "bcd.emssettings: set Objects\\{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}\\Elements\\15000022\\Element = "
               "'0100000000000000' (REG_BINARY)",
               "bcd.emssettings: set Objects\\{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}\\Elements\\15000023\\Element = "
               "'00c2010000000000' (REG_BINARY)"), fixable=True),
    Case("ems-off", "ems on, COM1 115200", _bcd(ems=True, emssettings=(1, 115200)), OK,
         "ems on, port 1, 115200 baud",
         plan=("bcd.ems skipped: EMS is already on for {default}",
               "bcd.emssettings skipped: {emssettings} already has port 1 and 115200 baud")),
    # --- step 4: page file ---
    Case("pagefile-not-on-temp-drive", "page file on C:", _system(pagefile_on="C:"), FOUND,
         "ControlSet001 PagingFiles = C:\\pagefile.sys 0 0; page file on C:, not the temporary drive D:",
         plan=tuple(f"registry.pagefile-reset: set ControlSet00{n}\\Control\\Session Manager\\Memory Management"
                    f"\\PagingFiles = ['D:\\\\pagefile.sys 0 0'] (REG_MULTI_SZ)" for n in (1, 2)), fixable=True),
    Case("pagefile-not-on-temp-drive", "page file on D:", _system(pagefile_on="D:"), OK,
         "PagingFiles = D:\\pagefile.sys",
         plan=("registry.pagefile skipped: the page file is already on D: (or no setting to change)",)),
    # --- step 5c: crash dumps and NMI ---
    Case("crashdump-disabled", "CrashDumpEnabled 0", _system(crash_dumps=False), FOUND,
         "ControlSet001 CrashDumpEnabled 0; ControlSet002 CrashDumpEnabled 0",
         plan=tuple(f"registry.crashdump-enable: set ControlSet00{n}\\Control\\CrashControl\\CrashDumpEnabled = 1 "
                    "(REG_DWORD)" for n in (1, 2)), fixable=True),
    Case("crashdump-disabled", "complete dumps, NMI on", _system(), OK,
         "ControlSet001: complete memory dump, ControlSet002: complete memory dump",
         plan=("registry.crashdump-enable skipped: CrashDumpEnabled, DumpFile and NMICrashDump are already set "
               "in every control set",)),
    Case("nmi-crashdump-off", "NMICrashDump absent", _system(nmi=False), FOUND,
         "NMICrashDump is not 1 in ControlSet001, ControlSet002", plan=None, fixable=True),
    Case("nmi-crashdump-off", "NMICrashDump 1", _system(), OK, "NMICrashDump=1 in every control set", plan=None),
    # --- step 5b: dump space ---
    Case("dump-volume-too-small", "16 GiB RAM, 2 GiB free on C:, 100 GiB on E:",
         _dump(ram=16 << 30, c_free=2 << 30, data_free=100 << 30), FOUND,
         "C: has 2.0 GiB free, less than the VM's RAM (16.0 GiB): a complete dump will not fit; the data volume "
         "with the most free space is E: on data.vhd partition 1 (100.0 GiB free): use --dump-file E:\\MEMORY.DMP",
         plan=None, fixable=True),
    Case("dump-volume-too-small", "16 GiB RAM, 2 GiB free on C:, no data disk",
         _dump(ram=16 << 30, c_free=2 << 30), FOUND,
         "C: has 2.0 GiB free, less than the VM's RAM (16.0 GiB): a complete dump will not fit; attach a data disk "
         "with enough space and use --dump-file X:\\MEMORY.DMP", plan=None, fixable=False),
    Case("dump-volume-too-small", "16 GiB RAM, 40 GiB free on C:", _dump(ram=16 << 30, c_free=40 << 30), OK,
         "C: has 40.0 GiB free, enough for a complete dump of 16.0 GiB RAM", plan=None),
    # --- WHEA BadPages (builds 19042+) ---
    Case("whea-bad-pages", "BadPages value", _system(whea_bad_pages=b"\x01" * 24), FOUND,
         "ControlSet001\\Control\\WHEA BadPages REG_BINARY 24 bytes; ControlSet002\\Control\\WHEA BadPages REG_BINARY "
         "24 bytes: Windows will not use those pages",
         plan=tuple(f"registry.whea-badpages: delete ControlSet00{n}\\Control\\WHEA\\BadPages (was '{'01' * 24}')"
                    for n in (1, 2)), fixable=True),
    Case("whea-bad-pages", "no BadPages", _system(), OK, "no BadPages in any control set", plan=()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
