"""Stop error 0xC000021A (STATUS_SYSTEM_PROCESS_TERMINATED), a black screen before the logon screen,
or a VM that enters setup mode at every boot: a command Windows runs before anyone can log on names
a program that is not on the disk.

Sources:
  - Microsoft, "Bug Check 0xC000021A: WINLOGON_FATAL_ERROR": a user-mode subsystem (Winlogon, the
    Client Server Runtime Subsystem) was fatally compromised; Winlogon failing to start Userinit is
    one way there.
  - Azure/repair-script-library src/windows/win-fix-logon-subsystem.ps1 (what counts as evidence and
    what is changed): Winlogon Userinit and Shell are comma-separated command lists; an entry whose
    program is missing is dropped, the others kept in order, and Windows' default written only when
    nothing would be left. Session Manager BootExecute entries whose native program is missing are
    dropped; "autocheck autochk *" is always kept, and put back when absent. SYSTEM\\Setup SetupType
    non-zero makes Session Manager run CmdLine before the logon screen: with an empty CmdLine, or one
    whose program is gone, SetupType goes back to 0.
  - Microsoft, "CreateProcessW function": the program of a command line is its first token (quoted
    when it has spaces), .exe appended to a name without an extension, a bare name found in
    System32 and then the Windows folder (rescue.registry.image_path resolves the rest).

Checks:
  logon-userinit   Winlogon Userinit: an entry whose program is missing, or no userinit.exe at all
                   -> the missing entries dropped; userinit.exe first when it is not there
  logon-shell      Winlogon Shell: an entry whose program is missing -> dropped; explorer.exe when
                   nothing is left
  boot-execute     Session Manager BootExecute and SetupExecute (every control set): an entry whose
                   native program is missing from System32 -> dropped; "autocheck autochk *" put
                   back in BootExecute when absent (without it a dirty volume is mounted unchecked)
  setup-mode       SYSTEM\\Setup SetupType non-zero with an empty CmdLine or one whose program is
                   missing -> SetupType 0, CmdLine "" (as Windows ships them). A setup-mode command
                   whose program exists (a generalized image's first boot, a tool's hook) is left
                   alone.

Presence is read from the Windows volume's folder listings (one listing per folder per command); on
a hive file without its volume the checks cannot tell. The Windows subsystem itself
(SubSystems\\Windows, csrss.exe, winlogon.exe) is not changed: a damaged system file needs the file
back (sfc /scannow from a repair VM), not a registry edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from rescue.hive import values as V
from rescue.hive.hive import RegValue
from rescue.registry.image_path import ServiceImage, on_volume, resolve_command
from rescue.repairs import sources
from rescue.repairs.base import Check, Scenario, register
from rescue.repairs.context import RepairContext
from rescue.repairs.findings import FOUND, OK, UNKNOWN, Finding
from rescue.repairs.scenarios import _hives as H
from rescue.repairs.services_source import image_present
from rescue.safety.plan import SetValue, Step

CURRENT_VERSION = "Microsoft\\Windows NT\\CurrentVersion"
WINLOGON = f"{CURRENT_VERSION}\\Winlogon"
SESSION_MANAGER = "Control\\Session Manager"
AUTOCHK = "autocheck autochk *"
NO_VOLUME = "no Windows volume to look for the programs on (a hive file)"
_EXT = re.compile(r"\.[^.\\]+$")


# --- commands and their programs -------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One command of a list value and the program it starts."""

    text: str                               # as listed
    image: ServiceImage                     # the file(s) looked for, in order
    present: Optional[bool]                 # None: cannot tell (no volume, another volume, a variable)

    @property
    def missing(self) -> bool:
        return self.present is False

    @property
    def program(self) -> str:
        """The program's file name, lower case ("userinit.exe"); "" when unresolved."""
        return self.image.candidates[0].rsplit("\\", 1)[-1].lower() if self.image.candidates else ""

    @property
    def shown(self) -> str:
        where = " or ".join(self.image.candidates) or (self.image.unchecked or "unresolved")
        return f"{self.text} -> {where} missing"


def system_drive(ctx: RepairContext) -> str:
    """The drive letter Windows has (SOFTWARE CurrentVersion SystemRoot, "C:\\Windows")."""
    value = H.hive(ctx, "SOFTWARE").get(CURRENT_VERSION, "SystemRoot")
    text = value.value if value is not None and isinstance(value.value, str) else ""
    return text[0].upper() if re.match(r"^[A-Za-z]:\\", text) else "C"


def win32_command(ctx: RepairContext, text: str) -> Command:
    """A command Winlogon or Session Manager starts with CreateProcess."""
    image = resolve_command(text, system_drive=system_drive(ctx))
    stripped = text.strip()
    program = stripped[1:].split('"', 1)[0] if stripped.startswith('"') else (stripped.split() or [""])[0]
    if image.candidates and not re.search(r"[\\:%]", program):
        # a bare name: CreateProcess looks in System32, then in the Windows folder
        name = image.candidates[0].rsplit("\\", 1)[-1]
        image = ServiceImage(text, (f"\\Windows\\System32\\{name}", f"\\Windows\\{name}"), image.arguments)
    return Command(text, image, image_present(ctx, image))


def native_command(ctx: RepairContext, text: str) -> Command:
    """A BootExecute/SetupExecute entry: Session Manager runs a native program from System32 before
    Win32 starts; "autocheck PROGRAM ARGS" names PROGRAM."""
    tokens = text.split()
    program = tokens[1] if len(tokens) > 1 and tokens[0].lower() == "autocheck" else (tokens or [""])[0]
    if not _EXT.search(program.rsplit("\\", 1)[-1]):
        program += ".exe"
    if "\\" in program:
        where, why = on_volume(program, system_drive(ctx))
        image = ServiceImage(text, (where,) if where else (), "", why)
    else:
        image = ServiceImage(text, (f"\\Windows\\System32\\{program}",))
    return Command(text, image, image_present(ctx, image))


def _split(value: Optional[RegValue]) -> Optional[List[str]]:
    """The comma-separated commands of a Winlogon value; None when it is no string."""
    if value is None or not isinstance(value.value, str):
        return None
    return [e.strip() for e in value.value.split(",") if e.strip()]


def _shown(value: Optional[RegValue]) -> str:
    """A string value as regedit shows it (backslashes single, in quotes), with its type."""
    if value is not None and isinstance(value.value, str):
        return f'"{value.value}" ({value.type_name})'
    return H.show(value)


def _no_volume(ctx: RepairContext) -> bool:
    return image_present(ctx, ServiceImage("", ("\\Windows\\explorer.exe",))) is None


def _set_multi(ctx: RepairContext, key: str, name: str, items: Sequence[str], before: RegValue,
               reason: str) -> SetValue:
    return SetValue(sources.hive_ref(ctx, "SYSTEM"), key, name, V.REG_MULTI_SZ, V.encode_multi_sz(list(items)),
                    before.type, before.data, reason=reason)


# --- logon-userinit / logon-shell --------------------------------------------------------------------
@dataclass(frozen=True)
class WinlogonList:
    name: str                               # Userinit | Shell
    value: Optional[RegValue]
    commands: Tuple[Command, ...]
    default: Command                        # what Windows ships, resolved on this volume
    required: str                           # the program the list must start ("userinit.exe"), "" none

    @property
    def missing(self) -> List[Command]:
        return [c for c in self.commands if c.missing]

    @property
    def kept(self) -> List[str]:
        return [c.text for c in self.commands if not c.missing]

    @property
    def lacks_required(self) -> bool:
        return bool(self.required) and not any(c.program == self.required and not c.missing for c in self.commands)

    def new_value(self) -> str:
        kept = self.kept
        if not kept or self.lacks_required:
            kept = [self.default.text, *kept]
        return ",".join(kept) + ("," if self.name == "Userinit" else "")


def winlogon_list(ctx: RepairContext, name: str) -> WinlogonList:
    def load() -> WinlogonList:
        software = H.hive(ctx, "SOFTWARE")
        value = software.get(WINLOGON, name)
        root = software.get(CURRENT_VERSION, "SystemRoot")
        windows = root.value.rstrip("\\") if root is not None and isinstance(root.value, str) and root.value else "C:\\Windows"
        default = f"{windows}\\system32\\userinit.exe" if name == "Userinit" else "explorer.exe"
        entries = _split(value) or []
        return WinlogonList(name, value, tuple(win32_command(ctx, e) for e in entries), win32_command(ctx, default),
                            "userinit.exe" if name == "Userinit" else "")

    return ctx.memo(f"logon:winlogon:{name}", load)


def _check_list(ctx: RepairContext, check_id: str, title: str, name: str, effect: str) -> Finding:
    wl = winlogon_list(ctx, name)
    if _no_volume(ctx):
        return Finding(check_id, title, UNKNOWN, NO_VOLUME)
    value = f"{name} {_shown(wl.value)}"
    if wl.value is None or _split(wl.value) is None or not wl.commands:
        problem = "no value" if wl.value is None else "no command" if _split(wl.value) is not None else "not a string"
        return Finding(check_id, title, FOUND, f"{value}: {problem} ({effect})", fixable=not wl.default.missing)
    problems = [c.shown for c in wl.missing]
    if wl.lacks_required:
        problems.append(f"no entry starts {wl.required}")
    if problems:
        return Finding(check_id, title, FOUND, f"{value}: {'; '.join(problems)} ({effect})",
                       fixable=not (wl.lacks_required and wl.default.missing))
    return Finding(check_id, title, OK, f"{value}: every program it names exists")


def _plan_list(ctx: RepairContext, finding: Finding, action: str, name: str) -> Step:
    title = f"Winlogon {name}: only programs that exist"
    if finding.status != FOUND:
        return Step(action, title, skipped=f"every program {name} names exists")
    wl = winlogon_list(ctx, name)
    if not finding.fixable:
        return Step(action, title, skipped=f"{wl.default.shown.split(' -> ')[1]}: Windows' own program is gone too: "
                    "copy it from a VM of the same Windows build, or run `sfc /scannow /offbootdir=X:\\ "
                    "/offwindir=X:\\Windows` from a repair VM")
    why = "drop the programs that are missing (win-fix-logon-subsystem)"
    # Kept REG_EXPAND_SZ when it was: Winlogon expands %SystemRoot% only in that type.
    kind = V.REG_EXPAND_SZ if wl.value is not None and wl.value.type == V.REG_EXPAND_SZ else V.REG_SZ
    return Step(action, title, (H.set_sz(ctx, "SOFTWARE", WINLOGON, name, wl.new_value(), wl.value, why, kind),))


USERINIT = "Winlogon Userinit starts userinit.exe and only programs that exist"
SHELL = "Winlogon Shell names a program that exists"


def _check_userinit(ctx: RepairContext) -> Finding:
    return _check_list(ctx, "logon-userinit", USERINIT, "Userinit",
                       "Winlogon cannot start the session: stop error 0xC000021A or a black screen")


def _check_shell(ctx: RepairContext) -> Finding:
    return _check_list(ctx, "logon-shell", SHELL, "Shell", "no desktop after logon")


# --- boot-execute ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionList:
    control_set: str
    name: str                               # BootExecute | SetupExecute
    value: RegValue
    commands: Tuple[Command, ...]

    @property
    def dangling(self) -> List[Command]:
        return [c for c in self.commands if c.missing and c.text.lower() != AUTOCHK]

    @property
    def lacks_autochk(self) -> bool:
        return self.name == "BootExecute" and not any(c.text.lower() == AUTOCHK for c in self.commands)

    def new_items(self) -> List[str]:
        bad = {c.text for c in self.dangling}
        items = [c.text for c in self.commands if c.text not in bad]
        return [AUTOCHK, *items] if self.lacks_autochk else items


def session_lists(ctx: RepairContext) -> Tuple[SessionList, ...]:
    def load() -> Tuple[SessionList, ...]:
        system = H.hive(ctx, "SYSTEM")
        out = []
        for cs in H.control_sets(system):
            for name in ("BootExecute", "SetupExecute"):
                value = system.get(f"{cs}\\{SESSION_MANAGER}", name)
                if value is None or value.type != V.REG_MULTI_SZ:
                    continue
                items = [e.strip() for e in value.value if e.strip()]
                out.append(SessionList(cs, name, value, tuple(native_command(ctx, e) for e in items)))
        return tuple(out)

    return ctx.memo("logon:session-manager", load)


BOOT_EXECUTE = "Session Manager runs only native programs that exist, autochk included"


def _check_boot_execute(ctx: RepairContext) -> Finding:
    if _no_volume(ctx):
        return Finding("boot-execute", BOOT_EXECUTE, UNKNOWN, NO_VOLUME)
    lists = session_lists(ctx)
    autochk = native_command(ctx, AUTOCHK)
    bad, fixable = [], True
    for s in lists:
        for c in s.dangling:
            bad.append(f"{s.control_set} {s.name}: {c.shown} (Session Manager waits on it: a black screen)")
        if s.lacks_autochk:
            bad.append(f"{s.control_set} BootExecute has no '{AUTOCHK}' (a dirty volume is mounted unchecked)")
            fixable = fixable and not autochk.missing
    if bad:
        return Finding("boot-execute", BOOT_EXECUTE, FOUND, "; ".join(bad), fixable=fixable)
    shown = sorted({f"{s.name} {list(s.value.value)!r}" for s in lists if s.commands})
    return Finding("boot-execute", BOOT_EXECUTE, OK,
                   f"{', '.join(shown) or 'no BootExecute'} in {', '.join(sorted({s.control_set for s in lists})) or 'no control set'}: every program exists")


def _plan_boot_execute(ctx: RepairContext, finding: Finding) -> Step:
    title = "Session Manager: drop the programs that are missing, keep autochk"
    if finding.status != FOUND:
        return Step("session-manager.execute", title, skipped="every program Session Manager runs exists")
    if not finding.fixable:
        return Step("session-manager.execute", title, skipped="\\Windows\\System32\\autochk.exe is missing: copy it "
                    "from a VM of the same Windows build, or run sfc /scannow offline from a repair VM")
    return Step("session-manager.execute", title, tuple(
        _set_multi(ctx, f"{s.control_set}\\{SESSION_MANAGER}", s.name, s.new_items(), s.value,
                   "programs that are missing dropped, autochk kept (win-fix-logon-subsystem)")
        for s in session_lists(ctx) if s.dangling or s.lacks_autochk))


# --- setup-mode ---------------------------------------------------------------------------------------------
SETUP = "Windows does not start in setup mode with a command that cannot run"


def _setup(ctx: RepairContext) -> Tuple[Optional[RegValue], Optional[RegValue], Optional[Command]]:
    def load() -> Tuple[Optional[RegValue], Optional[RegValue], Optional[Command]]:
        system = H.hive(ctx, "SYSTEM")
        kind, cmd = system.get("Setup", "SetupType"), system.get("Setup", "CmdLine")
        text = cmd.value.strip() if cmd is not None and isinstance(cmd.value, str) else ""
        return kind, cmd, win32_command(ctx, text) if text else None

    return ctx.memo("logon:setup", load)


def _check_setup(ctx: RepairContext) -> Finding:
    kind, cmd, command = _setup(ctx)
    setup_type = H.dword(kind)
    if not setup_type:
        return Finding("setup-mode", SETUP, OK, f"SetupType {H.show(kind)}: Windows starts normally")
    if command is None:
        return Finding("setup-mode", SETUP, FOUND, f"SetupType {setup_type} with no CmdLine: Windows enters setup mode "
                       "at every boot with nothing to run there", fixable=True)
    if command.present is None:
        return Finding("setup-mode", SETUP, UNKNOWN, f'SetupType {setup_type}, CmdLine "{command.text}": '
                       + (NO_VOLUME if _no_volume(ctx) else command.image.unchecked or "not checked"))
    if command.missing:
        return Finding("setup-mode", SETUP, FOUND, f"SetupType {setup_type}, CmdLine {command.shown}: Windows runs it "
                       "before the logon screen at every boot (a repair tool's leftover)", fixable=True)
    return Finding("setup-mode", SETUP, OK, f'SetupType {setup_type}, CmdLine "{command.text}": Windows runs it '
                   "before the logon screen (a generalized image's first boot or a tool's hook); its program exists")


def _plan_setup(ctx: RepairContext, finding: Finding) -> Step:
    title = "Leave setup mode: SetupType 0, CmdLine empty"
    if finding.status != FOUND:
        return Step("setup.mode", title, skipped="no setup-mode command that cannot run")
    kind, cmd, _ = _setup(ctx)
    why = "the setup-mode command cannot run (win-fix-logon-subsystem)"
    changes = [H.set_dword(ctx, "SYSTEM", "Setup", "SetupType", 0, kind, why)]
    if cmd is not None and cmd.value:
        changes.append(H.set_sz(ctx, "SYSTEM", "Setup", "CmdLine", "", cmd, why))
    return Step("setup.mode", title, tuple(changes))


def next_steps(ctx: RepairContext, grown: bool) -> Sequence[str]:
    return ("Detach the repaired disk and make it the VM's OS disk again (`az vm repair restore -g RG -n VM` if you "
            "used `az vm repair create`), then start the VM and watch Boot diagnostics.",
            "If it still stops with 0xC000021A, a Windows system file (csrss.exe, winlogon.exe, a DLL they load) is "
            "damaged: run `sfc /scannow /offbootdir=X:\\ /offwindir=X:\\Windows` from a Windows repair VM, or try "
            "`rescue fix last-known-good`.",
            "Reinstall the software whose logon or boot hook was removed if it is still wanted.")


SCENARIO = register(Scenario(
    name="logon",
    aliases=("0xC000021A", "STATUS_SYSTEM_PROCESS_TERMINATED", "black-screen"),
    summary="Stop error 0xC000021A / black screen before logon: Winlogon Userinit/Shell, BootExecute and the "
            "setup-mode command name programs that are missing",
    title="Repair what Windows runs before the logon screen",
    source="Microsoft: Bug Check 0xC000021A; Azure repair-script-library win-fix-logon-subsystem",
    checks=(
        Check("logon-userinit", USERINIT, _check_userinit, lambda ctx, f: _plan_list(ctx, f, "winlogon.userinit", "Userinit")),
        Check("logon-shell", SHELL, _check_shell, lambda ctx, f: _plan_list(ctx, f, "winlogon.shell", "Shell")),
        Check("boot-execute", BOOT_EXECUTE, _check_boot_execute, _plan_boot_execute),
        Check("setup-mode", SETUP, _check_setup, _plan_setup),
    ),
    next_steps=next_steps,
))
