"""Services and device-class filters of a SYSTEM hive's current control set, read offline.

What the boot scenarios (inaccessible-boot-device, driver) and `rescue services` look at:
- Select\\Current names the control set Windows boots (ControlSet00N); everything here reads that
  one and says which it is.
- Services\\NAME: Start (0 boot, 1 system, 2 automatic, 3 demand, 4 disabled), Type (1 kernel
  driver, 2 file-system driver, ...), Group, ImagePath, ErrorControl, and a StartOverride subkey
  whose values override Start per hardware profile (Windows 8+; a value of 3 or 4 there keeps a
  boot driver from loading even though Start says 0).
- Control\\Class\\{class GUID}: UpperFilters / LowerFilters (REG_MULTI_SZ) list filter drivers
  Windows loads on every device of the class; a name without a service key, or whose .sys is
  gone, stops that device stack from starting (for the disk or volume class: 0x7B).

Which file a driver is: ImagePath as Windows resolves it for a kernel driver: relative paths are
under %SystemRoot% ("System32\\drivers\\disk.sys"), "\\SystemRoot\\..." likewise, "\\??\\C:\\..." is
an absolute path on C:, and a driver without ImagePath is %SystemRoot%\\System32\\drivers\\NAME.sys.
Paths are returned on the Windows volume ("\\Windows\\System32\\drivers\\disk.sys"); presence is the
caller's business (one folder listing per command, never a call per file).

Microsoft or not: rescue cannot check Authenticode signatures offline without reading every
driver file, so "inbox" is decided by name and place: a driver Windows itself installs (INBOX_DRIVERS,
the boot- and system-start drivers of Windows Server 2008 R2 to 2022 images) whose image sits in
\\Windows\\System32\\drivers (or System32). Anything else is reported as third-party, with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Sequence, Tuple

from rescue.errors import CorruptHiveError, NotFoundError
from rescue.hive import values as V
from rescue.registry.image_path import ServiceImage, resolve_command, resolve_file

if TYPE_CHECKING:
    from rescue.hive.hive import Hive

START_NAMES = {0: "boot", 1: "system", 2: "automatic", 3: "demand", 4: "disabled"}
START_VALUES = {v: k for k, v in START_NAMES.items()}
DRIVER_TYPES = (1, 2)               # SERVICE_KERNEL_DRIVER, SERVICE_FILE_SYSTEM_DRIVER
WIN32_TYPE_BITS = 0x30              # SERVICE_WIN32_OWN_PROCESS 0x10 | SERVICE_WIN32_SHARE_PROCESS 0x20
AUTOMATIC = 2
TYPE_NAMES = {1: "kernel driver", 2: "file-system driver", 0x10: "own process", 0x20: "shared process"}
# ErrorControl (CreateServiceW, dwErrorControl): what the boot does when the service fails to start.
ERROR_CONTROL_NAMES = {0: "ignore", 1: "normal", 2: "severe", 3: "critical"}
DRIVERS_DIR = "\\Windows\\System32\\drivers"

# Boot- and system-start drivers Windows itself installs (realdata: a Windows 10 and a Windows 7
# SYSTEM hive; Azure's Windows Server 2016-2022 images add the Hyper-V ones). Lower case.
INBOX_DRIVERS = frozenset("""
3ware acpi acpiex adp80xx afd ahcache amdsata amdsbs amdxata arcsas atapi b06bdrv bam basicdisplay
basicrender beep bindflt blbdrive bttflt cdrom cht4iscsi cimfs clfs cng compbatt csc dam dfsc discache
disk ebdrv ehstorclass ehstortcgdrv filecrypt fileinfo fltmgr fs_rec fvevol gpuenergydrv hpsamd hvsocket
hwpolicy hyperkbd hypervideo iastorav iastorv intelide intelpep iorate isapnp kbdclass ksecdd ksecpkg
lsi_sas lsi_sas2i lsi_sas3i lsi_scsi lsi_sss megasas megasas2i megasr mountmgr mouclass msfs msisadrv
mssecflt mssmbios mup mvumis ndis netbios netbt netvsc npfs npsvctrig nsiproxy ntfs null nvpciflt nvraid
nvstor partmgr pci pciide pcmcia pcw pdc percsas2i percsas3i psched ramdisk rdbss rdpcdd rdpencdd
rdprefmp rdyboost refs sacdrv sbp2port scmbus serial sisraid2 sisraid4 spaceport spldr stdcfltn stexstor
storahci storflt stornvme storport storqosflt storufs storvsc tcpip tdx termdd vdrvroot vgasave vhdmp
vmbus vmgencounter vmstorfl volmgr volmgrx volsnap volume vpci vsmraid vstxraid vwififlt wanarpv6
wcifs wdboot wdf01000 wdfilter wfplwf wfplwfs windowstrustedrt windowstrustedrtproxy wof ws2ifsl
cldflt lltdio luafv mmcss mslldp ndu parvdm peauth rspndr secdrv tcpipreg wanarp
""".split())     # last line: automatic-start drivers of the same images (service-image-missing)

# Microsoft's own services whose binaries live outside \Windows (Defender's platform folder).
WINDOWS_SERVICE_FOLDERS = ("\\windows\\", "\\programdata\\microsoft\\windows defender\\",
                           "\\program files\\windows defender\\",
                           "\\program files\\windows defender advanced threat protection\\")

# Drivers the VM reaches its disk or network through (Azure repair-script-library,
# win-fix-third-party-drivers.ps1 "BootCriticalDriver"): never disabled, whoever asks.
BOOT_CRITICAL = frozenset("""
acpi pci vmbus storvsc storahci stornvme storport disk partmgr volmgr volmgrx volsnap mountmgr fltmgr
ntfs refs vdrvroot msisadrv pcw fvevol iorate wof clfs ksecdd cng intelide atapi ataport amdsata iastorv
iastora vhdmp spaceport netvsc ndis tcpip afd netbt tdx http hvsocket winhv hyperkbd vpci storufs sdstor
bindflt fileinfo wcifs msfs npfs
""".split())


def start_name(start: Optional[int]) -> str:
    if start is None:
        return "no Start value"
    return START_NAMES.get(start, f"Start {start}")


@dataclass(frozen=True)
class ControlSetRef:
    number: int

    @property
    def key(self) -> str:
        return f"ControlSet{self.number:03d}"

    def describe(self) -> str:
        return f"{self.key} (Select\\Current)"


@dataclass(frozen=True)
class Service:
    name: str                               # as spelled in the hive
    start: Optional[int]
    type: Optional[int]
    group: Optional[str]
    image_path: Optional[str]               # ImagePath as stored (None: no value)
    error_control: Optional[int]
    start_override: Tuple[Tuple[str, Optional[int]], ...]   # StartOverride values, in order
    file: Optional[str]                     # the image on the Windows volume, None: not on it
    # Win32 services (Type 0x10/0x20): ImagePath resolved as SCM does (rescue.registry.image_path)
    image: Optional[ServiceImage] = None
    service_dll: Optional[ServiceImage] = None  # Parameters\ServiceDll of a svchost-hosted service

    @property
    def is_driver(self) -> bool:
        return self.type in DRIVER_TYPES

    @property
    def is_win32(self) -> bool:
        return self.type is not None and bool(self.type & WIN32_TYPE_BITS) and not self.is_driver

    @property
    def starts_automatically(self) -> bool:
        """Start 2: started by the Service Control Manager at every boot (a driver or a Win32 service)."""
        return self.start == AUTOMATIC and (self.is_driver or self.is_win32)

    @property
    def type_text(self) -> str:
        if self.type is None:
            return "no Type value"
        base = TYPE_NAMES.get(self.type & 0x3F, f"Type {self.type:#x}") if self.is_win32 else \
            TYPE_NAMES.get(self.type, f"Type {self.type:#x}")
        return f"{base} {self.type:#x}"

    @property
    def error_control_text(self) -> str:
        if self.error_control is None:
            return "no ErrorControl value"
        return f"ErrorControl {self.error_control} {ERROR_CONTROL_NAMES.get(self.error_control, 'unknown')}"

    @property
    def files(self) -> Tuple[ServiceImage, ...]:
        """What must exist for the service to start: its image (each Win32 candidate), then its
        ServiceDll; a kernel driver's one file."""
        if self.is_win32:
            return tuple(i for i in (self.image, self.service_dll) if i is not None)
        where = self.file
        return (ServiceImage(self.image_path or "", (where,) if where else (), "",
                             None if where else "on another volume, not checked"),)

    @property
    def loads_early(self) -> bool:
        """Boot or system start: loaded before any service, so a bad one stops the boot."""
        return self.is_driver and self.start in (0, 1)

    @property
    def start_text(self) -> str:
        return f"{start_name(self.start)} ({self.start})" if self.start is not None else start_name(None)

    @property
    def third_party_reason(self) -> Optional[str]:
        """Why rescue counts this driver as not Microsoft's (None: an inbox driver in its place)."""
        if self.is_win32:
            outside = [f.path or f.stored for f in self.files
                       if not (f.path or "").lower().startswith(WINDOWS_SERVICE_FOLDERS)]
            return f"{outside[0]} is outside \\Windows" if outside else None
        if self.name.lower() not in INBOX_DRIVERS:
            return "not a driver Windows installs"
        if self.file is None:
            return "image outside the Windows volume"
        folder = self.file.rsplit("\\", 1)[0].lower()
        # Windows 10+ loads some inbox drivers from the driver store (netvsc.inf_amd64_...).
        if folder not in (DRIVERS_DIR.lower(), "\\windows\\system32") and \
                not folder.startswith("\\windows\\system32\\driverstore\\filerepository\\"):
            return f"image outside {DRIVERS_DIR}"
        return None

    @property
    def inbox(self) -> bool:
        return self.third_party_reason is None

    def to_json(self, present: Optional[bool] = None) -> dict:
        return {"name": self.name, "start": self.start, "start_type": start_name(self.start),
                "type": self.type, "group": self.group, "image_path": self.image_path,
                "file": self.file, "file_present": present, "error_control": self.error_control,
                "start_override": {k: v for k, v in self.start_override},
                "third_party": not self.inbox, "third_party_reason": self.third_party_reason}


@dataclass(frozen=True)
class ClassFilter:
    guid: str
    class_name: str                         # "DiskDrive", or the GUID when the key has no Class
    value: str                              # "UpperFilters" | "LowerFilters"
    drivers: Tuple[str, ...]


_DRIVE_ABS = re.compile(r"^\\\?\?\\([A-Za-z]):(\\.*)$")


def resolve_image(name: str, image_path: Optional[str], type_: Optional[int],
                  system_drive: str = "C") -> Optional[str]:
    """The driver's file on the Windows volume, in Windows spelling, or None when it is on another
    volume. Only meaningful for drivers (services run by svchost name an .exe)."""
    if not image_path or not image_path.strip():
        return f"{DRIVERS_DIR}\\{name}.sys" if type_ in DRIVER_TYPES else None
    p = image_path.strip().strip('"')
    m = _DRIVE_ABS.match(p)
    if m:
        return m.group(2) if m.group(1).upper() == system_drive.upper() else None
    if re.match(r"^[A-Za-z]:\\", p):                 # plain C:\... (user-mode services)
        return p[2:] if p[0].upper() == system_drive.upper() else None
    low = p.lower()
    for prefix in ("\\systemroot\\", "%systemroot%\\", "systemroot\\"):
        if low.startswith(prefix):
            return "\\Windows\\" + p[len(prefix):]
    if p.startswith("\\"):
        return p
    return "\\Windows\\" + p


def current_control_set(hive: Hive) -> ControlSetRef:
    """Select\\Current, checked to name an existing ControlSet00N."""
    current = hive.get_value("Select", "Current")
    if not isinstance(current, int):
        raise NotFoundError("SYSTEM has no Select\\Current value: rescue cannot tell which control set Windows boots.")
    ref = ControlSetRef(current)
    if not hive.exists(ref.key):
        raise NotFoundError(f"Select\\Current is {current}, but SYSTEM has no {ref.key}.")
    return ref


def _dword(v) -> Optional[int]:
    return v.value if v is not None and v.type == V.REG_DWORD and len(v.data) >= 4 else None


def _text(v) -> Optional[str]:
    if v is None or v.type not in (V.REG_SZ, V.REG_EXPAND_SZ):
        return None
    return str(v.value)


def read_service(hive: Hive, cs: ControlSetRef, name: str) -> Optional[Service]:
    key = f"{cs.key}\\Services\\{name}"
    node = hive.find(key)
    if node is None:
        return None
    return _service(hive, node)


def _service(hive: Hive, node: int) -> Service:
    name = hive.name(node)
    vals = {v.name.lower(): v for v in hive.values(node)}
    start, type_ = _dword(vals.get("start")), _dword(vals.get("type"))
    image = _text(vals.get("imagepath"))
    override: Tuple[Tuple[str, Optional[int]], ...] = ()
    dll = _text(vals.get("servicedll"))         # pre-Vista services keep it on the service key
    for child in hive.children(node):
        child_name = hive.name(child).lower()
        if child_name == "startoverride":
            override = tuple((v.name, _dword(v)) for v in hive.values(child))
        elif child_name == "parameters":
            dll = next((_text(v) for v in hive.values(child) if v.name.lower() == "servicedll"), None) or dll
    win32 = type_ is not None and bool(type_ & WIN32_TYPE_BITS) and type_ not in DRIVER_TYPES
    if not win32:
        return Service(name, start, type_, _text(vals.get("group")), image, _dword(vals.get("errorcontrol")),
                       override, resolve_image(name, image, type_))
    resolved = resolve_command(image) if image else None
    return Service(name, start, type_, _text(vals.get("group")), image, _dword(vals.get("errorcontrol")),
                   override, resolved.path if resolved else None, resolved,
                   resolve_file(dll) if dll else None)


def read_services(hive: Hive, cs: ControlSetRef) -> Tuple[Service, ...]:
    node = hive.find(f"{cs.key}\\Services")
    if node is None:
        raise CorruptHiveError(f"SYSTEM {cs.key} has no Services key.")
    return tuple(_service(hive, c) for c in hive.children(node))


def read_class_filters(hive: Hive, cs: ControlSetRef, classes: Iterable[str]) -> Tuple[ClassFilter, ...]:
    out = []
    for guid in classes:
        key = f"{cs.key}\\Control\\Class\\{guid}"
        if hive.find(key) is None:
            continue
        cname = hive.get_value(key, "Class") or guid
        for which in ("UpperFilters", "LowerFilters"):
            v = hive.get(key, which)
            if v is None:
                continue
            items = v.value if v.type == V.REG_MULTI_SZ else [str(v.value)] if v.type == V.REG_SZ else []
            out.append(ClassFilter(guid, str(cname), which, tuple(i for i in items if i)))
    return tuple(out)


def file_folders(services: Sequence[Service]) -> Tuple[str, ...]:
    """The distinct folders the drivers' images are in (what one listing each must cover)."""
    seen: Dict[str, str] = {}
    for s in services:
        if s.file:
            folder = s.file.rsplit("\\", 1)[0]
            seen.setdefault(folder.lower(), folder)
    return tuple(seen.values())
