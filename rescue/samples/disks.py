"""Build the sample disk images: tables and filesystems on the host, NTFS contents in ONE appliance.

Order of work (build_raw_images):
1. host: sparse raw files; the hives of every Windows sample (rescue.samples.hives) in a work
   folder; partition tables with known GUIDs / MBR signatures (sfdisk); NTFS (mkntfs into a scratch
   file, copied in), ext4 with its files (mke2fs -d) and FAT32 ESPs with their files (mkfs.fat
   --offset + mtools: libguestfs' mkfs cannot force FAT32, and Windows formats its ESP FAT32).
   Partitioning inside a TCG appliance cost about a minute per disk (parted/sgdisk + udev settle);
   these host tools take milliseconds and touch nothing but the image files.
2. one appliance over every disk with NTFS contents (write=True): folders and files (hives
   uploaded), pagefile/filler files really allocated; checks (identities read back, ntfs-3g's verdict
   "hibernated" on the hibernated sample, "ok" elsewhere);
3. host: the BitLocker OEM id stamped into the bitlocker sample's C: boot sector.
Other formats come from `convert` (qemu-img, host). Layouts follow what Windows Setup / Azure make:
Gen2 GPT = ESP 100 MiB, MSR 16 MiB, C:; Gen1 MBR = active "System Reserved" NTFS 100 MiB, C:.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rescue.disk.formats import DiskImage
from rescue.samples import CATALOGUE, Sample, WindowsOptions
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

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A sample came out different from its specification (a builder bug, not user input)."""


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


_CLEANUP_FILES = (
    # Disk Cleanup / Storage Sense categories (issue 6), a few small files each.
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


def system_hive_options(base: str, *, c_guid: str | None = None, seed: str | None = None) -> dict:
    """The build_system_hive options of a Windows sample's SYSTEM (also used by the
    `sample_hives` fixture, so unit tests get the very hive the disk holds)."""
    o = CATALOGUE[base].windows
    seed = seed or base
    return dict(current=o.current, control_sets=o.control_sets,
                mounted_devices=mounted_devices(base, c_guid=c_guid, seed=seed),
                pagefile_on=o.pagefile_on, crash_dumps=o.crash_dumps, nmi=o.nmi,
                whea_bad_pages=o.whea_bad_pages,
                computer_name=f"WINSRV-{hashlib.sha1(seed.encode()).hexdigest()[:6].upper()}",
                boot_partition=3 if o.generation == "gen2" else 2)


def bcd_hive_options(base: str) -> dict:
    """The build_bcd_hive options of a Windows sample's BCD store."""
    o = CATALOGUE[base].windows
    ids = ids_for(base)
    extra = ()
    if o.second_windows:
        extra = ((H.SECOND_LOADER_GUID, "Windows Server 2016",
                  H.gpt_partition_device(second_os_guid(base), ids.disk_guid)),)
    return dict(generation=o.generation, disk=ids, bad_memory_pfns=o.bad_memory_pfns, ems=o.ems,
                bootems=o.bootems, bootmgr_bootems=o.bootmgr_bootems, emssettings=o.emssettings,
                timeout=5, extra_loaders=extra)


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
    H.build_software_hive(hivedir / "SOFTWARE", product=product, build=build,
                          release_id={14393: "1607", 17763: "1809"}.get(build))
    from rescue.hive import values as V
    H.build_plain_hive(hivedir / "SAM", root_name="SAM", file_name="SAM",
                       keys=["SAM\\Domains\\Account\\Users\\Names\\azureuser", "SAM\\Domains\\Builtin"])
    H.build_plain_hive(hivedir / "SECURITY", root_name="SECURITY", file_name="SECURITY",
                       keys=["Policy\\Accounts", "Policy\\Secrets", "RXACT"])
    H.build_plain_hive(hivedir / "DEFAULT", root_name="ROOT", file_name="DEFAULT",
                       keys=["Control Panel\\International"],
                       values=[("Control Panel\\International", "LocaleName", V.REG_SZ, V.encode_sz("en-US"))])
    H.build_user_hive(hivedir / "NTUSER.DAT")

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
             FileSpec("\\Users\\azureuser\\NTUSER.DAT", host=hivedir / "NTUSER.DAT"),
             FileSpec(f"\\Windows\\System32\\winload.{ext}", _exe(f"winload.{ext}")),
             FileSpec(f"\\Windows\\System32\\winresume.{ext}", _exe(f"winresume.{ext}")),
             FileSpec("\\Windows\\System32\\ntoskrnl.exe", _exe("ntoskrnl.exe")),
             FileSpec("\\Windows\\System32\\hal.dll", _exe("hal.dll")),
             FileSpec("\\Windows\\System32\\drivers\\ntfs.sys", _exe("ntfs.sys")),
             FileSpec("\\Windows\\explorer.exe", _exe("explorer.exe")),
             FileSpec("\\Users\\azureuser\\Desktop\\notes.txt",
                      _text(f"{product} (build {build}) sample volume built by rescue.samples.\n"))]
    if o.pagefile_mib and primary:
        files.append(FileSpec("\\pagefile.sys", allocate=o.pagefile_mib * MiB))
    if o.download_cache_mib and primary:
        files.append(FileSpec("\\Windows\\SoftwareDistribution\\Download\\9c1f3b7e2d\\"
                              "windows10.0-kb5031361-x64.cab", allocate=o.download_cache_mib * MiB))
    if o.cleanup_files and primary:
        files += [FileSpec(p, bytes([0x5A]) * n) for p, n in _CLEANUP_FILES]
    if o.hibernated and primary:
        # ntfs-3g reads the first 4 KiB of \hiberfil.sys and refuses a read-write mount when they
        # start "hibr"/"HIBR" (ntfs-3g libntfs-3g/volume.c, ntfs_volume_check_hiberfile).
        files.append(FileSpec("\\hiberfil.sys", b"HIBR" + bytes(64 * 1024 - 4)))
    return dirs, tuple(files)


def _esp_files(bcd: Path) -> tuple[tuple[str, ...], tuple[FileSpec, ...]]:
    b = "\\EFI\\Microsoft\\Boot"
    return (f"{b}\\en-US", "\\EFI\\Boot"), (
        FileSpec(f"{b}\\BCD", host=bcd), FileSpec(f"{b}\\BCD.LOG"), FileSpec(f"{b}\\BCD.LOG1"),
        FileSpec(f"{b}\\BCD.LOG2"), FileSpec(f"{b}\\bootmgfw.efi", _exe("bootmgfw.efi")),
        FileSpec(f"{b}\\bootmgr.efi", _exe("bootmgr.efi")), FileSpec(f"{b}\\memtest.efi", _exe("memtest.efi")),
        FileSpec("\\EFI\\Boot\\bootx64.efi", _exe("bootx64.efi")))


def _system_reserved_files(bcd: Path) -> tuple[tuple[str, ...], tuple[FileSpec, ...]]:
    return ("\\Boot\\en-US",), (
        FileSpec("\\Boot\\BCD", host=bcd), FileSpec("\\Boot\\BCD.LOG"), FileSpec("\\Boot\\BCD.LOG1"),
        FileSpec("\\Boot\\BCD.LOG2"), FileSpec("\\bootmgr", _exe("bootmgr", 8192)),
        FileSpec("\\Boot\\memtest.exe", _exe("memtest.exe")))


def windows_spec(sample: Sample, workdir: Path) -> DiskSpec:
    base, o = sample.base, sample.windows
    ids = ids_for(base)
    hivedir = workdir / base
    bcd = hivedir / "BCD"
    hivedir.mkdir(parents=True, exist_ok=True)
    H.build_bcd_hive(bcd, **bcd_hive_options(base))
    cdirs, cfiles = _windows_volume(base, o, hivedir / "C", product=o.product, build=o.build,
                                    c_guid=None, primary=True, seed=base)
    c_state = "hibernated" if o.hibernated else "ok"
    if o.generation == "gen1":
        sdirs, sfiles = _system_reserved_files(bcd)
        parts = (PartSpec(1, 100, "ntfs", "System Reserved", mbr_type=0x07, bootable=True,
                          dirs=sdirs, files=sfiles),
                 PartSpec(101, o.c_size_mib, "ntfs", "Windows", mbr_type=0x07, dirs=cdirs, files=cfiles,
                          bitlocker=o.bitlocker, expect_state=c_state))
        return DiskSpec(base, o.disk_mib, "mbr", parts, mbr_signature=ids.mbr_signature)
    edirs, efiles = _esp_files(bcd)
    parts = [PartSpec(1, 100, "fat32", None, gpt_type=ESP_TYPE, gpt_guid=ids.esp_guid,
                      name="EFI system partition", dirs=edirs, files=efiles),
             PartSpec(101, 16, None, gpt_type=MSR_TYPE, gpt_guid=_guid(base, "msr"),
                      name="Microsoft reserved partition"),
             PartSpec(117, o.c_size_mib, "ntfs", "Windows", gpt_type=BASIC_DATA_TYPE, gpt_guid=ids.os_guid,
                      name="Basic data partition", dirs=cdirs, files=cfiles, bitlocker=o.bitlocker,
                      expect_state=c_state)]
    if o.second_windows:
        d2, f2 = _windows_volume(base, o, hivedir / "W2", product="Windows Server 2016 Datacenter",
                                 build=14393, c_guid=second_os_guid(base), primary=False,
                                 seed=base + "/second")
        parts.append(PartSpec(117 + o.c_size_mib, None, "ntfs", "Windows2", gpt_type=BASIC_DATA_TYPE,
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


# --- building ------------------------------------------------------------------------------------
def _posix(path: str) -> str:
    return "/" + "/".join(p for p in path.replace("\\", "/").split("/") if p)


def _run(cmd: list[str], **kw) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, **kw)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{' '.join(cmd)} failed: {exc.stderr.decode(errors='replace').strip()}") from None


def _partition_table(image: Path, spec: DiskSpec) -> None:
    """sfdisk on the host (parted/sgdisk inside a TCG appliance cost ~10 s per call with udev
    settling); GUIDs, names, types, the MBR signature and the active flag all set here."""
    lines = ["label: " + ("gpt" if spec.table == "gpt" else "dos"), "unit: sectors"]
    lines.append(f"label-id: {spec.disk_guid.upper()}" if spec.table == "gpt"
                 else f"label-id: 0x{spec.mbr_signature:08x}")
    for p in spec.partitions:
        start = p.start_mib * SECTORS_PER_MIB
        fields = [f"start={start}", f"size={spec.end_sector(p) - start + 1}"]
        if spec.table == "gpt":
            fields += [f"type={p.gpt_type}", f"uuid={p.gpt_guid.upper()}"]
            if p.name:
                fields.append(f'name="{p.name}"')
        else:
            fields.append(f"type={p.mbr_type:x}")
            if p.bootable:
                fields.append("bootable")
        lines.append(", ".join(fields))
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(image)],
         input=("\n".join(lines) + "\n").encode())


def _copy_into(src: Path, image: Path, offset: int) -> None:
    """Copy a (sparse) filesystem image into the disk image at `offset`, skipping holes."""
    with open(src, "rb") as fi, open(image, "r+b") as fo:
        size = os.fstat(fi.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                data_at = os.lseek(fi.fileno(), pos, os.SEEK_DATA)
            except OSError:      # no data after pos
                break
            hole_at = os.lseek(fi.fileno(), data_at, os.SEEK_HOLE)
            fi.seek(data_at)
            fo.seek(offset + data_at)
            remaining = hole_at - data_at
            while remaining:
                chunk = fi.read(min(remaining, 4 * MiB))
                fo.write(chunk)
                remaining -= len(chunk)
            pos = hole_at


def _make_filesystems(image: Path, spec: DiskSpec, tmp: Path) -> None:
    """NTFS (mkntfs into a scratch file, copied in), ext4 with its files (mke2fs -d) and FAT32 with
    its files (mkfs.fat + mtools), all on the host: no mounts, milliseconds each."""
    for n, p in enumerate(spec.partitions, 1):
        start = p.start_mib * SECTORS_PER_MIB
        sectors = spec.end_sector(p) - start + 1
        if p.fs == "ntfs":
            scratch = tmp / f"{spec.name}-p{n}.ntfs"
            with open(scratch, "wb") as fh:
                fh.truncate(sectors * 512)
            # -p/-H/-S: hidden sectors and geometry in the boot sector, as Windows' format writes
            # them for a partition at `start` (mkntfs cannot ask a regular file for them).
            _run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", "-p", str(start), "-H", "255",
                  "-S", "63", *(["-L", p.label] if p.label else []), str(scratch), str(sectors)])
            for f in p.files:
                if _host_allocated(f):
                    # ntfscp (libntfs-3g, no mount) writes the zeros natively in milliseconds;
                    # fallocate through FUSE in the TCG appliance took about 1 s per MiB.
                    zeros = tmp / "zeros"
                    with open(zeros, "wb") as fh:
                        fh.truncate(f.allocate)
                    _run(["ntfscp", "-f", str(scratch), str(zeros), _posix(f.path).lstrip("/")])
                    zeros.unlink()
            _copy_into(scratch, image, start * 512)
            scratch.unlink()
        elif p.fs == "ext4":
            root = tmp / f"{spec.name}-p{n}.d"
            for d in p.dirs:
                (root / _posix(d).lstrip("/")).mkdir(parents=True, exist_ok=True)
            for f in p.files:
                dest = root / _posix(f.path).lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(f.host.read_bytes() if f.host else f.data or bytes(f.allocate))
            _run(["mke2fs", "-q", "-F", "-t", "ext4", *(["-L", p.label] if p.label else []),
                  "-E", f"offset={start * 512}", "-d", str(root), str(image), f"{sectors // 2}k"])
        elif p.fs == "fat32":
            vol = hashlib.sha256(spec.name.encode()).hexdigest()[:8].upper()
            _make_fat32(image, p, vol, tmp)


def _make_fat32(image: Path, part: PartSpec, volume_id: str, tmp: Path) -> None:
    """FAT32 + files on the host: mkfs.fat writes at a sector offset, mtools copies (libguestfs'
    mkfs cannot force FAT32; Windows formats its 100 MiB ESP FAT32)."""
    start = part.start_mib * SECTORS_PER_MIB
    _run(["mkfs.fat", "-F", "32", "-S", "512", "-s", "1", "-i", volume_id, f"--offset={start}",
          str(image), str(part.size_mib * 1024)])
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    target = f"{image}@@{start * 512}"
    made: set[str] = set()

    def mkdirs(path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for k in range(1, len(parts) + 1):
            d = "/".join(parts[:k])
            if d not in made:
                _run(["mmd", "-i", target, "::/" + d], env=env)
                made.add(d)

    for d in part.dirs:
        mkdirs(_posix(d))
    for k, f in enumerate(part.files):
        dest = _posix(f.path)
        mkdirs(dest.rsplit("/", 1)[0])
        src = f.host
        if src is None:
            src = tmp / f"esp-{volume_id}-{k}"
            src.write_bytes(f.data if not f.allocate else bytes(f.allocate))
        _run(["mcopy", "-o", "-i", target, str(src), "::" + dest], env=env)


def _host_allocated(f: FileSpec) -> bool:
    """Allocated files in the root folder are written on the host (ntfscp cannot make folders)."""
    return bool(f.allocate) and f.host is None and _posix(f.path).count("/") == 1


def _volume_tar(spec: PartSpec, dest: Path) -> bool:
    """Every folder and file of the volume (but host-allocated ones) as one tarball; False when
    there is nothing to send."""
    entries = 0
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        def add_dir(path: str) -> None:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)

        made: set[str] = set()
        wanted = [_posix(d).lstrip("/") for d in spec.dirs]
        wanted += [_posix(f.path).lstrip("/").rsplit("/", 1)[0] for f in spec.files if "/" in _posix(f.path).lstrip("/")]
        for d in wanted:
            parts = d.split("/")
            for k in range(1, len(parts) + 1):
                sub = "/".join(parts[:k])
                if sub and sub not in made:
                    add_dir(sub)
                    made.add(sub)
                    entries += 1
        for f in spec.files:
            if _host_allocated(f):
                continue
            data = f.host.read_bytes() if f.host is not None else (f.data or bytes(f.allocate))
            info = tarfile.TarInfo(_posix(f.path).lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
            entries += 1
    return entries > 0


def _write_volume(s, part, spec: PartSpec, tmp: Path) -> None:
    tarball = tmp / "volume.tar"
    if _volume_tar(spec, tarball):
        mp = s.mount(part, write=True)
        s.extract_tar(tarball, mp)
        s.umount(part)
    tarball.unlink(missing_ok=True)


def _check_identity(image: Path, spec: DiskSpec) -> None:
    """Read the table back (sfdisk --json) and compare: signature / disk GUID, starts, GUIDs, flags."""
    out = subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True).stdout
    table = json.loads(out)["partitiontable"]
    if spec.table == "mbr" and int(table["id"], 16) != spec.mbr_signature:
        raise BuildError(f"{spec.name}: MBR signature {table['id']} != {spec.mbr_signature:#x}")
    if spec.table == "gpt" and table["id"].upper() != spec.disk_guid.upper():
        raise BuildError(f"{spec.name}: disk GUID {table['id']} != {spec.disk_guid}")
    got = table.get("partitions", [])
    if len(got) != len(spec.partitions):
        raise BuildError(f"{spec.name}: {len(got)} partitions, expected {len(spec.partitions)}")
    for n, (g, p) in enumerate(zip(got, spec.partitions), 1):
        if g["start"] != p.start_mib * SECTORS_PER_MIB:
            raise BuildError(f"{spec.name} p{n}: starts at sector {g['start']}")
        if p.gpt_guid and g.get("uuid", "").upper() != p.gpt_guid.upper():
            raise BuildError(f"{spec.name} p{n}: GUID {g.get('uuid')} != {p.gpt_guid}")
        if spec.table == "mbr" and bool(g.get("bootable")) != p.bootable:
            raise BuildError(f"{spec.name} p{n}: active flag {g.get('bootable')}")


def _needs_appliance(p: PartSpec) -> bool:
    return p.fs == "ntfs" and (bool(p.dirs) or any(not _host_allocated(f) for f in p.files)
                               or p.expect_state != "ok")


def _create_raw(path: Path, size_mib: int) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size_mib * MiB)


def build_raw_images(specs: list[DiskSpec], outdir: Path, *, log: Log = lambda m: None,
                     accel: str | None = None) -> dict[str, Path]:
    """Write every spec as `<outdir>/<name>.raw`: tables and filesystems on the host, NTFS contents
    through ONE appliance launch (ntfs-3g inside libguestfs), BitLocker stamps on the host last."""
    from rescue.disk.session import DiskSession, Partition

    outdir.mkdir(parents=True, exist_ok=True)
    paths = {sp.name: outdir / f"{sp.name}.raw" for sp in specs}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rescue-samples-", dir=outdir) as tmpname:
        tmp = Path(tmpname)
        for sp in specs:
            _create_raw(paths[sp.name], sp.size_mib)
            if sp.table:
                _partition_table(paths[sp.name], sp)
                _check_identity(paths[sp.name], sp)
                _make_filesystems(paths[sp.name], sp, tmp)
        log(f"partition tables and filesystems written on the host in {time.monotonic() - started:.1f} s")
        attached = [sp for sp in specs if any(_needs_appliance(p) for p in sp.partitions)]
        if attached:
            images = [DiskImage(str(paths[sp.name]), "raw", sp.size_mib * MiB, False) for sp in attached]
            t = time.monotonic()
            with DiskSession(images, write=True, accel=accel, notify=log) as s:
                log(f"appliance up in {s.launch_seconds:.0f} s; writing files on {len(attached)} disks")
                for i, sp in enumerate(attached):
                    dev = s.disks_device(i)
                    for n, p in enumerate(sp.partitions, 1):
                        if not _needs_appliance(p):
                            continue
                        # Built by hand: DiskSession.disks() probes every filesystem of every
                        # attached disk (list_filesystems, labels), ~50 s per disk under TCG.
                        part = Partition(disk=i, number=n, device=f"{dev}{n}", start=p.start_mib * MiB,
                                         size=(sp.end_sector(p) + 1) * 512 - p.start_mib * MiB, fstype="ntfs")
                        _write_volume(s, part, p, tmp)
                        state = s.ntfs_state(part, rw=True)
                        if state != p.expect_state:
                            raise BuildError(f"{sp.name} p{n}: ntfs-3g says {state!r}, expected {p.expect_state!r}")
            log(f"appliance session: {time.monotonic() - t:.0f} s")
    for sp in specs:
        for p in sp.partitions:
            if p.bitlocker:
                # A BitLocker volume's boot sector carries the OEM id "-FVE-FS-" at offset 3 (the
                # layout scan's test); the NTFS behind it is then unreadable, as a locked volume is.
                with open(paths[sp.name], "r+b") as fh:
                    fh.seek(p.start_mib * MiB + 3)
                    fh.write(BITLOCKER_OEM_ID)
    return paths


QEMU_FORMATS = {
    # Azure takes fixed VHDs; users download dynamic ones. force_size keeps the exact virtual size
    # (without it qemu rounds to a CHS geometry and the GPT backup header is no longer at the end).
    "vhd": ["-O", "vpc", "-o", "subformat=dynamic,force_size=on"],
    "vhdx": ["-O", "vhdx", "-o", "subformat=dynamic"],
    "qcow2": ["-O", "qcow2"],
}


def convert(raw: Path, dest: Path, fmt: str) -> Path:
    """raw -> vhd (dynamic) / vhdx / qcow2 with the host's qemu-img; raw -> raw is a sparse copy."""
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    if fmt == "raw":
        subprocess.run(["cp", "--sparse=always", str(raw), str(tmp)], check=True)
    else:
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", *QEMU_FORMATS[fmt], str(raw), str(tmp)],
                       check=True, capture_output=True)
    os.replace(tmp, dest)
    return dest


def make_truncated_vhd(raw: Path, dest: Path) -> Path:
    """A dynamic VHD cut short, as an interrupted download leaves it: no closing footer, data
    blocks past the end of the file."""
    full = convert(raw, dest.with_name(dest.name + ".full"), "vhd")
    size = full.stat().st_size
    with open(full, "rb") as src, open(dest, "wb") as out:
        out.write(src.read(size // 2))
    full.unlink()
    return dest


def make_not_a_disk(dest: Path) -> Path:
    dest.write_text("This is not a disk image: it is a text file someone named .vhd.\n" * 8)
    return dest
