"""Real-format Windows hives for samples and tests, written with our minimal-hive writer + hivex.

Each builder writes a hive laid out as Windows lays it out, value types and byte lengths included,
checked against the real hives in ../shared/realdata/ (README there):
- SYSTEM: `Select` (Current/Default/Failed/LastKnownGood, REG_DWORD), `ControlSet00N\\Control\\
  Session Manager\\Memory Management` (PagingFiles / ExistingPageFiles REG_MULTI_SZ as in
  regipy_win7_x86_SYSTEM), `Control\\CrashControl` (as in the Win7 and Win10 hives), `ComputerName`,
  a few `Services`, `MountedDevices` (the value bytes: rescue.samples.devices).
- SOFTWARE: `Microsoft\\Windows NT\\CurrentVersion` and `ProfileList`.
- BCD: rescue.samples.bcd_store (the store bcdboot makes).

Nothing here touches a disk: these are host files, uploaded by rescue.samples.disks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.hive.regf import base_block_checksum
# Disk identities live in rescue.samples.devices; the hive builders' callers name them here too.
from rescue.samples.devices import (  # noqa: F401
    DiskIds, boot_device, gpt_mounted_device, gpt_partition_device, mbr_mounted_device, mbr_partition_device,
    mounted_device_name, volume_name,
)

if TYPE_CHECKING:
    from rescue.samples.system_state import RemoteAccess

AZURE_USER = "azureuser"
AZURE_USER_SID = "S-1-5-21-3288219532-1843474312-2441395046-500"


def _new_hive(path: str | Path, root_name: str, file_name: str, minor: int) -> Hive:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_minimal_hive(path, root_name=root_name, file_name=file_name, minor_version=minor)
    return Hive(path, write=True)


def _dword(h: Hive, key: str, name: str, n: int) -> None:
    h.set(key, name, V.REG_DWORD, V.encode_dword(n))


def _sz(h: Hive, key: str, name: str, text: str, expand: bool = False) -> None:
    h.set(key, name, V.REG_EXPAND_SZ if expand else V.REG_SZ, V.encode_sz(text))


def _multi(h: Hive, key: str, name: str, items: Sequence[str]) -> None:
    h.set(key, name, V.REG_MULTI_SZ, V.encode_multi_sz(list(items)))


def default_paging_files(pagefile_on: str | None) -> list[str]:
    """PagingFiles as Windows writes it. Azure's image preparation sets "D:\\pagefile.sys" (the
    temporary drive); System Properties writes "C:\\pagefile.sys 0 0" for a system-managed file on
    C:; "?:\\pagefile.sys" is "automatically manage" (both real SYSTEM hives in realdata)."""
    if pagefile_on is None:
        return []
    drive = pagefile_on.upper().rstrip("\\").rstrip(":") + ":"
    if drive == "D:":
        return ["D:\\pagefile.sys"]
    if drive == "?:":
        return ["?:\\pagefile.sys"]
    return [f"{drive}\\pagefile.sys 0 0"]


def default_existing_page_files(pagefile_on: str | None) -> list[str]:
    if pagefile_on is None:
        return []
    drive = pagefile_on.upper().rstrip("\\").rstrip(":")
    return [f"\\??\\{'C' if drive == '?' else drive}:\\pagefile.sys"]


# --- services and device classes ------------------------------------------------------------------
SERVICE_KERNEL_DRIVER, SERVICE_FILE_SYSTEM_DRIVER = 1, 2
DISK_DRIVE_CLASS = "{4d36e967-e325-11ce-bfc1-08002be10318}"
VOLUME_CLASS = "{71a27cdd-812a-11d0-bec7-08002be2092f}"
SCSI_ADAPTER_CLASS = "{4d36e97b-e325-11ce-bfc1-08002be10318}"


@dataclass(frozen=True)
class ServiceSpec:
    """One Services\\NAME key. `start=None` means "no key" (in `set_services`: remove it)."""

    name: str
    start: int | None
    type: int = SERVICE_KERNEL_DRIVER
    group: str | None = None
    image: str | None = None               # ImagePath (REG_EXPAND_SZ); None: no value
    error_control: int = 1
    start_override: tuple[tuple[str, int], ...] = ()   # StartOverride values ("0" -> 3, ...)
    service_dll: str | None = None          # Parameters\\ServiceDll (REG_EXPAND_SZ) of a svchost-hosted service


@dataclass(frozen=True)
class ClassFilters:
    upper: tuple[str, ...] = ()
    lower: tuple[str, ...] = ()
    name: str = ""                          # the class's Class value ("DiskDrive")


def _drv(name: str, start: int, group: str | None, file: str | None = None, error_control: int = 3) -> ServiceSpec:
    return ServiceSpec(name, start, SERVICE_KERNEL_DRIVER, group,
                       f"System32\\drivers\\{file or name + '.sys'}", error_control)


# The first five are what the samples always had; the rest is the boot storage stack with the
# Start values and groups Windows 10 / Server 2019 ship (realdata SYSTEM_B): every one boot start.
STANDARD_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("disk", 0, 1, None, "System32\\drivers\\disk.sys"),
    ServiceSpec("volmgr", 0, 1, "System Bus Extender", "System32\\drivers\\volmgr.sys"),
    ServiceSpec("Ntfs", 3, SERVICE_FILE_SYSTEM_DRIVER, "Boot File System", None),
    ServiceSpec("sacdrv", 3, 1, None, "System32\\drivers\\sacdrv.sys"),
    ServiceSpec("Tcpip", 0, 1, "PNP_TDI", "System32\\drivers\\tcpip.sys"),
    _drv("ACPI", 0, "Core", "ACPI.sys"),
    _drv("pci", 0, "Boot Bus Extender"),
    _drv("vdrvroot", 0, "Boot Bus Extender"),
    _drv("vmbus", 0, "System Bus Extender"),
    _drv("storvsc", 0, "Base"),
    _drv("stornvme", 0, "SCSI Miniport"),
    _drv("partmgr", 0, "Boot Bus Extender"),
    _drv("volsnap", 0, None),
    _drv("mountmgr", 0, "System Bus Extender", error_control=1),
    _drv("EhStorClass", 0, "SCSI Class", error_control=1),
    _drv("fvevol", 0, "PnP Filter"),
    _drv("iorate", 0, "PnP Filter"),
)

# Windows Server 2019's filters on the storage classes (Windows 10 adds stdcfltn and rdyboost).
STANDARD_CLASS_FILTERS: dict[str, ClassFilters] = {
    DISK_DRIVE_CLASS: ClassFilters(("partmgr",), ("EhStorClass",), "DiskDrive"),
    VOLUME_CLASS: ClassFilters(("volsnap",), ("fvevol", "iorate"), "Volume"),
    SCSI_ADAPTER_CLASS: ClassFilters((), (), "SCSIAdapter"),
}


def _services_of(n: int, services: Sequence[ServiceSpec] | None,
                 set_services: Mapping[int, Sequence[ServiceSpec]] | None) -> list[ServiceSpec]:
    merged = {s.name.lower(): s for s in (STANDARD_SERVICES if services is None else services)}
    for s in (set_services or {}).get(n, ()):
        merged[s.name.lower()] = s
    return [s for s in merged.values() if s.start is not None]


def _write_service(h: Hive, services_key: str, spec: ServiceSpec) -> None:
    key = f"{services_key}\\{spec.name}"
    assert spec.start is not None           # removed entries are filtered out by _services_of
    _dword(h, key, "Start", spec.start)
    _dword(h, key, "Type", spec.type)
    _dword(h, key, "ErrorControl", spec.error_control)
    if spec.group is not None:
        _sz(h, key, "Group", spec.group)
    if spec.image:
        _sz(h, key, "ImagePath", spec.image, expand=True)
    for name, value in spec.start_override:
        _dword(h, f"{key}\\StartOverride", name, value)
    if spec.service_dll:
        _sz(h, f"{key}\\Parameters", "ServiceDll", spec.service_dll, expand=True)


def _write_class_filters(h: Hive, key: str, f: ClassFilters) -> None:
    h.ensure_key(key)
    if f.name:
        _sz(h, key, "Class", f.name)
    if f.upper:
        _multi(h, key, "UpperFilters", f.upper)
    if f.lower:
        _multi(h, key, "LowerFilters", f.lower)


def driver_files(services: Sequence[ServiceSpec]) -> list[str]:
    """File names under System32\\drivers that `services` name (what a sample volume must hold)."""
    out = []
    for s in services:
        if s.start is not None and s.image and s.image.lower().startswith("system32\\drivers\\"):
            out.append(s.image.split("\\")[-1])
    return out


# --- SYSTEM --------------------------------------------------------------------------------------
NO_REMOTE_ACCESS = object()      # build_system_hive(remote_access=NO_REMOTE_ACCESS): no RDP keys at all

def build_system_hive(path: str | Path, *, current: int = 1, control_sets: Iterable[int] = (1, 2),
                      last_known_good: int | None = None, failed: int = 0,
                      mounted_devices: Sequence[tuple[str, bytes]] = (),
                      pagefile_on: str | None = "D:", paging_files: Sequence[str] | None = None,
                      existing_page_files: Sequence[str] | None = None,
                      crash_dumps: bool | int = True, nmi: bool = True, auto_reboot: bool = True,
                      dump_file: str = "%SystemRoot%\\MEMORY.DMP",
                      whea_bad_pages: bytes | None = None, computer_name: str = "WINSRV-AZ01",
                      boot_partition: int = 1, root_name: str = "ROOT",
                      services: Sequence[ServiceSpec] | None = None,
                      set_services: Mapping[int, Sequence[ServiceSpec]] | None = None,
                      class_filters: Mapping[str, ClassFilters] | None = None,
                      set_class_filters: Mapping[int, Mapping[str, ClassFilters]] | None = None,
                      select: Mapping[str, int] | None = None,
                      remote_access: "RemoteAccess | object | None" = None, hiberboot: bool | None = None,
                      boot_execute: Mapping[int, Sequence[str]] | None = None,
                      setup: tuple[int, str] = (0, "")) -> Path:
    """Write a SYSTEM hive.

    `mounted_devices`: (letter like "C:" or a full value name, data) pairs, in order.
    `pagefile_on`: "C:" / "D:" / "?:" / None; `paging_files` / `existing_page_files` override the
    REG_MULTI_SZ lists exactly. `crash_dumps`: True = 1 (complete dump, what the article sets),
    False = 0 (disabled), or a CrashDumpEnabled number. `nmi`: NMICrashDump=1 when True, absent when
    False (as in every real hive). `whea_bad_pages`: REG_BINARY value `Control\\WHEA\\BadPages`
    (where builds 19042+ keep PFA bad pages; Microsoft, "How to Manage the PFA Memory List").
    `services`: the Services entries of every control set (None: STANDARD_SERVICES, the boot
    storage stack with the Start values Windows Server 2019 ships); `set_services` adds or replaces
    entries (by name) in one control set, and an entry with `start=None` removes that service's key
    there. `class_filters` / `set_class_filters` do the same for the device classes' UpperFilters /
    LowerFilters under Control\\Class (None: STANDARD_CLASS_FILTERS). `select` overrides Select values
    after the defaults (e.g. {"Current": 3} for a Current naming a missing control set).
    `remote_access`: Terminal Server, RDP-Tcp, TermService, Dhcp and the firewall
    (rescue.samples.system_state.RemoteAccess; default: a reachable VM's; None only for tests that
    need those keys absent: pass `NO_REMOTE_ACCESS`).
    `hiberboot`: `Session Manager\\Power\\HiberbootEnabled` 1/0 (Fast Startup on/off), absent when None.
    `boot_execute`: Session Manager BootExecute of the control sets named (others: "autocheck autochk *");
    `setup`: SYSTEM\\Setup (SetupType, CmdLine).
    Every control set gets the same settings unless `set_*` says otherwise.
    """
    from rescue.samples.system_state import RemoteAccess, add_remote_access

    ra = None if remote_access is NO_REMOTE_ACCESS else \
        remote_access if isinstance(remote_access, RemoteAccess) else RemoteAccess()
    sets = sorted(set(control_sets))
    h = _new_hive(path, root_name, "SYSTEM", 5)
    _dword(h, "Select", "Current", current)
    _dword(h, "Select", "Default", current)
    _dword(h, "Select", "Failed", failed)
    _dword(h, "Select", "LastKnownGood", last_known_good if last_known_good is not None else
           next((s for s in sets if s != current), current))
    for name, value in (select or {}).items():
        _dword(h, "Select", name, value)
    pf = list(paging_files) if paging_files is not None else default_paging_files(pagefile_on)
    epf = (list(existing_page_files) if existing_page_files is not None
           else default_existing_page_files(pagefile_on))
    dump_level = (1 if crash_dumps else 0) if isinstance(crash_dumps, bool) else int(crash_dumps)
    for n in sets:
        cs = f"ControlSet{n:03d}"
        ctl = f"{cs}\\Control"
        _multi(h, ctl, "PreshutdownOrder", ["DeviceInstall", "UsoSvc", "gpsvc", "trustedinstaller"])
        _sz(h, ctl, "SystemBootDevice", f"multi(0)disk(0)rdisk(0)partition({boot_partition})")
        _sz(h, ctl, "FirmwareBootDevice", f"multi(0)disk(0)rdisk(0)partition({boot_partition})")
        _sz(h, ctl, "SystemStartOptions", " NOEXECUTE=OPTOUT  NOVGA")
        _sz(h, f"{ctl}\\ComputerName\\ComputerName", "ComputerName", computer_name)
        _sz(h, f"{ctl}\\ComputerName\\ActiveComputerName", "ComputerName", computer_name)

        sm = f"{ctl}\\Session Manager"
        _multi(h, sm, "BootExecute", list((boot_execute or {}).get(n, ("autocheck autochk *",))))
        if hiberboot is not None:
            _dword(h, f"{sm}\\Power", "HiberbootEnabled", 1 if hiberboot else 0)
        env = f"{sm}\\Environment"
        _sz(h, env, "ComSpec", "%SystemRoot%\\system32\\cmd.exe", expand=True)
        _sz(h, env, "OS", "Windows_NT")
        _sz(h, env, "TEMP", "%SystemRoot%\\TEMP", expand=True)
        _sz(h, env, "TMP", "%SystemRoot%\\TEMP", expand=True)
        _sz(h, env, "windir", "%SystemRoot%", expand=True)

        # Value order and neighbours as in regipy_win7_x86_SYSTEM's Memory Management key.
        mm = f"{sm}\\Memory Management"
        for name, val in (("ClearPageFileAtShutdown", 0), ("DisablePagingExecutive", 0),
                          ("LargeSystemCache", 0), ("NonPagedPoolQuota", 0), ("NonPagedPoolSize", 0),
                          ("PagedPoolQuota", 0), ("PagedPoolSize", 0), ("SecondLevelDataCache", 0),
                          ("SessionPoolSize", 4), ("SessionViewSize", 48), ("SystemPages", 0)):
            _dword(h, mm, name, val)
        _multi(h, mm, "PagingFiles", pf)
        _dword(h, mm, "PhysicalAddressExtension", 1)
        _multi(h, mm, "ExistingPageFiles", epf)
        h.ensure_key(f"{mm}\\PrefetchParameters")
        h.ensure_key(f"{mm}\\StoreParameters")

        # CrashControl: the values Windows Server 2016/2019 carry (SYSTEM_B, win7 hive in realdata).
        cc = f"{ctl}\\CrashControl"
        _dword(h, cc, "AutoReboot", 1 if auto_reboot else 0)
        _dword(h, cc, "CrashDumpEnabled", dump_level)
        _sz(h, cc, "DumpFile", dump_file, expand=True)
        _multi(h, cc, "DumpFilters", ["dumpfve.sys"])
        _dword(h, cc, "LogEvent", 1)
        _sz(h, cc, "MinidumpDir", "%SystemRoot%\\Minidump", expand=True)
        _dword(h, cc, "MinidumpsCount", 5)
        _dword(h, cc, "Overwrite", 1)
        if nmi:
            _dword(h, cc, "NMICrashDump", 1)
        h.ensure_key(f"{cc}\\StorageTelemetry")

        if whea_bad_pages is not None:
            h.set(f"{ctl}\\WHEA", "BadPages", V.REG_BINARY, bytes(whea_bad_pages))

        # Services shaped like the real ones (Start/Type/ErrorControl/Group/ImagePath, as in
        # realdata's Windows 10 SYSTEM_B), then the storage device classes' filter lists.
        for spec in _services_of(n, services, set_services):
            _write_service(h, f"{cs}\\Services", spec)
        filters = dict(STANDARD_CLASS_FILTERS if class_filters is None else class_filters)
        filters.update((set_class_filters or {}).get(n, {}))
        for guid, f in filters.items():
            _write_class_filters(h, f"{ctl}\\Class\\{guid}", f)
        if ra is not None:
            add_remote_access(h, cs, ra)
        h.ensure_key(f"{cs}\\Enum")
        h.ensure_key(f"{cs}\\Hardware Profiles")

    h.ensure_key("MountedDevices")
    for name, data in mounted_devices:
        h.set("MountedDevices", mounted_device_name(name), V.REG_BINARY, bytes(data))
    h.ensure_key("Setup")
    _dword(h, "Setup", "SetupType", setup[0])
    _sz(h, "Setup", "CmdLine", setup[1])
    h.ensure_key("RNG")
    h.ensure_key("WPA")
    h.commit()
    return Path(path)


# --- SOFTWARE ------------------------------------------------------------------------------------
def build_software_hive(path: str | Path, *, product: str = "Windows Server 2019 Datacenter",
                        build: int = 17763, ubr: int = 5830, edition: str = "ServerDatacenter",
                        installation_type: str = "Server", release_id: str | None = "1809",
                        build_lab: str | None = None, system_root: str = "C:\\Windows",
                        owner: str = AZURE_USER,
                        profiles: Sequence[tuple[str, str]] | None = None,
                        root_name: str = "ROOT", rdp_policy_deny: int | None = None,
                        firewall_policy: tuple[tuple[str, int], ...] = (),
                        servicing_pending: bool | None = False, userinit: str | None = None,
                        shell: str | None = None) -> Path:
    """Write a SOFTWARE hive with `Microsoft\\Windows NT\\CurrentVersion` as Windows 10-family
    builds keep it: CurrentVersion stays "6.3" for compatibility; the real version is in
    CurrentMajorVersionNumber/CurrentMinorVersionNumber (REG_DWORD 10 / 0).
    `rdp_policy_deny` / `firewall_policy`: Group Policy values (absent unless given);
    `servicing_pending`: Component Based Servicing stuck mid-update (True), settled (False) or no
    CBS key at all (None); `userinit` / `shell`: Winlogon's values (None: as Windows ships them). See
    rescue.samples.system_state."""
    h = _new_hive(path, root_name, "SOFTWARE", 5)
    cv = "Microsoft\\Windows NT\\CurrentVersion"
    lab = build_lab or {17763: "17763.rs5_release.180914-1434",
                        14393: "14393.rs1_release.161220-1747",
                        20348: "20348.fe_release.210507-1500"}.get(build, f"{build}.release")
    _sz(h, cv, "BuildLab", lab)
    _sz(h, cv, "BuildLabEx", f"{lab.split('.', 1)[0]}.1.amd64fre.{lab.split('.', 1)[1]}")
    _sz(h, cv, "CompositionEditionID", edition)
    _sz(h, cv, "CurrentBuild", str(build))
    _sz(h, cv, "CurrentBuildNumber", str(build))
    _dword(h, cv, "CurrentMajorVersionNumber", 10)
    _dword(h, cv, "CurrentMinorVersionNumber", 0)
    _sz(h, cv, "CurrentType", "Multiprocessor Free")
    _sz(h, cv, "CurrentVersion", "6.3")
    _sz(h, cv, "EditionID", edition)
    _sz(h, cv, "InstallationType", installation_type)
    _dword(h, cv, "InstallDate", 1_600_000_000)
    _sz(h, cv, "PathName", system_root)
    _sz(h, cv, "ProductName", product)
    if release_id:
        _sz(h, cv, "ReleaseId", release_id)
    _sz(h, cv, "RegisteredOrganization", "")
    _sz(h, cv, "RegisteredOwner", owner)
    _sz(h, cv, "SoftwareType", "System")
    _sz(h, cv, "SystemRoot", system_root)
    _dword(h, cv, "UBR", ubr)

    # ProfileList: where each account's NTUSER.DAT lives (reg.exe "user hives by profile").
    pl = f"{cv}\\ProfileList"
    _sz(h, pl, "ProfilesDirectory", "%SystemDrive%\\Users", expand=True)
    _sz(h, pl, "Default", "%SystemDrive%\\Users\\Default", expand=True)
    _sz(h, pl, "Public", "%SystemDrive%\\Users\\Public", expand=True)
    _sz(h, pl, "ProgramData", "%SystemDrive%\\ProgramData", expand=True)
    base = [("S-1-5-18", "%systemroot%\\system32\\config\\systemprofile"),
            ("S-1-5-19", "%systemroot%\\ServiceProfiles\\LocalService"),
            ("S-1-5-20", "%systemroot%\\ServiceProfiles\\NetworkService")]
    users = list(profiles) if profiles is not None else [(AZURE_USER_SID, f"C:\\Users\\{owner}")]
    for sid, image in base + users:
        _sz(h, f"{pl}\\{sid}", "ProfileImagePath", image, expand=True)
        _dword(h, f"{pl}\\{sid}", "Flags", 0)
        _dword(h, f"{pl}\\{sid}", "State", 0)

    wcv = "Microsoft\\Windows\\CurrentVersion"
    _sz(h, wcv, "ProgramFilesDir", "C:\\Program Files")
    _sz(h, wcv, "ProgramFilesDir (x86)", "C:\\Program Files (x86)")
    _sz(h, wcv, "CommonFilesDir", "C:\\Program Files\\Common Files")
    h.ensure_key("Microsoft\\Windows Azure")  # the Azure guest agent's key
    h.ensure_key("Classes")
    h.ensure_key("Policies")
    from rescue.samples.system_state import SHELL, USERINIT, add_servicing_state, add_software_policies, add_winlogon

    add_winlogon(h, userinit=USERINIT if userinit is None else userinit, shell=SHELL if shell is None else shell)

    add_software_policies(h, rdp_policy_deny=rdp_policy_deny, firewall_policy=firewall_policy)
    if servicing_pending is not None:
        add_servicing_state(h, pending=servicing_pending)
    h.commit()
    return Path(path)


def build_plain_hive(path: str | Path, *, root_name: str, file_name: str = "",
                     values: Sequence[tuple[str, str, int, bytes]] = (),
                     keys: Sequence[str] = ()) -> Path:
    """A small hive (SAM, SECURITY, DEFAULT, NTUSER.DAT) with the given keys and
    (key, name, type, data) values: enough for `reg query HKLM\\SAM` to find something real."""
    h = _new_hive(path, root_name, file_name, 5)
    for k in keys:
        h.ensure_key(k)
    for key, name, t, data in values:
        h.set(key, name, t, data)
    h.commit()
    return Path(path)


def build_user_hive(path: str | Path, *, user: str = AZURE_USER) -> Path:
    """NTUSER.DAT: Environment TEMP/TMP as Windows sets them for a new profile."""
    temp = V.encode_sz("%USERPROFILE%\\AppData\\Local\\Temp")
    return build_plain_hive(path, root_name="ROOT", file_name="ntuser.dat",
                            keys=["Control Panel\\Desktop", "Software\\Microsoft\\Windows\\CurrentVersion"],
                            values=[("Environment", "TEMP", V.REG_EXPAND_SZ, temp),
                                    ("Environment", "TMP", V.REG_EXPAND_SZ, temp),
                                    ("Volatile Environment", "USERNAME", V.REG_SZ, V.encode_sz(user))])


def make_dirty(path: str | Path) -> None:
    """Mark a hive dirty the way an interrupted write leaves it: primary sequence one ahead of the
    secondary (REGF base block offsets 4 and 8), header checksum recomputed so it still parses."""
    p = Path(path)
    data = bytearray(p.read_bytes())
    seq2 = struct.unpack_from("<I", data, 8)[0]
    struct.pack_into("<I", data, 4, seq2 + 1)
    struct.pack_into("<I", data, 0x1FC, base_block_checksum(bytes(data[:512])))
    p.write_bytes(bytes(data))


def synthetic_log(hive_path: str | Path, log_path: str | Path) -> None:
    """A non-empty transaction log for a dirty hive when no real one is at hand: the hive's base
    block with file type 6 (log) and the newer sequence number, then one 512-byte zero sector. It is
    NOT replayable (no log entries): it only makes the "pending log" state visible."""
    base = bytearray(Path(hive_path).read_bytes()[:4096])
    seq1 = struct.unpack_from("<I", base, 4)[0]
    struct.pack_into("<II", base, 4, seq1, seq1)
    struct.pack_into("<I", base, 0x1C, 6)
    struct.pack_into("<I", base, 0x1FC, base_block_checksum(bytes(base[:512])))
    Path(log_path).write_bytes(bytes(base[:512]) + bytes(512))
