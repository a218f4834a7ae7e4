"""What the sample disks hold: identities, layouts, volumes and files (specifications only).

Layouts follow what Windows Setup / Azure make: Gen2 GPT = ESP 100 MiB (FAT32), MSR 16 MiB, C:;
Gen1 MBR = active "System Reserved" NTFS 100 MiB, C:. Identities (MBR signatures, GPT GUIDs) are
derived from the sample's name, so the hives can name the partitions before the disk exists and
tests know them without reading the images. rescue.samples.build turns these specifications into
images.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from rescue.samples import CATALOGUE, Sample, WindowsOptions
from rescue.samples import bcd_store as B
from rescue.samples import hives as H

MiB = 1 << 20
SECTORS_PER_MIB = 2048
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MSR_TYPE = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
BASIC_DATA_TYPE = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
BITLOCKER_OEM_ID = b"-FVE-FS-"
# The Azure temporary ("resource") disk, D: in every OS sample; never attached to a sample set.
TEMP_DISK_SIGNATURE = 0x7E3A91C4
TEMP_DISK_OFFSET = MiB
# C:'s GPT GUID in realdata's SYSTEM_B MountedDevices ("DMIO:ID:" entry for \DosDevices\C:).
SYSTEM_B_C_GUID = "09931f21-7faf-44a9-81d8-1e73c14b9eaf"
REALDATA = Path(os.environ.get("RESCUE_REALDATA") or
                Path(__file__).resolve().parents[2].parent / "shared" / "realdata")
SYSTEM_B = "system/regipy_win10_gpt_dirty_SYSTEM_B"

# --- identities ----------------------------------------------------------------------------------
def _guid(base: str, role: str) -> str:
    """A stable GUID shaped like the random (version 4) ones Windows gives disks and partitions."""
    digest = hashlib.sha256(f"rescue-sample/{base}/{role}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _signature(base: str) -> int:
    return int.from_bytes(hashlib.sha256(f"rescue-sample/{base}".encode()).digest()[:4], "little") | 1


@dataclass(frozen=True)
class DataDiskIds:
    disk_guid: str
    msr_guid: str
    data_guid: str


def real_system_b() -> Path | None:
    p = REALDATA / SYSTEM_B
    ok = p.is_file() and Path(f"{p}.LOG1").is_file() and Path(f"{p}.LOG2").is_file()
    return p if ok else None


def ids_for(base: str):
    """DiskIds (Windows samples) or DataDiskIds (data disks) of a catalogue base, deterministic."""
    sample = CATALOGUE[base]
    if sample.kind == "data":
        # Both data-disk variants are the same disk as far as Windows can tell (E:).
        return DataDiskIds(_guid("data-disk", "disk"), _guid("data-disk", "msr"), _guid("data-disk", "data"))
    if sample.windows is None:
        raise KeyError(f"{base} has no Windows identity")
    o = sample.windows
    if o.generation == "gen1":
        return H.DiskIds("gen1", mbr_signature=_signature(base), system_offset=MiB,
                         os_offset=(1 + 100) * MiB)
    os_guid = SYSTEM_B_C_GUID if (o.dirty_hive and real_system_b()) else _guid(base, "os")
    return H.DiskIds("gen2", disk_guid=_guid(base, "disk"), esp_guid=_guid(base, "esp"), os_guid=os_guid)


def second_os_guid(base: str) -> str:
    return _guid(base, "os2")


def default_ids(generation: str) -> H.DiskIds:
    return ids_for(f"{generation}-broken")


def mounted_devices(base: str, *, c_guid: str | None = None, seed: str | None = None) -> list[tuple[str, bytes]]:
    """MountedDevices of an OS sample: C: and its system volume on this disk, D: on the Azure
    temporary disk, E: on the data disk; with `\\??\\Volume{...}` entries as Windows keeps them."""
    ids = ids_for(base)
    c = H.gpt_mounted_device(c_guid) if c_guid else ids.os_mounted_device()
    temp = H.mbr_mounted_device(TEMP_DISK_SIGNATURE, TEMP_DISK_OFFSET)
    data = H.gpt_mounted_device(ids_for("data-disk").data_guid)
    return [("C:", c), (H.volume_name(f"{seed or base}/C"), c),
            (H.volume_name(f"{base}/system"), ids.system_mounted_device()),
            ("D:", temp), (H.volume_name("temp-disk"), temp),
            ("E:", data), (H.volume_name("data-disk"), data)]


# --- specifications ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileSpec:
    path: str                     # on the volume, Windows spelling: "\\Windows\\Temp\\a.tmp"
    data: bytes = b""
    host: Path | None = None      # upload this host file instead of `data`
    allocate: int = 0             # or allocate this many bytes (zeros, not sparse)
    mtime: int | None = None      # last write time (seconds since the epoch, UTC); None: the build's fixed time


@dataclass(frozen=True)
class PartSpec:
    start_mib: int
    size_mib: int | None          # None: to the end of the disk, less 1 MiB
    fs: str | None                # ntfs, ext4, fat32, or None (MSR)
    label: str | None = None
    mbr_type: int | None = None
    bootable: bool = False
    gpt_type: str | None = None
    gpt_guid: str | None = None
    name: str | None = None
    dirs: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    bitlocker: bool = False       # stamp "-FVE-FS-" into the boot sector afterwards
    ntfs_stamp: str | None = None  # "unclean" / "dirty": stamped on the host afterwards (ntfs_states)
    expect_state: str = "ok"      # ntfs-3g's verdict expected at the end (e.g. "hibernated")


@dataclass(frozen=True)
class DiskSpec:
    name: str
    size_mib: int
    table: str | None             # gpt, mbr, None (blank disk)
    partitions: tuple[PartSpec, ...] = ()
    mbr_signature: int | None = None
    disk_guid: str | None = None

    def end_sector(self, part: PartSpec) -> int:
        if part.size_mib is None:
            return (self.size_mib - 1) * SECTORS_PER_MIB - 1
        return (part.start_mib + part.size_mib) * SECTORS_PER_MIB - 1


def _exe(name: str, size: int = 4096) -> bytes:
    """A dummy PE file: enough for "the file is there", nothing that runs."""
    head = b"MZ\x90\x00" + f" rescue sample placeholder for {name} ".encode()
    return head + bytes(size - len(head))


def _text(s: str) -> bytes:
    return s.replace("\n", "\r\n").encode()


CLEANUP_FILES = _CLEANUP_FILES = (
    # Disk Cleanup / Storage Sense categories, a few small files each.
    ("\\Windows\\Temp\\MpCmdRun.log", 24 * 1024),
    ("\\Windows\\Temp\\tmp4F2A.tmp", 64 * 1024),
    ("\\Windows\\Temp\\WindowsAzure\\install.log", 8 * 1024),
    ("\\Users\\azureuser\\AppData\\Local\\Temp\\~DF3C1A.tmp", 32 * 1024),
    ("\\ProgramData\\Microsoft\\Windows\\WER\\ReportQueue\\AppCrash_WaAppAgent_1f2e\\Report.wer", 12 * 1024),
    ("\\ProgramData\\Microsoft\\Windows\\WER\\ReportArchive\\AppCrash_svchost_7c3d\\Report.wer", 12 * 1024),
    ("\\Windows\\Minidump\\112426-10234-01.dmp", 256 * 1024),
    ("\\Windows\\Logs\\CBS\\CBS.log", 128 * 1024),
    ("\\Windows\\SoftwareDistribution\\DeliveryOptimization\\Cache\\a1b2c3.dat", 64 * 1024),
    ("\\Users\\azureuser\\AppData\\Local\\Microsoft\\Windows\\Explorer\\thumbcache_256.db", 48 * 1024),
)


# The 0x7B state of the boot-broken samples (ControlSet001 only): the storage driver demand start,
# vmbus overridden to demand start, a DiskDrive upper filter left behind by an uninstalled backup
# agent (no service key) and a third-party volume filter whose .sys is gone.
BOOT_BROKEN_FILE = "contosoflt.sys"
BOOT_BROKEN_SERVICES = (
    H.ServiceSpec("storvsc", 3, 1, "Base", "System32\\drivers\\storvsc.sys", 3),
    H.ServiceSpec("vmbus", 0, 1, "System Bus Extender", "System32\\drivers\\vmbus.sys", 3,
                  start_override=(("0", 3),)),
    H.ServiceSpec("contosoflt", 0, 1, "FSFilter Bottom", f"System32\\drivers\\{BOOT_BROKEN_FILE}", 1),
)
BOOT_BROKEN_FILTERS = {
    H.DISK_DRIVE_CLASS: H.ClassFilters(("partmgr", "cbtfilter"), ("EhStorClass",), "DiskDrive"),
    H.VOLUME_CLASS: H.ClassFilters(("volsnap",), ("fvevol", "contosoflt", "iorate"), "Volume"),
}


def system_hive_options(base: str, *, c_guid: str | None = None, seed: str | None = None) -> dict:
    """The build_system_hive options of a Windows sample's SYSTEM (also used by the
    `sample_hives` fixture, so unit tests get the very hive the disk holds)."""
    o = CATALOGUE[base].windows
    assert o is not None, f"{base} is not a Windows sample"
    seed = seed or base
    extra: dict = {}
    if o.boot_stack_broken:
        extra = dict(set_services={1: BOOT_BROKEN_SERVICES}, set_class_filters={1: BOOT_BROKEN_FILTERS})
    if o.service_exe_missing:                   # driver: service-image-missing
        from rescue.samples.system_state import MISSING_EXE_SERVICES

        services = dict(extra.get("set_services", {}))
        for n in o.control_sets:
            services[n] = (*services.get(n, ()), *MISSING_EXE_SERVICES)
        extra["set_services"] = services
    if o.logon_broken:                          # logon: BootExecute and the setup-mode hook
        from rescue.samples.system_state import BROKEN_BOOT_EXECUTE, BROKEN_SETUP

        extra.update(boot_execute={1: BROKEN_BOOT_EXECUTE}, setup=BROKEN_SETUP)
    return dict(**extra, current=o.current, control_sets=o.control_sets,
                mounted_devices=mounted_devices(base, c_guid=c_guid, seed=seed),
                pagefile_on=o.pagefile_on, crash_dumps=o.crash_dumps, nmi=o.nmi,
                whea_bad_pages=o.whea_bad_pages, hiberboot=o.hiberboot,
                computer_name=f"WINSRV-{hashlib.sha1(seed.encode()).hexdigest()[:6].upper()}",
                boot_partition=3 if o.generation == "gen2" else 2,
                remote_access=_remote_access(o))


def _remote_access(o: WindowsOptions | None):
    from rescue.samples import system_state as S

    return S.BROKEN_RDP if o is not None and o.rdp_broken else S.RemoteAccess()


def bcd_hive_options(base: str) -> dict:
    """The build_bcd_hive options of a Windows sample's BCD store."""
    o = CATALOGUE[base].windows
    if o is None:
        raise KeyError(f"{base} is not a Windows sample")
    ids = ids_for(base)
    extra: tuple = ()
    if o.second_windows:
        extra = ((B.SECOND_LOADER_GUID, "Windows Server 2016",
                  H.gpt_partition_device(second_os_guid(base), ids.disk_guid)),)
    faults: dict = {}
    if o.loader_on_other_disk:
        faults["loader_device"] = other_disk_device(base)
    if o.default_deleted:
        faults["default_guid"] = DELETED_LOADER_GUID
    return dict(generation=o.generation, disk=ids, bad_memory_pfns=o.bad_memory_pfns, ems=o.ems,
                bootems=o.bootems, bootmgr_bootems=o.bootmgr_bootems, emssettings=o.emssettings,
                timeout=o.bcd_timeout, extra_loaders=extra, bootmgr=not o.bootmgr_missing,
                safeboot=o.safeboot, safeboot_alternateshell=o.safeboot_alternateshell,
                ignore_failures=o.ignore_failures, **faults)


# The entry a boot-config sample's default names: it has no object (deleted).
DELETED_LOADER_GUID = "{0ee1c3a9-9f4b-11ee-8c1a-00155d010203}"


def other_disk_device(base: str) -> bytes:
    """A partition device naming C: of another disk: on Gen1 the same offset on a disk with another
    signature (what a clone or a disk-signature change leaves), on Gen2 other disk/partition GUIDs."""
    ids = ids_for(base)
    if ids.generation == "gen1":
        return H.mbr_partition_device(_signature(base + "/other-disk"), ids.os_offset)
    return H.gpt_partition_device(_guid(base, "other-os"), _guid(base, "other-disk"))


def _windows_volume(base: str, o: WindowsOptions, hivedir: Path, *, product: str, build: int,
                    c_guid: str | None, primary: bool, seed: str) -> tuple[tuple[str, ...], tuple[FileSpec, ...]]:
    """Folders and files of one Windows volume (C:), hives built into `hivedir`."""
    hivedir.mkdir(parents=True, exist_ok=True)
    gen2 = o.generation == "gen2"
    cfg = "\\Windows\\System32\\config"
    system = hivedir / "SYSTEM"
    logs: list[FileSpec] = []
    real = real_system_b() if (o.dirty_hive and primary) else None
    if real:
        shutil.copyfile(real, system)
        logs = [FileSpec(f"{cfg}\\SYSTEM.LOG1", host=Path(f"{real}.LOG1")),
                FileSpec(f"{cfg}\\SYSTEM.LOG2", host=Path(f"{real}.LOG2"))]
    else:
        H.build_system_hive(system, **system_hive_options(base, c_guid=c_guid, seed=seed))
        if o.dirty_hive and primary:
            H.make_dirty(system)
            H.synthetic_log(system, hivedir / "SYSTEM.LOG1")
            logs = [FileSpec(f"{cfg}\\SYSTEM.LOG1", host=hivedir / "SYSTEM.LOG1"),
                    FileSpec(f"{cfg}\\SYSTEM.LOG2")]
        else:
            logs = [FileSpec(f"{cfg}\\SYSTEM.LOG1"), FileSpec(f"{cfg}\\SYSTEM.LOG2")]
    from rescue.samples.system_state import BROKEN_USERINIT

    H.build_software_hive(hivedir / "SOFTWARE", product=product, build=build,
                          release_id={14393: "1607", 17763: "1809"}.get(build),
                          rdp_policy_deny=1 if o.rdp_broken and primary else None,
                          servicing_pending=o.servicing_pending and primary,
                          userinit=BROKEN_USERINIT if o.logon_broken and primary else None)
    from rescue.hive import values as V
    H.build_plain_hive(hivedir / "SAM", root_name="SAM", file_name="SAM",
                       keys=["SAM\\Domains\\Account\\Users\\Names\\azureuser", "SAM\\Domains\\Builtin"])
    H.build_plain_hive(hivedir / "SECURITY", root_name="SECURITY", file_name="SECURITY",
                       keys=["Policy\\Accounts", "Policy\\Secrets", "RXACT"])
    H.build_plain_hive(hivedir / "DEFAULT", root_name="ROOT", file_name="DEFAULT",
                       keys=["Control Panel\\International"],
                       values=[("Control Panel\\International", "LocaleName", V.REG_SZ, V.encode_sz("en-US"))])
    H.build_user_hive(hivedir / "NTUSER.DAT")
    drivers = _driver_standins(system, omit={BOOT_BROKEN_FILE} if o.boot_stack_broken else set())
    regback = []
    if o.regback and primary:
        regback = [FileSpec(f"{cfg}\\RegBack\\{n}", (hivedir / n).read_bytes())
                   for n in ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT")]
    if o.corrupt_hive and primary:
        damage_hbin(hivedir / o.corrupt_hive)

    ext = "efi" if gen2 else "exe"
    dirs = ("\\Windows\\System32\\config\\RegBack", "\\Windows\\System32\\drivers", "\\Windows\\Temp",
            "\\Program Files", "\\Program Files (x86)", "\\ProgramData", "\\Users\\Public",
            "\\Users\\Default", "\\Users\\azureuser\\Desktop", "\\Users\\azureuser\\AppData\\Local\\Temp",
            "\\WindowsAzure\\Logs")
    files = [FileSpec(f"{cfg}\\SYSTEM", host=system), *logs,
             FileSpec(f"{cfg}\\SOFTWARE", host=hivedir / "SOFTWARE"),
             FileSpec(f"{cfg}\\SOFTWARE.LOG1"), FileSpec(f"{cfg}\\SOFTWARE.LOG2"),
             FileSpec(f"{cfg}\\SAM", host=hivedir / "SAM"),
             FileSpec(f"{cfg}\\SECURITY", host=hivedir / "SECURITY"),
             FileSpec(f"{cfg}\\DEFAULT", host=hivedir / "DEFAULT"),
             *regback, *drivers,
             FileSpec("\\Users\\azureuser\\NTUSER.DAT", host=hivedir / "NTUSER.DAT"),
             FileSpec(f"\\Windows\\System32\\winload.{ext}", _exe(f"winload.{ext}")),
             FileSpec(f"\\Windows\\System32\\winresume.{ext}", _exe(f"winresume.{ext}")),
             FileSpec("\\Windows\\System32\\ntoskrnl.exe", _exe("ntoskrnl.exe")),
             # The host of the svchost services the hives name (TermService, Dhcp): a Windows volume
             # has it, and the automatic-start service check looks for it.
             FileSpec("\\Windows\\System32\\svchost.exe", _exe("svchost.exe")),
             # What Winlogon and Session Manager start before the logon screen (logon's checks).
             FileSpec("\\Windows\\System32\\userinit.exe", _exe("userinit.exe")),
             FileSpec("\\Windows\\System32\\autochk.exe", _exe("autochk.exe")),
             FileSpec("\\Windows\\System32\\hal.dll", _exe("hal.dll")),
             FileSpec("\\Windows\\explorer.exe", _exe("explorer.exe")),
             FileSpec("\\Users\\azureuser\\Desktop\\notes.txt",
                      _text(f"{product} (build {build}) sample volume built by rescue.samples.\n"))]
    from rescue.samples.system_state import volume_files

    files += volume_files(o if primary else WindowsOptions(), hivedir)
    if o.pagefile_mib and primary:
        files.append(FileSpec("\\pagefile.sys", allocate=o.pagefile_mib * MiB))
    if o.download_cache_mib and primary:
        files.append(FileSpec("\\Windows\\SoftwareDistribution\\Download\\9c1f3b7e2d\\"
                              "windows10.0-kb5031361-x64.cab", allocate=o.download_cache_mib * MiB))
    if o.cleanup_files and primary:
        files += [FileSpec(p, bytes([0x5A]) * n) for p, n in _CLEANUP_FILES]
    if o.boot_sources and primary:
        files += _boot_sources(hivedir)
    if o.hibernated and primary:
        # ntfs-3g reads the first 4 KiB of \hiberfil.sys and refuses a read-write mount when they
        # start "hibr"/"HIBR" (ntfs-3g libntfs-3g/volume.c, ntfs_volume_check_hiberfile).
        files.append(FileSpec("\\hiberfil.sys", b"HIBR" + bytes(64 * 1024 - 4)))
    return dirs, tuple(files)


def damage_hbin(path: Path) -> None:
    """Break a hive the way a torn write does: the first hive bin's header loses its "hbin"
    signature (REGF format: every 4 KiB-aligned bin starts "hbin"), so neither Windows nor hivex
    will load it."""
    data = bytearray(path.read_bytes())
    data[4096:4100] = b"\0\0\0\0"
    path.write_bytes(bytes(data))


def _driver_standins(system: Path, *, omit: set[str]) -> list[FileSpec]:
    """A stand-in file for every boot/system-start driver image the SYSTEM hive names (any control
    set) under \\Windows, except the file names in `omit` (what a sample wants missing), and ntfs.sys."""
    from rescue.hive import Hive

    paths = {"\\windows\\system32\\drivers\\ntfs.sys": "\\Windows\\System32\\drivers\\ntfs.sys"}
    h = Hive(system)
    try:
        for cs in (c for c in h.child_names("") if c.lower().startswith("controlset")):
            for name in h.child_names(f"{cs}\\Services"):
                key = f"{cs}\\Services\\{name}"
                start, typ = h.get_value(key, "Start"), h.get_value(key, "Type")
                if start not in (0, 1) or typ not in (1, 2):
                    continue
                image = str(h.get_value(key, "ImagePath") or f"System32\\drivers\\{name}.sys")
                low = image.lower().lstrip("\\")
                if low.startswith("systemroot\\"):
                    image, low = image.lstrip("\\")[len("systemroot\\"):], low[len("systemroot\\"):]
                if not low.startswith("system32\\"):
                    continue            # \\??\\C:\\... images: none in the samples' own hives
                full = "\\Windows\\" + image
                if full.split("\\")[-1].lower() not in {o.lower() for o in omit}:
                    paths.setdefault(full.lower(), full)
    finally:
        h.close()
    return [FileSpec(p, _exe(p.split("\\")[-1])) for p in sorted(paths.values())]


def _boot_sources(hivedir: Path) -> list[FileSpec]:
    """What bcdboot copies from C: (small stand-ins with the real names) and the BCD-Template it
    makes the store from (rescue.samples.bcd_store.build_bcd_template, byte-equal to Windows 10's)."""
    template = B.build_bcd_template(hivedir / "BCD-Template")
    b = "\\Windows\\Boot"
    return [FileSpec(f"{b}\\EFI\\bootmgfw.efi", _exe("bootmgfw.efi")),
            FileSpec(f"{b}\\EFI\\bootmgr.efi", _exe("bootmgr.efi")),
            FileSpec(f"{b}\\EFI\\memtest.efi", _exe("memtest.efi")),
            FileSpec(f"{b}\\EFI\\en-US\\bootmgfw.efi.mui", _exe("bootmgfw.efi.mui", 2048)),
            FileSpec(f"{b}\\PCAT\\bootmgr", _exe("bootmgr", 8192)),
            FileSpec(f"{b}\\PCAT\\memtest.exe", _exe("memtest.exe")),
            FileSpec(f"{b}\\PCAT\\en-US\\bootmgr.exe.mui", _exe("bootmgr.exe.mui", 2048)),
            FileSpec(f"{b}\\Fonts\\segmono_boot.ttf", _exe("segmono_boot.ttf", 1024)),
            FileSpec("\\Windows\\System32\\config\\BCD-Template", host=template)]


def _store_files(folder: str, bcd: Path, state: str) -> list[FileSpec]:
    """The store and its logs as the sample's state asks: there, missing, or corrupt (the base
    block kept, every hbin after the first overwritten: hivex refuses it)."""
    if state == "missing":
        return []
    if state == "corrupt":
        raw = bytearray(bcd.read_bytes())
        raw[0x2000:] = bytes([0xA5]) * (len(raw) - 0x2000)
        bad = bcd.with_name("BCD.corrupt")
        bad.write_bytes(bytes(raw))
        bcd = bad
    return [FileSpec(f"{folder}\\BCD", host=bcd), FileSpec(f"{folder}\\BCD.LOG"), FileSpec(f"{folder}\\BCD.LOG1"),
            FileSpec(f"{folder}\\BCD.LOG2")]


def _esp_files(bcd: Path, state: str = "ok") -> tuple[tuple[str, ...], tuple[FileSpec, ...]]:
    b = "\\EFI\\Microsoft\\Boot"
    return (f"{b}\\en-US", "\\EFI\\Boot"), (
        *_store_files(b, bcd, state), FileSpec(f"{b}\\bootmgfw.efi", _exe("bootmgfw.efi")),
        FileSpec(f"{b}\\bootmgr.efi", _exe("bootmgr.efi")), FileSpec(f"{b}\\memtest.efi", _exe("memtest.efi")),
        FileSpec("\\EFI\\Boot\\bootx64.efi", _exe("bootx64.efi")))


def _system_reserved_files(bcd: Path, state: str = "ok") -> tuple[tuple[str, ...], tuple[FileSpec, ...]]:
    return ("\\Boot\\en-US",), (
        *_store_files("\\Boot", bcd, state), FileSpec("\\bootmgr", _exe("bootmgr", 8192)),
        FileSpec("\\Boot\\memtest.exe", _exe("memtest.exe")))


def windows_spec(sample: Sample, workdir: Path) -> DiskSpec:
    base, o = sample.base, sample.windows
    if o is None:
        raise ValueError(f"{base} is not a Windows sample")
    ids = ids_for(base)
    hivedir = workdir / base
    bcd = hivedir / "BCD"
    hivedir.mkdir(parents=True, exist_ok=True)
    B.build_bcd_hive(bcd, **bcd_hive_options(base))
    cdirs, cfiles = _windows_volume(base, o, hivedir / "C", product=o.product, build=o.build,
                                    c_guid=None, primary=True, seed=base)
    c_state = "hibernated" if o.hibernated else "ok"
    if o.generation == "gen1":
        sdirs, sfiles = _system_reserved_files(bcd, o.bcd_state)
        mbr_parts = (PartSpec(1, 100, "ntfs", "System Reserved", mbr_type=0x07, bootable=o.active,
                              dirs=sdirs, files=sfiles),
                     PartSpec(101, o.c_size_mib, "ntfs", "Windows", mbr_type=0x07, dirs=cdirs, files=cfiles,
                              bitlocker=o.bitlocker, expect_state=c_state, ntfs_stamp=o.ntfs_stamp))
        return DiskSpec(base, o.disk_mib, "mbr", mbr_parts, mbr_signature=ids.mbr_signature)
    edirs, efiles = _esp_files(bcd, o.bcd_state)
    parts = [PartSpec(1, 100, "fat32", None, gpt_type=ESP_TYPE, gpt_guid=ids.esp_guid,
                      name="EFI system partition", dirs=edirs, files=efiles),
             PartSpec(101, 16, None, gpt_type=MSR_TYPE, gpt_guid=_guid(base, "msr"),
                      name="Microsoft reserved partition"),
             PartSpec(117, o.c_size_mib, "ntfs", "Windows", gpt_type=BASIC_DATA_TYPE, gpt_guid=ids.os_guid,
                      name="Basic data partition", dirs=cdirs, files=cfiles, bitlocker=o.bitlocker,
                      expect_state=c_state, ntfs_stamp=o.ntfs_stamp)]
    if o.second_windows:
        d2, f2 = _windows_volume(base, o, hivedir / "W2", product="Windows Server 2016 Datacenter",
                                 build=14393, c_guid=second_os_guid(base), primary=False,
                                 seed=base + "/second")
        parts.append(PartSpec(117 + (o.c_size_mib or 0), None, "ntfs", "Windows2", gpt_type=BASIC_DATA_TYPE,
                              gpt_guid=second_os_guid(base), name="Basic data partition", dirs=d2, files=f2))
    return DiskSpec(base, o.disk_mib, "gpt", tuple(parts), disk_guid=ids.disk_guid)


def data_spec(sample: Sample) -> DiskSpec:
    ids = ids_for(sample.base)
    files = [FileSpec("\\Backups\\sql-2024-11-20.bak", bytes([0x42]) * 128 * 1024),
             FileSpec("\\readme.txt", _text("Data disk of the rescue samples (E:).\n"))]
    if sample.options.get("pagefile_mib"):
        files.append(FileSpec("\\pagefile.sys", allocate=sample.options["pagefile_mib"] * MiB))
    parts = (PartSpec(1, 16, None, gpt_type=MSR_TYPE, gpt_guid=ids.msr_guid, name="Microsoft reserved partition"),
             PartSpec(17, None, "ntfs", "Data", gpt_type=BASIC_DATA_TYPE, gpt_guid=ids.data_guid,
                      name="Basic data partition", dirs=("\\Logs",), files=tuple(files)))
    return DiskSpec(sample.base, 512, "gpt", parts, disk_guid=ids.disk_guid)


def no_windows_spec(sample: Sample) -> DiskSpec:
    parts = (PartSpec(1, 128, "ntfs", "Data", mbr_type=0x07, dirs=("\\Documents",),
                      files=(FileSpec("\\Documents\\readme.txt", _text("No Windows here.\n")),)),
             PartSpec(129, None, "ext4", "linux", mbr_type=0x83, dirs=("/home/user",),
                      files=(FileSpec("/home/user/notes.txt", b"an ext4 volume\n"),)))
    return DiskSpec(sample.base, 256, "mbr", parts, mbr_signature=_signature(sample.base))


def spec_for(sample: Sample, workdir: Path) -> DiskSpec:
    if sample.kind == "windows":
        return windows_spec(sample, workdir)
    if sample.kind == "data":
        return data_spec(sample)
    if sample.base == "no-windows":
        return no_windows_spec(sample)
    if sample.base == "empty":
        return DiskSpec("empty", 64, None)
    raise KeyError(sample.base)
