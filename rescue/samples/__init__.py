"""Sample disks: realistic Windows-like VM disks with real NTFS/FAT filesystems and real-format hives.

Used by `make demo`, the tests (tests/conftest.py `sample_disk`) and the benchmarks. Every sample is
built once per builder version and cached under `.cache/samples/<key>/` (rescue.samples.cache): ONE
libguestfs appliance launch builds every raw image; other formats are converted on the host with
qemu-img on first use.

Names: `<base>.<format>` for every base below and format in raw, vhd (dynamic VHD), vhdx, qcow2,
e.g. "gen2-broken.vhd", "gen1-broken.vhdx", "gen2-healthy.qcow2", "gen1-broken.raw",
"data-disk.vhd"; plus the special files "truncated.vhd" and "not-a-disk.vhd".

Bases (CATALOGUE):
  gen1-broken / gen2-broken   the article's broken state (0xC0000017): C: under 300 MB free (a 256 MiB
                              C: holding a 16 MiB pagefile.sys and a 4 MiB Windows Update download),
                              bad-memory list in the BCD {badmemory}, page file on C: (PagingFiles
                              "C:\\pagefile.sys 0 0"), EMS off (no loader `ems`, no emsport/baudrate,
                              bootems No), crash dumps off (CrashDumpEnabled 0, no NMICrashDump),
                              files in Disk Cleanup categories.
  gen1-healthy / gen2-healthy the state the article's steps leave: page file on D: (temporary drive),
                              EMS on with EMSPORT 1 / 115200, CrashDumpEnabled 1 + DumpFile + NMICrashDump
                              1, no bad memory, C: ~900 MiB with plenty free.
  data-disk                   GPT data disk (MSR + NTFS "Data"), E: in every OS sample's MountedDevices.
  data-disk-pagefile          the same disk (same GUIDs, so also E:) holding an 8 MiB \\pagefile.sys.
  no-windows                  MBR: an NTFS data partition and an ext4 partition, no Windows.
  empty                       64 MiB of zeros: no partition table.
  bitlocker                   gen2 layout whose C: boot sector carries the BitLocker OEM id "-FVE-FS-".
  hibernated                  gen2-broken plus \\hiberfil.sys starting "HIBR" (ntfs-3g: hibernated).
  crashed                     gen2-broken whose C: has an unclean version 2.0 $LogFile restart area and
                              no hiberfil.sys: what a crash or a forced stop of Windows 8+ leaves.
  fast-startup                gen2-broken shut down with Fast Startup: HiberbootEnabled 1, hiberfil.sys
                              "HIBR", unclean version 2.0 log.
  chkdsk-scheduled            gen2-broken whose C: has only VOLUME_IS_DIRTY set (clean log).
  two-windows                 gen2 layout with two Windows volumes (p3 Server 2019, p4 Server 2016),
                              both in the BCD display order.
  gen1-boot-broken /          ControlSet001 (current) in the 0x7B state: storvsc Start 3, a vmbus
  gen2-boot-broken            StartOverride 0=3, DiskDrive UpperFilters naming "cbtfilter" (no service)
                              and Volume LowerFilters naming "contosoflt" (a third-party boot-start
                              driver whose .sys is missing); ControlSet002 (last known good) healthy.
  gen2-registry-broken        SYSTEM with a damaged first hive bin; RegBack holds good copies of
                              SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT.
  gen1-system-broken / gen2-system-broken
                              healthy but for three system scenarios broken at once: remote-access (RDP
                              denied locally and by policy, SecurityLayer 7, TermService and Dhcp
                              disabled, firewall RDP rule inactive), pending-updates (pending.xml, CBS
                              RebootPending/PackagesPending/an incomplete session, COMPONENTS pending
                              values) and crowdstrike-291 (the faulty channel file of 04:09 UTC).
                              Every Windows sample has COMPONENTS, config\\TxR logs and the RDP keys.
  dirty-hive                  gen2 layout whose SYSTEM is dirty (sequence numbers differ) with
                              non-empty SYSTEM.LOG1/.LOG2: the real regipy SYSTEM_B + logs from
                              ../shared/realdata when present (C:'s GPT GUID is then the one its
                              MountedDevices names), else our SYSTEM marked dirty + a synthetic log.
  gen2-nobcd / gen1-nobcd     healthy samples without the store the firmware reads (rebuild-bcd); C:
                              holds \\Windows\\Boot\\{EFI,PCAT,Fonts} stand-ins and a BCD-Template.
  gen2-badbcd / gen1-badbcd   the same with a corrupt store (its hbins overwritten); gen1-badbcd also
                              has no active partition.

Facts the tests compare against (GUIDs, signatures, offsets) come from `identity(base)` and
`options(base)`; nothing needs to be read back from the images to know what they should hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("raw", "vhd", "vhdx", "qcow2")
SPECIAL = ("truncated.vhd", "not-a-disk.vhd")

# Page frame numbers of the broken samples' badmemorylist (the first two are Microsoft's example in
# "How to Manage the PFA Memory List": bcdedit shows 0xffe38 and 0x100f).
BROKEN_PFNS = (0xFFE38, 0x100F, 0x3A7C2)


@dataclass(frozen=True)
class WindowsOptions:
    """What a Windows OS sample holds. Defaults are the healthy Azure VM (the article's end state)."""

    generation: str = "gen2"                      # gen1 (MBR, BIOS) | gen2 (GPT, UEFI)
    disk_mib: int = 1024                          # virtual size
    c_size_mib: int | None = None                 # None: C: runs to the end of the disk (less 1 MiB)
    product: str = "Windows Server 2019 Datacenter"
    build: int = 17763
    # registry
    current: int = 1
    control_sets: tuple[int, ...] = (1, 2)
    pagefile_on: str | None = "D:"                # PagingFiles drive
    crash_dumps: bool = True                      # CrashDumpEnabled 1 (True) / 0 (False)
    nmi: bool = True                              # NMICrashDump 1 / absent
    whea_bad_pages: bytes | None = None           # SYSTEM Control\WHEA BadPages (builds 19042+)
    # BCD
    bad_memory_pfns: tuple[int, ...] = ()
    ems: bool = True                              # default loader ems (0x260000b0)
    emssettings: tuple[int, int] | None = (1, 115200)
    bootems: bool = False                         # {emssettings} bootems
    bootmgr_bootems: bool = True                  # {bootmgr} bootems (Azure image preparation)
    bcd_timeout: int | None = 5                   # {bootmgr} timeout (None: absent, the menu waits)
    # BCD boot configuration faults (boot-config, safe-mode, boot-menu, repair-loop)
    loader_on_other_disk: bool = False            # default loader's device/osdevice: another disk's partition
    bootmgr_missing: bool = False                 # no {bootmgr} object
    default_deleted: bool = False                 # default + displayorder name a deleted object
    safeboot: int | None = None                   # default loader safeboot (1: Network)
    safeboot_alternateshell: bool = False
    ignore_failures: bool = True                  # False: recoveryenabled Yes, no bootstatuspolicy
    # files on C:
    pagefile_mib: int = 0                         # \pagefile.sys on C: (0: none)
    download_cache_mib: int = 0                   # one file in SoftwareDistribution\Download
    cleanup_files: bool = False                   # small files in Disk Cleanup categories
    # unsafe states
    hibernated: bool = False
    hiberboot: bool | None = None                 # SYSTEM ...\Session Manager\Power\HiberbootEnabled
    ntfs_stamp: str | None = None                 # C: left "unclean" (v2.0 log) or "dirty" (rescue.samples.ntfs_states)
    bitlocker: bool = False
    dirty_hive: bool = False
    second_windows: bool = False
    # system scenarios (inaccessible-boot-device, driver, registry, last-known-good)
    boot_stack_broken: bool = False               # ControlSet001 only: the 0x7B state (BOOT_BROKEN_*)
    corrupt_hive: str | None = None               # this hive's first hbin header is damaged
    regback: bool = False                         # config\RegBack holds copies of the healthy hives
    # boot configuration (rebuild-bcd)
    bcd_state: str = "ok"                         # ok | missing | corrupt: the store on the system partition
    boot_sources: bool = False                    # \Windows\Boot\{EFI,PCAT,Fonts} + config\BCD-Template on C:
    active: bool = True                           # gen1: System Reserved marked active
    # remote-access, pending-updates, crowdstrike-291 (rescue.samples.system_state)
    rdp_broken: bool = False                      # RDP denied (local + policy), bad SecurityLayer, TermService
                                                  # and Dhcp disabled, the firewall's RDP rule inactive
    servicing_pending: bool = False               # pending.xml, CBS RebootPending/PackagesPending, COMPONENTS
                                                  # pending values (COMPONENTS and TxR logs are always there)
    crowdstrike_291: bool = False                 # \Windows\System32\drivers\CrowdStrike with the faulty
                                                  # C-00000291*.sys of 2024-07-19 04:09 UTC
    # driver (service-image-missing): third-party automatic-start services whose .exe is gone
    # (rescue.samples.system_state.MISSING_EXE_SERVICES), in every control set
    service_exe_missing: bool = False
    # logon (0xC000021A): Userinit, BootExecute (ControlSet001) and the setup-mode hook name programs
    # the volume does not have (rescue.samples.system_state.BROKEN_*)
    logon_broken: bool = False


BROKEN = dict(c_size_mib=256, pagefile_on="C:", crash_dumps=False, nmi=False,
              bad_memory_pfns=BROKEN_PFNS, ems=False, emssettings=None, bootems=False,
              bootmgr_bootems=False, pagefile_mib=16, download_cache_mib=4, cleanup_files=True)


# The three boot-option faults in one store: safeboot Network + safebootalternateshell (safe-mode),
# displaybootmenu Yes without a timeout (boot-menu), recoveryenabled Yes without bootstatuspolicy
# (repair-loop). Each fix repairs its own and leaves the others.
BOOT_OPTIONS = dict(safeboot=1, safeboot_alternateshell=True, bcd_timeout=None, ignore_failures=False)
SYSTEM_BROKEN = dict(rdp_broken=True, servicing_pending=True, crowdstrike_291=True, service_exe_missing=True,
                     logon_broken=True)


@dataclass(frozen=True)
class Sample:
    base: str
    kind: str                                     # windows | data | other
    description: str
    windows: WindowsOptions | None = None
    options: dict = field(default_factory=dict)   # non-Windows builders' options


def _win(base: str, description: str, **kw) -> Sample:
    return Sample(base, "windows", description, WindowsOptions(**kw))


_G1 = dict(generation="gen1", product="Windows Server 2016 Datacenter", build=14393)

CATALOGUE: dict[str, Sample] = {s.base: s for s in (
    _win("gen1-broken", "Gen1 (MBR) Windows Server 2016 in the 0xC0000017 broken state", **_G1, **BROKEN),
    _win("gen1-healthy", "Gen1 (MBR) Windows Server 2016, healthy (the article's end state)", **_G1),
    _win("gen2-broken", "Gen2 (GPT/UEFI) Windows Server 2019 in the 0xC0000017 broken state", **BROKEN),
    _win("gen2-healthy", "Gen2 (GPT/UEFI) Windows Server 2019, healthy (the article's end state)"),
    Sample("data-disk", "data", "GPT data disk: MSR + NTFS 'Data' (E: in the OS samples' MountedDevices)",
           options={"pagefile_mib": 0}),
    Sample("data-disk-pagefile", "data", "the data disk (same GUIDs: E:) with an 8 MiB \\pagefile.sys",
           options={"pagefile_mib": 8}),
    Sample("no-windows", "other", "MBR disk with an NTFS and an ext4 partition, no Windows"),
    Sample("empty", "other", "64 MiB of zeros, no partition table"),
    _win("bitlocker", "Gen2 layout whose C: carries the BitLocker signature -FVE-FS-", bitlocker=True,
         **{**BROKEN, "pagefile_mib": 0, "download_cache_mib": 0, "cleanup_files": False}),
    _win("hibernated", "Gen2 broken sample with a hibernated C: (hiberfil.sys 'HIBR')", hibernated=True,
         **{**BROKEN, "pagefile_mib": 4, "download_cache_mib": 0}),
    _win("crashed", "Gen2 broken sample whose C: Windows did not dismount (unclean v2.0 NTFS log, no hiberfil)",
         ntfs_stamp="unclean", **{**BROKEN, "pagefile_mib": 4, "download_cache_mib": 0}),
    _win("fast-startup", "Gen2 broken sample shut down with Fast Startup (hiberfil 'HIBR', HiberbootEnabled 1)",
         hibernated=True, hiberboot=True, ntfs_stamp="unclean", **{**BROKEN, "pagefile_mib": 4, "download_cache_mib": 0}),
    _win("chkdsk-scheduled", "Gen2 broken sample whose C: is marked dirty (chkdsk at the next boot), log clean",
         ntfs_stamp="dirty", **{**BROKEN, "pagefile_mib": 4, "download_cache_mib": 0}),
    _win("two-windows", "Gen2 disk with two Windows volumes (choose with --root)", second_windows=True,
         c_size_mib=256),
    _win("dirty-hive", "Gen2 broken sample whose SYSTEM hive is dirty with pending .LOG1/.LOG2",
         dirty_hive=True, **{**BROKEN, "c_size_mib": None, "pagefile_mib": 4, "download_cache_mib": 0}),
    # --- system scenarios: inaccessible-boot-device, driver, registry, last-known-good ---
    # ControlSet001 (current) in the 0x7B state with a third-party boot filter whose file is gone;
    # ControlSet002 (last known good) as Windows ships it.
    _win("gen1-boot-broken", "Gen1 Windows Server 2016 whose current control set cannot reach its disk (0x7B)",
         **_G1, boot_stack_broken=True),
    _win("gen2-boot-broken", "Gen2 Windows Server 2019 whose current control set cannot reach its disk (0x7B)",
         boot_stack_broken=True),
    # SYSTEM damaged (first hive bin), RegBack holding good copies of every hive.
    _win("gen2-registry-broken", "Gen2 Windows Server 2019 with a corrupt SYSTEM hive and a filled RegBack",
         corrupt_hive="SYSTEM", regback=True),
    # --- boot configuration scenarios (boot-config, safe-mode, boot-menu, repair-loop): healthy
    # apart from the BCD fault each names.
    _win("gen1-boot-config", "Gen1 whose default loader is on another disk and whose default names a "
         "deleted entry (0xC000000E)", **_G1, loader_on_other_disk=True, default_deleted=True),
    _win("gen2-boot-config", "Gen2 whose default loader is on another disk and whose default names a "
         "deleted entry (0xC000000E)", loader_on_other_disk=True, default_deleted=True),
    _win("gen1-no-bootmgr", "Gen1 whose BCD has no {bootmgr} (0xC0000034)", **_G1, bootmgr_missing=True),
    _win("gen2-no-bootmgr", "Gen2 whose BCD has no {bootmgr} (0xC0000034)", bootmgr_missing=True),
    _win("gen1-boot-options", "Gen1 stuck in Safe Mode, at the boot menu and in Automatic Repair", **_G1,
         **BOOT_OPTIONS),
    _win("gen2-boot-options", "Gen2 stuck in Safe Mode, at the boot menu and in Automatic Repair",
         **BOOT_OPTIONS),
    # rebuild-bcd: the store the firmware reads is missing or corrupt; C: holds what bcdboot copies.
    _win("gen2-nobcd", "Gen2 healthy sample whose \\EFI\\Microsoft\\Boot\\BCD is missing", bcd_state="missing",
         boot_sources=True),
    _win("gen2-badbcd", "Gen2 healthy sample whose BCD store is corrupt (hbins overwritten)", bcd_state="corrupt",
         boot_sources=True),
    _win("gen1-nobcd", "Gen1 healthy sample whose \\Boot\\BCD is missing", bcd_state="missing", boot_sources=True,
         **_G1),
    _win("gen1-badbcd", "Gen1 sample with a corrupt \\Boot\\BCD and no active partition", bcd_state="corrupt",
         boot_sources=True, active=False, **_G1),
    # --- remote-access, pending-updates, crowdstrike-291: each broken at once, else healthy ---
    _win("gen2-system-broken", "Gen2 Windows Server 2019: RDP blocked, updates stuck pending, faulty CrowdStrike "
         "channel file 291", **SYSTEM_BROKEN),
    _win("gen1-system-broken", "Gen1 Windows Server 2016: RDP blocked, updates stuck pending, faulty CrowdStrike "
         "channel file 291", **_G1, **SYSTEM_BROKEN),
)}


def names() -> list[str]:
    """Every sample name that `sample_path` / the `sample_disk` fixture accept."""
    return [f"{b}.{f}" for b in CATALOGUE for f in FORMATS] + list(SPECIAL)


def split_name(name: str) -> tuple[str, str]:
    """"gen2-broken.vhd" -> ("gen2-broken", "vhd"); special files -> (name, "special")."""
    if name in SPECIAL:
        return name, "special"
    base, dot, fmt = name.rpartition(".")
    if not dot or base not in CATALOGUE or fmt not in FORMATS:
        raise KeyError(f"unknown sample {name!r}; known: {', '.join(names())}")
    return base, fmt


def options(base: str) -> WindowsOptions:
    sample = CATALOGUE[base]
    if sample.windows is None:
        raise KeyError(f"{base} is not a Windows sample")
    return sample.windows


def identity(base: str):
    """The disk identity (MBR signature + offsets, or GPT GUIDs) the sample's hives name."""
    from rescue.samples.disks import ids_for

    return ids_for(base)


def sample_path(name: str) -> Path:
    """The cached image for `name` (built on first use). Treat it as read-only: copy it first
    (tests: the `sample_disk` fixture) before anything may write to it."""
    from rescue.samples.cache import sample_path as _path

    return _path(name)


__all__ = ["CATALOGUE", "FORMATS", "SPECIAL", "BROKEN_PFNS", "WindowsOptions", "Sample", "names",
           "split_name", "options", "identity", "sample_path"]
