"""Which file a Win32 service's ImagePath starts, resolved offline the way the Service Control
Manager does, as a path on the Windows volume.

Sources (Microsoft Learn):
- "CreateServiceW function (winsvc.h)", lpBinaryPathName: the fully qualified path to the service
  binary, optionally followed by arguments; a path with a space must be quoted
  (`"d:\\my share\\myservice.exe" -arg`). SCM starts the service with CreateProcess, the ImagePath
  as the command line (REG_EXPAND_SZ, expanded with the system's variables first).
- "CreateProcessW function (processthreadsapi.h)", lpCommandLine: with no application name, the
  module is the first white-space delimited token; an unquoted long name with spaces is ambiguous
  and the system tries, in order, `c:\\program.exe`, `c:\\program files\\sub.exe`,
  `c:\\program files\\sub dir\\program.exe`, `c:\\program files\\sub dir\\program name.exe`: the
  successive space-separated prefixes, `.exe` appended to a name without an extension. The first
  one that exists is started.
- "Svchost Service Group" / a shared-process service (Type 0x20) hosted by
  `%SystemRoot%\\System32\\svchost.exe -k GROUP`: the host is svchost.exe and the code is the DLL
  named by `Services\\NAME\\Parameters\\ServiceDll` (REG_EXPAND_SZ); svchost logs event 7023 "The
  specified module could not be found" when that DLL is gone.

Expansion uses the values a Windows Server image has: %SystemRoot% / %windir% = C:\\Windows,
%SystemDrive% = C:, %ProgramFiles% / %ProgramW6432% = C:\\Program Files, %ProgramFiles(x86)% =
C:\\Program Files (x86), %CommonProgramFiles%, %ProgramData% = C:\\ProgramData. ProgramFiles is not
read from SOFTWARE (Microsoft\\Windows\\CurrentVersion\\ProgramFilesDir): moving Program Files is not
supported by Microsoft, and reading SOFTWARE would cost the driver fix a second hive download.
A variable rescue does not know is left unresolved (presence unknown), never guessed.

Kernel drivers (Type 1/2) are resolved by rescue.registry.services.resolve_image (no arguments,
`\\SystemRoot\\` and relative paths under %SystemRoot%).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

SYSTEM_DRIVE = "C"
PROGRAM_FILES = "C:\\Program Files"


def environment(program_files: str = PROGRAM_FILES, system_drive: str = SYSTEM_DRIVE) -> Dict[str, str]:
    """The system variables SCM expands ImagePath with (lower-case names)."""
    d = f"{system_drive}:"
    return {
        "systemroot": f"{d}\\Windows", "windir": f"{d}\\Windows", "systemdrive": d,
        "programfiles": program_files, "programw6432": program_files,
        "programfiles(x86)": f"{d}\\Program Files (x86)",
        "commonprogramfiles": f"{program_files}\\Common Files",
        "commonprogramfiles(x86)": f"{d}\\Program Files (x86)\\Common Files",
        "commonprogramw6432": f"{program_files}\\Common Files",
        "programdata": f"{d}\\ProgramData", "allusersprofile": f"{d}\\ProgramData",
    }


@dataclass(frozen=True)
class ServiceImage:
    """The file(s) SCM would try for one ImagePath (or ServiceDll), on the Windows volume."""

    stored: str                         # the value as stored
    candidates: Tuple[str, ...]         # volume paths ("\\Program Files\\X\\x.exe") in the order tried
    arguments: str = ""                 # what follows the file name (svchost's "-k netsvcs -p")
    unchecked: Optional[str] = None     # why the file is not looked for ("on another volume (D:), not checked")

    @property
    def path(self) -> Optional[str]:
        """The file meant: the last candidate (the whole unquoted name), None when unchecked."""
        return self.candidates[-1] if self.candidates else None

    @property
    def ambiguous(self) -> bool:
        """An unquoted path with spaces: SCM tries several names (the first that exists runs)."""
        return len(self.candidates) > 1

    def to_json(self) -> dict:
        return {"stored": self.stored, "candidates": list(self.candidates), "path": self.path,
                "arguments": self.arguments, "unchecked": self.unchecked}


_VAR = re.compile(r"%([^%]+)%")
_DRIVE = re.compile(r"^(?:\\\?\?\\|\\\\\?\\)?([A-Za-z]):\\")
_EXT = re.compile(r"\.[^.\\]+$")


def expand(text: str, env: Dict[str, str]) -> Tuple[str, Optional[str]]:
    """(text with the known %VARIABLES% expanded, the first unknown variable or None)."""
    unknown = []

    def one(m: "re.Match[str]") -> str:
        value = env.get(m.group(1).lower())
        if value is None:
            unknown.append(m.group(0))
            return m.group(0)
        return value

    return _VAR.sub(one, text), (unknown[0] if unknown else None)


def on_volume(path: str, system_drive: str = SYSTEM_DRIVE) -> Tuple[Optional[str], Optional[str]]:
    """(path on the Windows volume, None) or (None, why it is not checked) for one expanded path:
    `C:\\...`, `\\??\\C:\\...`, `\\SystemRoot\\...`, `\\...` (the system drive), a bare name
    (System32: SCM's current folder and CreateProcess's second place to look), a relative path
    (under %SystemRoot%, as the kernel resolves relative ImagePaths)."""
    p = path.strip()
    if p.startswith("\\\\") and not p.startswith("\\\\?\\"):
        return None, "on a network path, not checked"
    m = _DRIVE.match(p)
    if m:
        if m.group(1).upper() != system_drive.upper():
            return None, f"on another volume ({m.group(1).upper()}:), not checked"
        p = "\\" + p[m.end():]
    # Windows reads "SystemCore\\\\mcshield.exe" as one separator (a real McAfee ImagePath)
    p = re.sub(r"\\{2,}", r"\\", p) if not p.startswith("\\??\\") else p
    if m:
        return p, None
    if p.lower().startswith("\\systemroot\\"):
        return "\\Windows\\" + p[len("\\systemroot\\"):], None
    if p.startswith("\\"):
        return p, None
    if "\\" not in p:
        return f"\\Windows\\System32\\{p}", None
    if p.lower().startswith("systemroot\\"):
        return "\\Windows\\" + p[len("systemroot\\"):], None
    return "\\Windows\\" + p, None


def _with_exe(name: str) -> str:
    """CreateProcess appends .exe to a module name without an extension."""
    last = name.rsplit("\\", 1)[-1]
    return name if _EXT.search(last) else name + ".exe"


def _unresolved(stored: str, why: str) -> ServiceImage:
    return ServiceImage(stored, (), "", why)


def resolve_command(stored: str, *, program_files: str = PROGRAM_FILES,
                    system_drive: str = SYSTEM_DRIVE) -> ServiceImage:
    """A Win32 service's ImagePath (a command line) -> the executable SCM starts."""
    text, unknown = expand(stored, environment(program_files, system_drive))
    if unknown:
        return _unresolved(stored, f"names {unknown}, which rescue does not expand offline: not checked")
    text = text.strip()
    if not text:
        return _unresolved(stored, "empty ImagePath")
    if text.startswith('"'):
        end = text.find('"', 1)
        name, args = (text[1:], "") if end < 0 else (text[1:end], text[end + 1:].strip())
        where, why = on_volume(_with_exe(name), system_drive)
        return ServiceImage(stored, (where,) if where else (), args, why)
    tokens = text.split(" ")
    names = []
    for i in range(1, len(tokens) + 1):
        prefix = " ".join(tokens[:i])
        if not prefix.strip() or prefix.endswith(" "):
            continue                    # doubled spaces: the same prefix as before
        names.append(_with_exe(prefix))
        if prefix.lower().endswith(".exe"):
            break                       # the module name is complete: the rest are arguments
    args = " ".join(tokens[i:]).strip()
    # every candidate shares the first token's volume ("C:\Program" and "C:\Program Files\x.exe")
    where, why = on_volume(names[0], system_drive)
    if where is None:
        return ServiceImage(stored, (), args, why or "not checked")
    paths = tuple(p for p, _ in (on_volume(n, system_drive) for n in names) if p is not None)
    return ServiceImage(stored, paths, args)


def resolve_file(stored: str, *, program_files: str = PROGRAM_FILES,
                 system_drive: str = SYSTEM_DRIVE) -> ServiceImage:
    """A plain path value (ServiceDll): expanded, quotes removed, no arguments, no .exe added."""
    text, unknown = expand(stored, environment(program_files, system_drive))
    if unknown:
        return _unresolved(stored, f"names {unknown}, which rescue does not expand offline: not checked")
    text = text.strip().strip('"')
    if not text:
        return _unresolved(stored, "empty value")
    where, why = on_volume(text, system_drive)
    return ServiceImage(stored, (where,) if where else (), "", why)
