"""reg.exe key spellings -> the hive file that holds the key, and the path inside that hive.

Online, reg.exe names keys from the registry's roots (`HKLM\\SYSTEM\\...`, `HKU\\<sid>\\...`). Offline
every such key lives in one hive file on the Windows volume:
  HKLM\\SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT -> \\Windows\\System32\\config\\<NAME>
  HKU\\.DEFAULT                                  -> \\Windows\\System32\\config\\DEFAULT
  HKU\\<user name or SID>, HKCU (--user)         -> \\Users\\<name>\\NTUSER.DAT (SID via SOFTWARE ProfileList)
  HKU\\<SID>_Classes                             -> \\Users\\<name>\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat
  HKCR                                          -> SOFTWARE\\Classes (the machine part of the merged view)
  HKCC                                          -> SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current
(Windows Internals 7th ed., ch. 10 "Registry", table "On-disk files corresponding to paths in the
registry"). HKLM\\HARDWARE is built in memory at every boot and has no file.

`CurrentControlSet` is a volatile link Windows creates at boot; offline it does not exist, and the
set it points to is `Select\\Current` (ControlSet00N). `resolve_path` applies that rule; without a
`Select\\Current` the key cannot be resolved and the user must name the set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import TYPE_CHECKING

from rescue.errors import NotFoundError, UsageError
from rescue.fileref import FileRef

if TYPE_CHECKING:
    from rescue.hive.hive import Hive
    from rescue.layout import WindowsInstall
    from rescue.target import Target

CONFIG_DIR = "\\Windows\\System32\\config"
MACHINE_HIVES = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT")

HKLM, HKU, HKCU, HKCR, HKCC = ("HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER",
                               "HKEY_CLASSES_ROOT", "HKEY_CURRENT_CONFIG")
ROOT_ALIASES = {"HKLM": HKLM, HKLM: HKLM, "HKU": HKU, HKU: HKU, "HKCU": HKCU, HKCU: HKCU,
                "HKCR": HKCR, HKCR: HKCR, "HKCC": HKCC, HKCC: HKCC}
NO_FILE = {
    "HARDWARE": "HKLM\\HARDWARE is built by Windows at every boot and has no file to read offline.",
    "BCD00000000": "HKLM\\BCD00000000 is the BCD store: use `rescue bcd enum` / `rescue bcd set`.",
}
# Folders under \Users that are not a person's profile.
NOT_PROFILES = {"default", "default user", "public", "all users", "desktop.ini"}
CCS = "CurrentControlSet"
_HKLM_HIVES = ", ".join("HKLM\\" + h for h in MACHINE_HIVES)


def hive_file(name: str) -> str:
    """"SYSTEM" -> "\\Windows\\System32\\config\\SYSTEM"."""
    return f"{CONFIG_DIR}\\{name.upper()}"


@dataclass(frozen=True)
class KeySpec:
    """A key as the user spelled it, parsed but not yet tied to a file.

    `root` is the long root name (None: a path relative to a bare hive file's root). `hive` is the
    component that picks the file (SYSTEM, SOFTWARE..., a user name or SID, ".DEFAULT"; None for
    HKCU). `path` is the path inside that hive (may still start with CurrentControlSet). `display`
    is reg.exe's spelling of the key: the long root name, then the rest as typed.
    """

    typed: str
    root: str | None
    hive: str | None
    path: str
    display: str


def _components(text: str) -> list[str]:
    # reg.exe rejects empty components ("a\\\\b"); one trailing backslash is allowed (Wine's
    # reg tests: `HKCU\\key\\` works, `HKCU\\key\\\\` fails).
    parts = text.split("\\")
    if parts and parts[-1] == "":
        parts.pop()
    if any(p == "" for p in parts):
        raise UsageError(f"{text!r} is not a valid registry key (empty name between backslashes).")
    return parts


def parse_key(text: str) -> KeySpec:
    """Parse reg.exe's key spelling. Unknown first components make a relative path (bare hive file)."""
    raw = text.strip()
    if not raw:
        raise UsageError("Give a registry key, e.g. HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl.")
    stripped = raw.lstrip("\\")
    parts = _components(stripped) if stripped else []
    root = ROOT_ALIASES.get(parts[0].upper()) if parts else None
    if root is None:
        rel = "\\".join(parts)
        return KeySpec(typed=raw, root=None, hive=None, path=rel, display=rel)
    rest = parts[1:]
    display = "\\".join([root, *rest])
    if root == HKLM:
        if not rest:
            return KeySpec(raw, root, None, "", display)
        return KeySpec(raw, root, rest[0].upper() if rest[0].upper() in MACHINE_HIVES else rest[0],
                       "\\".join(rest[1:]), display)
    if root == HKU:
        if not rest:
            return KeySpec(raw, root, None, "", display)
        return KeySpec(raw, root, rest[0], "\\".join(rest[1:]), display)
    if root == HKCR:
        return KeySpec(raw, root, "SOFTWARE", "\\".join(["Classes", *rest]), display)
    if root == HKCC:
        return KeySpec(raw, root, "SYSTEM", "\\".join([CCS, "Hardware Profiles", "Current", *rest]), display)
    return KeySpec(raw, root, None, "\\".join(rest), display)          # HKCU


@dataclass(frozen=True)
class KeyLocation:
    """Where a key lives: the hive file (`ref`), a name for it, and the path inside it."""

    spec: KeySpec
    ref: FileRef
    hive_name: str          # "SYSTEM", "NTUSER.DAT (azureuser)", or the bare file's name
    path: str               # inside the hive; CurrentControlSet not yet resolved


def locate_in_file(spec: KeySpec, ref: FileRef) -> KeyLocation:
    """TARGET is a hive file: keys are relative to its root; a leading `HKLM\\SYSTEM` (or
    `HKU\\name`, `HKCU`) is accepted and dropped, since the file is the hive."""
    name = PureWindowsPath(ref.path).name or ref.path
    if spec.root in (HKLM, HKU) and spec.hive is None:
        raise UsageError(f"{spec.display} names no hive; with a hive file as TARGET give the key "
                         "relative to its root (e.g. Select), or spell the hive (HKLM\\SYSTEM\\Select).")
    return KeyLocation(spec, ref, name, spec.path)


def profile_dir(image_path: str) -> str:
    """A ProfileList `ProfileImagePath` ("C:\\Users\\azureuser", "%SystemDrive%\\Users\\x",
    "%systemroot%\\system32\\config\\systemprofile") -> that folder on the Windows volume."""
    p = image_path.strip().replace("/", "\\")
    p = re.sub(r"(?i)^%systemroot%", "\\\\Windows", p)
    p = re.sub(r"(?i)^%systemdrive%", "", p)
    p = re.sub(r"^[A-Za-z]:", "", p)
    return "\\" + "\\".join(x for x in p.split("\\") if x)


def user_hive_path(profile: str, classes: bool = False) -> str:
    """The NTUSER.DAT (or UsrClass.dat for HKU\\<SID>_Classes) of a profile folder."""
    if classes:
        return f"{profile}\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat"
    return f"{profile}\\NTUSER.DAT"


def is_sid(text: str) -> bool:
    return bool(re.fullmatch(r"(?i)S-1-\d+(-\d+)*(_Classes)?", text))


def sid_profile(software_hive: Hive, sid: str) -> str | None:
    """ProfileImagePath of `sid` from the SOFTWARE hive (a `rescue.hive.Hive`), as a volume path."""
    base = sid[:-len("_Classes")] if sid.lower().endswith("_classes") else sid
    v = software_hive.get_value(f"Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\{base}", "ProfileImagePath")
    return profile_dir(v) if isinstance(v, str) and v else None


def locate_on_disk(spec: KeySpec, target: Target, *, user: str | None = None) -> KeyLocation:
    """TARGET is a disk set (`rescue.target.DiskTarget` with a layout): pick the hive file on the
    Windows volume. Reads \\Users (and SOFTWARE's ProfileList for SIDs) only for user hives."""
    root = target.windows_root()

    def on_root(path: str) -> FileRef:
        return FileRef(path, root.disk, root.partition)

    if spec.root is None:
        raise UsageError(f"{spec.typed!r} does not start with HKLM, HKU, HKCU, HKCR or HKCC.",
                         hint="Spell the key as reg.exe does, e.g. HKLM\\SYSTEM\\Select.")
    if spec.root in (HKLM, HKCR, HKCC):
        if spec.hive is None:
            raise UsageError("HKLM has no file of its own: name a hive, e.g. HKLM\\SYSTEM\\Select "
                             f"({_HKLM_HIVES}).")
        if spec.hive.upper() in NO_FILE:
            raise NotFoundError(NO_FILE[spec.hive.upper()])
        if spec.hive not in MACHINE_HIVES:
            raise NotFoundError(f"HKLM\\{spec.hive} is not a hive Windows keeps in a file.",
                                hint=f"Use one of {_HKLM_HIVES}.")
        return KeyLocation(spec, on_root(hive_file(spec.hive)), spec.hive, spec.path)

    if spec.root == HKU and spec.hive is None:
        raise UsageError("HKU has no file of its own: name a profile, e.g. HKU\\.DEFAULT or HKU\\azureuser.")
    who = spec.hive if spec.root == HKU else user
    if who is not None and who.upper() == ".DEFAULT":
        return KeyLocation(spec, on_root(hive_file("DEFAULT")), "DEFAULT", spec.path)
    if who is None:                                   # HKCU without --user
        profiles = list_profiles(target, root)
        if len(profiles) != 1:
            found = ", ".join(profiles) if profiles else "none"
            raise UsageError(f"HKCU is the hive of whoever logs on; offline, say whose with --user NAME "
                             f"(profiles with an NTUSER.DAT: {found}).")
        who = profiles[0]
    if is_sid(who):
        from rescue.hive import Hive
        from rescue.layout import SOFTWARE_HIVE

        prof = sid_profile(Hive(target.local_copy(on_root(SOFTWARE_HIVE))), who)
        if prof is None:
            raise NotFoundError(f"No profile for {who} in SOFTWARE's ProfileList.")
        path = user_hive_path(prof, classes=who.lower().endswith("_classes"))
    else:
        path = user_hive_path(f"\\Users\\{who}")
    ref = on_root(path)
    if not target.exists(ref):
        profiles = list_profiles(target, root)
        raise NotFoundError(f"{path} does not exist on the Windows volume.",
                            hint=f"Profiles with an NTUSER.DAT: {', '.join(profiles) or 'none'}.")
    return KeyLocation(spec, ref, f"{PureWindowsPath(path).name} ({who})", spec.path)


def list_profiles(target: Target, root: WindowsInstall) -> list[str]:
    """Folders under \\Users holding an NTUSER.DAT, except Default/Public (people, not templates)."""
    users = FileRef("\\Users", root.disk, root.partition)
    out = []
    for name in target.listdir(users):
        if name.lower() in NOT_PROFILES:
            continue
        if target.exists(FileRef(f"\\Users\\{name}\\NTUSER.DAT", root.disk, root.partition)):
            out.append(name)
    return out


# --- control sets ------------------------------------------------------------------------------
def control_sets(hive: Hive) -> list[int]:
    """Numbers of the ControlSetNNN keys present in a SYSTEM hive, ascending."""
    out = []
    for name in hive.child_names(""):
        m = re.fullmatch(r"(?i)ControlSet(\d{3})", name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def control_set_key(n: int) -> str:
    return f"ControlSet{n:03d}"


def current_control_set(hive: Hive, *, name: str = "SYSTEM") -> int:
    """Select\\Current, checked: the set must exist. Errors say what to do instead."""
    cur = hive.get("Select", "Current")
    if cur is None:
        raise NotFoundError(f"{name} has no Select\\Current value, so CurrentControlSet cannot be resolved.",
                            hint="Name the control set instead, e.g. ControlSet001.")
    n = cur.value if isinstance(cur.value, int) else None
    if n is None or not 0 < n < 1000:
        raise NotFoundError(f"{name}'s Select\\Current is not a control set number ({cur.type_name} "
                            f"{cur.data.hex()}).", hint="Name the control set instead, e.g. ControlSet001.")
    if hive.find(control_set_key(n)) is None:
        raise NotFoundError(f"{name}'s Select\\Current is {n} but {control_set_key(n)} does not exist.",
                            hint=f"Name an existing set: {', '.join(map(control_set_key, control_sets(hive))) or 'none'}.")
    return n


@dataclass(frozen=True)
class ResolvedPath:
    path: str                       # inside the hive, CurrentControlSet replaced
    control_set: int | None         # N when CurrentControlSet was resolved


def resolve_path(hive: Hive, path: str, *, name: str = "SYSTEM") -> ResolvedPath:
    """Replace a leading CurrentControlSet by ControlSet00N (Select\\Current). A hive that really has
    a key called CurrentControlSet (never the case in a file Windows wrote) is taken literally."""
    parts = [p for p in path.split("\\") if p]
    if not parts or parts[0].lower() != CCS.lower() or hive.find(parts[0]) is not None:
        return ResolvedPath("\\".join(parts), None)
    n = current_control_set(hive, name=name)
    return ResolvedPath("\\".join([control_set_key(n), *parts[1:]]), n)


def resolved_display(display: str, resolved: ResolvedPath) -> str:
    """reg.exe's key name with CurrentControlSet shown as the set it resolved to."""
    current = resolved.control_set
    if current is None:
        return display
    return re.sub(r"(?i)\\CurrentControlSet(?=\\|$)|^CurrentControlSet(?=\\|$)",
                  lambda m: m.group(0)[:-len(CCS)] + control_set_key(current), display, count=1)
