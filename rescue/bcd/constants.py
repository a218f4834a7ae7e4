"""BCD vocabulary: element codes and their bcdedit names, object types, well-known objects.

Sources (tags as in ../shared/BCD-REFERENCE.md): element codes, friendly names and enum keywords from
GC-EL (Geoff Chappell, "BCD Elements", which lists bcdedit's own name tables) checked against MS-LIB,
MS-OSL, MS-BM; object types from GC-OBJ and the real stores (OBS); well-known GUIDs from GC-OBJ and
MS-ID, with the `{resumeloadersettings}` GUID as every real store has it (§9 trap 1).

An element code is `class << 28 | format << 24 | subtype` (§2). Class 1 (library) and 3 (device)
names are the same in every object; class 2 (application) names depend on the application the object
is for: 0x23000003 is `default` in {bootmgr} but `resumeobject` in an OS loader (GC-EL).
"""

from __future__ import annotations

# --- element formats (bits 24-27) -----------------------------------------------------------
FMT_DEVICE = 1
FMT_STRING = 2
FMT_OBJECT = 3
FMT_OBJECT_LIST = 4
FMT_INTEGER = 5
FMT_BOOLEAN = 6
FMT_INTEGER_LIST = 7
FORMAT_NAMES = {FMT_DEVICE: "device", FMT_STRING: "string", FMT_OBJECT: "object",
                FMT_OBJECT_LIST: "object list", FMT_INTEGER: "integer", FMT_BOOLEAN: "boolean",
                FMT_INTEGER_LIST: "integer list"}


def element_class(code: int) -> int:
    return (code >> 28) & 0xF


def element_format(code: int) -> int:
    return (code >> 24) & 0xF


def code_hex(code: int) -> str:
    """The JSON spelling of a code: "0x" + 8 lower-case hex digits."""
    return f"0x{code:08x}"


def key_name(code: int) -> str:
    """The Elements subkey name we write: 8 lower-case hex digits, as bcdedit does (§1)."""
    return f"{code:08x}"


# --- element codes the repairs use (BCD-REFERENCE.md §3) -------------------------------------
DEVICE = 0x11000001
PATH = 0x12000002
DESCRIPTION = 0x12000004
INHERIT = 0x14000006
BADMEMORYLIST = 0x1700000A
BOOTEMS = 0x16000020
EMSPORT = 0x15000022
EMSBAUDRATE = 0x15000023
OSDEVICE = 0x21000001
SYSTEMROOT = 0x22000002
BOOTMGR_DEFAULT = 0x23000003
DISPLAYORDER = 0x24000001
TIMEOUT = 0x25000004
OSLOADER_EMS = 0x260000B0

# --- element names ---------------------------------------------------------------------------
# Library elements (class 1): valid in every object [GC-EL "Library Elements"].
LIBRARY_NAMES = {
    0x11000001: "device", 0x12000002: "path", 0x12000004: "description", 0x12000005: "locale",
    0x14000006: "inherit", 0x15000007: "truncatememory", 0x14000008: "recoverysequence",
    0x16000009: "recoveryenabled", 0x1700000A: "badmemorylist", 0x1600000B: "badmemoryaccess",
    0x1500000C: "firstmegabytepolicy", 0x1500000D: "relocatephysical", 0x1500000E: "avoidlowmemory",
    0x1600000F: "traditionalkseg", 0x16000010: "bootdebug", 0x15000011: "debugtype",
    0x15000012: "debugaddress", 0x15000013: "debugport", 0x15000014: "baudrate",
    0x15000015: "channel", 0x12000016: "targetname", 0x16000017: "noumex", 0x15000018: "debugstart",
    0x12000019: "busparams", 0x1500001A: "hostip", 0x1500001B: "port", 0x1600001C: "dhcp",
    0x1200001D: "key", 0x1600001E: "vm", 0x1200001F: "hostipv6", 0x16000020: "bootems",
    0x15000022: "emsport", 0x15000023: "emsbaudrate", 0x12000030: "loadoptions",
    0x16000040: "advancedoptions", 0x16000041: "optionsedit", 0x15000042: "keyringaddress",
    0x11000043: "bootstatdevice", 0x12000044: "bootstatfilepath", 0x16000045: "preservebootstat",
    0x16000046: "graphicsmodedisabled", 0x15000047: "configaccesspolicy",
    0x16000048: "nointegritychecks", 0x16000049: "testsigning", 0x1200004A: "fontpath",
    0x1500004B: "integrityservices", 0x1500004C: "volumebandid", 0x16000050: "extendedinput",
    0x15000051: "initialconsoleinput", 0x15000052: "graphicsresolution",
    0x16000053: "restartonfailure", 0x16000054: "highestmode", 0x16000060: "isolatedcontext",
    0x15000065: "displaymessage", 0x15000066: "displaymessageoverride", 0x16000068: "nobootuxtext",
    0x16000069: "nobootuxprogress", 0x1600006A: "nobootuxfade", 0x1600006C: "bootuxdisabled",
    0x16000072: "nokeyboard", 0x16000074: "bootshutdowndisabled",
    0x17000077: "allowedinmemorysettings", 0x15000079: "bootuxtransitiontime",
    0x1600007A: "mobilegraphics", 0x1600007B: "forcefipscrypto", 0x1500007D: "booterrorux",
    0x1600007E: "flightsigning", 0x1500007F: "measuredbootlogformat", 0x15000080: "displayrotation",
    0x15000081: "logcontrol", 0x16000082: "nofirmwaresync", 0x11000084: "windowssyspart",
    0x16000087: "numlock", 0x12000088: "additionalcipolicy", 0x15000088: "linearaddress57",
}

# Application elements allowed in any object by Windows 10's bcdedit [GC-EL].
GLOBAL_APP_NAMES = {
    0x26000202: "skipffumode", 0x26000203: "forceffumode", 0x25000510: "chargethreshold",
    0x26000512: "offmodecharging", 0x25000AAA: "bootflow",
}

# Template elements (class 4): only one has a bcdedit name [GC-EL "Template Elements"].
TEMPLATE_NAMES = {0x47000006: "elementstomigrate"}

# {fwbootmgr} / {bootmgr} (application types 1 and 2) [GC-EL, MS-BM].
BOOTMGR_NAMES = {
    0x24000001: "displayorder", 0x24000002: "bootsequence", 0x23000003: "default",
    0x25000004: "timeout", 0x26000005: "resume", 0x23000006: "resumeobject",
    0x24000007: "startupsequence", 0x24000010: "toolsdisplayorder", 0x26000020: "displaybootmenu",
    0x26000021: "noerrordisplay", 0x21000022: "bcddevice", 0x22000023: "bcdfilepath",
    0x26000025: "hiberboot", 0x26000028: "processcustomactionsfirst", 0x27000030: "customactions",
    0x26000031: "persistbootsequence", 0x26000032: "skipstartupsequence",
    0x22000040: "fverecoveryurl", 0x22000041: "fverecoverymessage", 0x26000042: "flightedbootmgr",
}

# OS loader, winload (application type 3) [GC-EL, MS-OSL].
OSLOADER_NAMES = {
    0x21000001: "osdevice", 0x22000002: "systemroot", 0x23000003: "resumeobject",
    0x26000004: "stampdisks", 0x26000010: "detecthal", 0x22000011: "kernel", 0x22000012: "hal",
    0x22000013: "dbgtransport", 0x25000020: "nx", 0x25000021: "pae", 0x26000022: "winpe",
    0x26000024: "nocrashautoreboot", 0x26000025: "lastknowngood",
    0x26000026: "oslnointegritychecks", 0x26000027: "osltestsigning", 0x26000030: "nolowmem",
    0x25000031: "removememory", 0x25000032: "increaseuserva", 0x25000033: "perfmem",
    0x26000040: "vga", 0x26000041: "quietboot", 0x26000042: "novesa", 0x26000043: "novga",
    0x25000050: "clustermodeaddressing", 0x26000051: "usephysicaldestination",
    0x25000052: "restrictapiccluster", 0x22000053: "evstore", 0x26000054: "uselegacyapicmode",
    0x25000055: "x2apicpolicy", 0x26000060: "onecpu", 0x25000061: "numproc", 0x26000062: "maxproc",
    0x25000063: "configflags", 0x26000064: "maxgroup", 0x26000065: "groupaware",
    0x25000066: "groupsize", 0x26000070: "usefirmwarepcisettings", 0x25000071: "msi",
    0x25000072: "pciexpress", 0x25000080: "safeboot", 0x26000081: "safebootalternateshell",
    0x26000090: "bootlog", 0x26000091: "sos", 0x260000A0: "debug", 0x260000A1: "halbreakpoint",
    0x260000A2: "useplatformclock", 0x260000A3: "forcelegacyplatform", 0x260000A4: "useplatformtick",
    0x260000A5: "disabledynamictick", 0x250000A6: "tscsyncpolicy", 0x260000B0: "ems",
    0x250000C1: "driverloadfailurepolicy", 0x250000C2: "bootmenupolicy",
    0x260000C3: "onetimeadvancedoptions", 0x260000C4: "onetimeoptionsedit",
    0x250000E0: "bootstatuspolicy", 0x260000E1: "disableelamdrivers",
    0x250000F0: "hypervisorlaunchtype", 0x220000F1: "hypervisorpath", 0x260000F2: "hypervisordebug",
    0x250000F3: "hypervisordebugtype", 0x250000F4: "hypervisordebugport",
    0x250000F5: "hypervisorbaudrate", 0x250000F6: "hypervisorchannel", 0x250000F7: "bootux",
    0x260000F8: "hypervisordisableslat", 0x220000F9: "hypervisorbusparams",
    0x250000FA: "hypervisornumproc", 0x250000FB: "hypervisorrootprocpernode",
    0x260000FC: "hypervisoruselargevtlb", 0x250000FD: "hypervisorhostip",
    0x250000FE: "hypervisorhostport", 0x250000FF: "hypervisordebugpages",
    0x25000100: "tpmbootentropy", 0x22000110: "hypervisorusekey", 0x25000113: "hypervisorrootproc",
    0x26000114: "hypervisordhcp", 0x25000115: "hypervisoriommupolicy",
    0x26000116: "hypervisorusevapic", 0x22000117: "hypervisorloadoptions",
    0x25000118: "hypervisormsrfilterpolicy", 0x25000119: "hypervisormmionxpolicy",
    0x2500011A: "hypervisorschedulertype", 0x25000120: "xsavepolicy",
    0x25000121: "xsaveaddfeature0", 0x25000122: "xsaveaddfeature1", 0x25000123: "xsaveaddfeature2",
    0x25000124: "xsaveaddfeature3", 0x25000125: "xsaveaddfeature4", 0x25000126: "xsaveaddfeature5",
    0x25000127: "xsaveaddfeature6", 0x25000128: "xsaveaddfeature7",
    0x25000129: "xsaveremovefeature", 0x2500012A: "xsaveprocessorsmask", 0x2500012B: "xsavedisable",
    0x2500012C: "kerneldebugtype", 0x2200012D: "kernelbusparams", 0x2500012E: "kerneldebugaddress",
    0x2500012F: "kerneldebugport", 0x25000130: "claimedtpmcounter", 0x25000131: "kernelchannel",
    0x22000132: "kerneltargetname", 0x25000133: "kernelhostip", 0x25000134: "kernelport",
    0x26000135: "kerneldhcp", 0x22000136: "kernelkey", 0x22000137: "imchivename",
    0x21000138: "imcdevice", 0x25000139: "kernelbaudrate", 0x22000140: "mfgmode",
    0x26000141: "event", 0x25000142: "vsmlaunchtype", 0x25000144: "hypervisorenforcedcodeintegrity",
    0x21000150: "systemdatadevice", 0x21000151: "osarcdevice", 0x21000153: "osdatadevice",
    0x21000154: "bspdevice", 0x21000155: "bspfilepath",
}

# Resume from hibernate, winresume (application type 4) [GC-EL].
RESUME_NAMES = {
    0x21000001: "filedevice", 0x22000002: "filepath", 0x26000003: "customsettings",
    0x26000004: "pae", 0x21000005: "associatedosdevice", 0x26000006: "debugoptionenabled",
    0x25000007: "bootux", 0x25000008: "bootmenupolicy",
}

# Memory tester (application type 5), Windows 8+ numbering [GC-EL].
MEMDIAG_NAMES = {
    0x25000001: "passcount", 0x25000002: "testmix", 0x26000003: "cacheenable",
    0x26000004: "failuresenabled", 0x25000005: "stridefailcount", 0x25000006: "invcfailcount",
    0x25000007: "matsfailcount", 0x25000008: "randfailcount", 0x25000009: "chckrfailcount",
}

NTLDR_NAMES = {0x22000001: "bpbstring"}                       # application types 6, 7
STARTUP_NAMES = {0x26000001: "pxesoftreboot", 0x22000002: "applicationname"}   # type 9

# Device options (class 3) [GC-EL "Device Elements"].
DEVICE_NAMES = {
    0x35000001: "ramdiskimageoffset", 0x35000002: "ramdisktftpclientport",
    0x31000003: "ramdisksdidevice", 0x32000004: "ramdisksdipath", 0x35000005: "ramdiskimagelength",
    0x36000006: "exportascd", 0x35000007: "ramdisktftpblocksize", 0x35000008: "ramdisktftpwindowsize",
    0x36000009: "ramdiskmcenabled", 0x3600000A: "ramdiskmctftpfallback",
    0x3600000B: "ramdisktftpvarwindow", 0x3600000C: "vhdramdiskboot",
}

APP_NAMES_BY_APPTYPE = {1: BOOTMGR_NAMES, 2: BOOTMGR_NAMES, 3: OSLOADER_NAMES, 4: RESUME_NAMES,
                        5: MEMDIAG_NAMES, 6: NTLDR_NAMES, 7: NTLDR_NAMES, 9: STARTUP_NAMES}

# Integer values bcdedit prints as keywords [GC-EL "Format or Value" columns; MS-DBGT].
_DISPLAY_MESSAGE = {0: "Default", 1: "Resume", 2: "HyperV", 3: "Recovery", 4: "StartupRepair",
                    5: "SystemImageRecovery", 6: "CommandPrompt", 7: "SystemRestore",
                    8: "PushButtonReset"}
LIBRARY_ENUMS = {
    0x1500000C: {0: "UseNone", 1: "UseAll", 2: "UsePrivate"},
    0x15000011: {0: "Serial", 1: "1394", 2: "USB", 3: "NET", 4: "Local"},
    0x15000018: {0: "Active", 1: "AutoEnable", 2: "Disable"},
    0x15000047: {0: "Default", 1: "DisallowMmConfig"},
    0x1500004B: {0: "Default", 1: "Enable", 2: "Disable"},
    0x15000052: {0: "1024x768", 1: "800x600", 2: "1024x600"},
    0x15000065: _DISPLAY_MESSAGE, 0x15000066: _DISPLAY_MESSAGE,
    0x1500007D: {0: "Legacy", 1: "Standard", 2: "Simple"},
    0x1500007F: {0: "Default", 1: "Sha1"},
}
OSLOADER_ENUMS = {
    0x25000020: {0: "OptIn", 1: "OptOut", 2: "AlwaysOff", 3: "AlwaysOn"},
    0x25000021: {0: "Default", 1: "ForceEnable", 2: "ForceDisable"},
    0x25000055: {0: "Default", 1: "Disable", 2: "Enable"},
    0x25000071: {0: "Default", 1: "ForceDisable"}, 0x25000072: {0: "Default", 1: "ForceDisable"},
    0x25000080: {0: "Minimal", 1: "Network", 2: "DsRepair"},
    0x250000A6: {0: "Default", 1: "Legacy", 2: "Enhanced"},
    0x250000C1: {0: "Fatal", 1: "UseErrorControl"}, 0x250000C2: {0: "Legacy", 1: "Standard"},
    0x250000E0: {0: "DisplayAllFailures", 1: "IgnoreAllFailures", 2: "IgnoreShutdownFailures",
                 3: "IgnoreBootFailures", 4: "IgnoreCheckpointFailures",
                 5: "DisplayShutdownFailures", 6: "DisplayBootFailures",
                 7: "DisplayCheckpointFailures", 8: "AlwaysDisplayStartupFailures"},
    0x250000F0: {0: "Off", 1: "Auto"},
    0x250000F3: {0: "Serial", 1: "1394", 2: "None", 3: "Net"},
    0x250000F7: {0: "Disabled", 1: "Basic", 2: "Standard"},
    0x25000100: {0: "Default", 1: "ForceDisable", 2: "ForceEnable"},
    0x25000115: {0: "Default", 1: "Enable", 2: "Disable"},
    0x25000118: {0: "Disable", 1: "Enable"}, 0x25000119: {0: "Disable", 1: "Enable"},
    0x2500011A: {0: "Classic", 1: "Core", 2: "Root"},
    0x2500012C: {0: "Serial", 1: "1394", 2: "USB", 3: "NET"},
    0x25000142: {0: "Off", 1: "Auto"}, 0x25000144: {0: "Disable", 1: "Enable", 2: "Strict"},
}
RESUME_ENUMS = {0x25000007: {0: "Disabled", 1: "Basic", 2: "Standard"},
                0x25000008: {0: "Legacy", 1: "Standard"}}
MEMDIAG_ENUMS = {0x25000002: {0: "Basic", 1: "Extended"}}
APP_ENUMS_BY_APPTYPE = {3: OSLOADER_ENUMS, 4: RESUME_ENUMS, 5: MEMDIAG_ENUMS}

# Integers bcdedit prints in hex rather than decimal (addresses, masks, element codes).
HEX_INTEGERS = {0x15000012, 0x15000042, 0x2500012E, 0x2500012A, 0x25000120}

# --- objects -------------------------------------------------------------------------------
TYPE_FWBOOTMGR = 0x10100001
TYPE_BOOTMGR = 0x10100002
TYPE_OSLOADER = 0x10200003
TYPE_RESUME = 0x10200004
TYPE_MEMDIAG = 0x10200005
TYPE_NTLDR = 0x10300006
TYPE_BOOTSECTOR = 0x10400008
TYPE_STARTUP = 0x10400009
TYPE_FW_APP = 0x101FFFFF
TYPE_INHERIT_ANY = 0x20100000
TYPE_INHERIT_OSLOADER = 0x20200003
TYPE_INHERIT_RESUME = 0x20200004
TYPE_DEVICE_OPTIONS = 0x30000000

# bcdedit's block headings [GC-OBJ, bcdedit output].
OBJECT_TYPE_NAMES = {
    TYPE_FWBOOTMGR: "Firmware Boot Manager",
    TYPE_BOOTMGR: "Windows Boot Manager",
    TYPE_OSLOADER: "Windows Boot Loader",
    TYPE_RESUME: "Resume from Hibernate",
    TYPE_MEMDIAG: "Windows Memory Tester",
    TYPE_NTLDR: "Windows Legacy OS Loader",
    TYPE_BOOTSECTOR: "Real-mode Boot Sector",
    TYPE_STARTUP: "Real-mode Application",
    TYPE_FW_APP: "Firmware Application (101fffff)",
    TYPE_DEVICE_OPTIONS: "Device options",
}

GUID_BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
GUID_FWBOOTMGR = "{a5a30fa2-3d06-4e9f-b5f4-a01df9d1fcba}"
GUID_MEMDIAG = "{b2721d73-1db4-4c62-bf78-c548a880142d}"
GUID_BADMEMORY = "{5189b25c-5558-4bf2-bca4-289b11bd29e2}"
GUID_EMSSETTINGS = "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}"
GUID_DBGSETTINGS = "{4636856e-540f-4170-a130-a84776f4c654}"
GUID_GLOBALSETTINGS = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
GUID_BOOTLOADERSETTINGS = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"
GUID_RESUMELOADERSETTINGS = "{1afa9c49-16ab-4a5c-901b-212802da9460}"   # not GC-OBJ's "-4a90-" (§9)
GUID_HYPERVISORSETTINGS = "{7ff607e0-4395-11db-b0de-0800200c9a66}"
GUID_RAMDISKOPTIONS = "{ae5534e0-a924-466c-b836-758539a3ee3a}"
GUID_NTLDR = "{466f5a88-0af2-4f76-9038-095b170dc21c}"
GUID_KERNELDBGSETTINGS = "{313e8eed-7098-4586-a9bf-309c61f8d449}"
GUID_CURRENT = "{fa926493-6f1c-4193-a414-58f0b2456d1e}"     # virtual: never stored (§5)
GUID_DEFAULT = "{1cae1eb7-a0df-4d4d-9851-4860e34ef535}"     # virtual: never stored (§5)

ALIASES = {
    "{bootmgr}": GUID_BOOTMGR, "{fwbootmgr}": GUID_FWBOOTMGR, "{memdiag}": GUID_MEMDIAG,
    "{badmemory}": GUID_BADMEMORY, "{emssettings}": GUID_EMSSETTINGS,
    "{dbgsettings}": GUID_DBGSETTINGS, "{globalsettings}": GUID_GLOBALSETTINGS,
    "{bootloadersettings}": GUID_BOOTLOADERSETTINGS,
    "{resumeloadersettings}": GUID_RESUMELOADERSETTINGS,
    "{hypervisorsettings}": GUID_HYPERVISORSETTINGS, "{ramdiskoptions}": GUID_RAMDISKOPTIONS,
    "{ntldr}": GUID_NTLDR, "{kerneldbgsettings}": GUID_KERNELDBGSETTINGS,
}
ALIAS_INPUT = {**ALIASES, "{legacy}": GUID_NTLDR, "{eventsettings}": GUID_DBGSETTINGS}
ALIAS_OF_GUID = {guid: alias for alias, guid in ALIASES.items()}

# Headings bcdedit gives the well-known settings objects (their type alone is just "inherit").
ALIAS_TYPE_NAMES = {
    "{emssettings}": "EMS Settings", "{dbgsettings}": "Debugger Settings",
    "{badmemory}": "RAM Defects", "{globalsettings}": "Global Settings",
    "{bootloadersettings}": "Boot Loader Settings", "{resumeloadersettings}": "Resume Loader Settings",
    "{hypervisorsettings}": "Hypervisor Settings", "{ramdiskoptions}": "Ramdisk Options",
    "{kerneldbgsettings}": "Kernel Debugger Settings",
}

_APP_KIND = {1: "fwbootmgr", 2: "bootmgr", 3: "osloader", 4: "resume", 5: "memdiag", 6: "ntldr",
             7: "setupldr", 8: "bootsector", 9: "startup", 0xA: "bootapp"}


def object_kind(type_: int | None) -> int | None:
    """Top nibble: 1 application, 2 inherit, 3 device [GC-OBJ]."""
    return None if type_ is None else (type_ >> 28) & 0xF


def application_type(type_: int | None) -> int | None:
    """The application an object's class-2 elements belong to: the low 20 bits of an application
    object, or of an inherit object inheritable by one application type (0x2X2YYYYY) [GC-EL]."""
    if type_ is None:
        return None
    kind = object_kind(type_)
    if kind == 1:
        return type_ & 0xFFFFF
    if kind == 2 and (type_ >> 20) & 0xF == 2:
        return type_ & 0xFFFFF
    return None


# Headings bcdedit gives four fixed OS loader objects of BCD-Template instead of "Windows Boot
# Loader": `bcdedit /store %WINDIR%\System32\config\BCD-Template /enum {id}` output pasted in
# mattifestation/BCD, BCD/Examples/BCDTemplateFromScratch.ps1 (Windows 10): {a1943bbc-...}
# (TargetTemplatePCAT) and {b012b84d-...} (TargetTemplateEFI) print as "OS Target Template",
# {7254a080-...} and {cbd971bf-...} (the template's {default}) as "Windows Setup". The template's
# resume objects {98b02a23-...} and {0c334284-...} keep "Resume from Hibernate" (same source).
GUID_TYPE_NAMES = {
    "{a1943bbc-ea85-487c-97c7-c9ede908a38a}": "OS Target Template",
    "{b012b84d-c47c-4ed5-b722-c0c42163e569}": "OS Target Template",
    "{7254a080-1510-4e85-ac0f-e7fb3d444736}": "Windows Setup",
    "{cbd971bf-b7b8-4885-951a-fa03044f5d71}": "Windows Setup",
}


def object_type_name(type_: int | None, alias: str | None = None, guid: str | None = None) -> str:
    if alias in ALIAS_TYPE_NAMES:
        return ALIAS_TYPE_NAMES[alias]
    if guid is not None and type_ == TYPE_OSLOADER and guid.lower() in GUID_TYPE_NAMES:
        return GUID_TYPE_NAMES[guid.lower()]
    if type_ is None:
        return "Object without a type"
    if type_ in OBJECT_TYPE_NAMES:
        return OBJECT_TYPE_NAMES[type_]
    kind = object_kind(type_)
    if kind == 1:
        return f"Application ({type_:08x})"
    if kind == 2:
        app = application_type(type_)
        if app is not None:
            return f"Inherited Settings ({_APP_KIND.get(app, f'{app:x}')})"
        return "Inherited Settings" if (type_ >> 20) & 0xF == 1 else f"Inherited Settings ({type_:08x})"
    if kind == 3:
        return "Device options"
    return f"Object ({type_:08x})"


def _tables(type_: int | None) -> list[dict[int, str]]:
    tables = [LIBRARY_NAMES, DEVICE_NAMES, TEMPLATE_NAMES, GLOBAL_APP_NAMES]
    app = application_type(type_)
    if app in APP_NAMES_BY_APPTYPE:
        tables.append(APP_NAMES_BY_APPTYPE[app])
    return tables


def element_name(code: int, type_: int | None) -> str:
    """bcdedit's name for `code` in an object of type `type_`, or "custom:xxxxxxxx" as bcdedit
    spells elements it has no name for (GC-EL: "custom:250000C0")."""
    for table in _tables(type_):
        if code in table:
            return table[code]
    return f"custom:{code:08x}"


def element_code(name: str, type_: int | None) -> int | None:
    """The code for a bcdedit name valid in an object of type `type_`, a hex code ("0x1700000a",
    "1700000a") or "custom:1700000a"; None when the name is unknown for that object."""
    text = name.strip().lower()
    if text.startswith("custom:"):
        text = text[7:]
    if text.startswith("0x"):
        text = text[2:]
    if len(text) == 8 and all(c in "0123456789abcdef" for c in text):
        return int(text, 16)
    for table in _tables(type_):
        for code, n in table.items():
            if n == text:
                return code
    return None


def element_enums(code: int, type_: int | None) -> dict[int, str] | None:
    if element_class(code) == 1:
        return LIBRARY_ENUMS.get(code)
    if element_class(code) == 2:
        app = application_type(type_)
        return APP_ENUMS_BY_APPTYPE.get(app, {}).get(code) if app is not None else None
    return None


def known_name_anywhere(name: str) -> bool:
    """True when `name` is a bcdedit element name in some object type (for a better error)."""
    n = name.strip().lower()
    tables = [LIBRARY_NAMES, DEVICE_NAMES, TEMPLATE_NAMES, GLOBAL_APP_NAMES, *APP_NAMES_BY_APPTYPE.values()]
    return any(n in t.values() for t in tables)
