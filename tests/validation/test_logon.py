"""Validation cases of `logon` (0xC000021A, a black screen before logon): SYSTEM and SOFTWARE hives
built with hivex, the folders a volume would list, the exact finding and the exact planned edits."""

from __future__ import annotations

import pytest

from harness import Case, context, run_case
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.repairs.findings import FOUND, OK, UNKNOWN
from rescue.repairs.services_source import preset_listing
from rescue.samples import system_state as S
from rescue.samples.hives import build_software_hive, build_system_hive

SM = "Control\\Session Manager"
WINLOGON = "Microsoft\\Windows NT\\CurrentVersion\\Winlogon"
# The folders a healthy Windows volume lists (what the checks look in), and the leftovers' folders.
VOLUME = {"\\": ["Program Files", "ProgramData", "Windows"], "\\Windows": ["explorer.exe", "System32", "Temp"],
          "\\Windows\\System32": ["autochk.exe", "cmd.exe", "svchost.exe", "userinit.exe"],
          "\\ProgramData\\Contoso\\LogonHook": [], "\\Windows\\Temp\\ContosoReset": [], "\\Windows\\Temp": [],
          "\\Program Files\\Kiosk": [],
          "\\Program Files\\Contoso": ["shell.exe"]}
NO_USERINIT = {**VOLUME, "\\Windows\\System32": ["autochk.exe", "cmd.exe"]}
NO_AUTOCHK = {**VOLUME, "\\Windows\\System32": ["userinit.exe"]}
USERINIT_EFFECT = "Winlogon cannot start the session: stop error 0xC000021A or a black screen"
HOOK = f"{S.LOGON_HOOK} -> \\ProgramData\\Contoso\\LogonHook\\hook.exe missing"


def _hives(*, userinit=None, shell=None, boot_execute=None, setup=(0, ""), listings=VOLUME, expand=False):
    def build(d):
        software = build_software_hive(d / "SOFTWARE", userinit=userinit, shell=shell)
        if expand:                      # Userinit as REG_EXPAND_SZ, as some tools leave it
            h = Hive(software, write=True)
            h.set(WINLOGON, "Userinit", V.REG_EXPAND_SZ, V.encode_sz(userinit))
            h.commit()
            h.close()
        ctx = context(d, scenario="logon",
                      system=build_system_hive(d / "SYSTEM", boot_execute=boot_execute, setup=setup),
                      software=software)
        for folder, names in (listings or {}).items():
            preset_listing(ctx, folder, names)
        return ctx
    return build


CASES = [
    # --- logon-userinit ---
    Case("logon-userinit", "an uninstalled agent's hook left in Userinit (the sample's state)",
         _hives(userinit=S.BROKEN_USERINIT), FOUND,
         f'Userinit "{S.BROKEN_USERINIT}" (REG_SZ): {HOOK} ({USERINIT_EFFECT})',
         plan=(f"winlogon.userinit: set {WINLOGON}\\Userinit = 'C:\\\\Windows\\\\system32\\\\userinit.exe,' (REG_SZ)",),
         fixable=True),
    Case("logon-userinit", "REG_EXPAND_SZ with %SystemRoot%: the type is kept, so the variable still expands",
         _hives(userinit=f"%SystemRoot%\\system32\\userinit.exe,{S.LOGON_HOOK},", expand=True), FOUND,
         f'Userinit "%SystemRoot%\\system32\\userinit.exe,{S.LOGON_HOOK}," (REG_EXPAND_SZ): {HOOK} ({USERINIT_EFFECT})',
         plan=(f"winlogon.userinit: set {WINLOGON}\\Userinit = '%SystemRoot%\\\\system32\\\\userinit.exe,' "
               "(REG_EXPAND_SZ)",), fixable=True),
    Case("logon-userinit", "userinit.exe replaced by a program that is gone: Windows' own put back",
         _hives(userinit="C:\\Windows\\Temp\\ui.exe,"), FOUND,
         "Userinit \"C:\\Windows\\Temp\\ui.exe,\" (REG_SZ): C:\\Windows\\Temp\\ui.exe -> \\Windows\\Temp\\ui.exe "
         f"missing; no entry starts userinit.exe ({USERINIT_EFFECT})",
         plan=(f"winlogon.userinit: set {WINLOGON}\\Userinit = 'C:\\\\Windows\\\\system32\\\\userinit.exe,' (REG_SZ)",),
         fixable=True),
    Case("logon-userinit", "a hook that exists but no userinit.exe: userinit.exe goes first, the hook stays",
         _hives(userinit="C:\\Program Files\\Contoso\\shell.exe,"), FOUND,
         "Userinit \"C:\\Program Files\\Contoso\\shell.exe,\" (REG_SZ): no entry starts userinit.exe "
         f"({USERINIT_EFFECT})",
         plan=(f"winlogon.userinit: set {WINLOGON}\\Userinit = 'C:\\\\Windows\\\\system32\\\\userinit.exe,"
               "C:\\\\Program Files\\\\Contoso\\\\shell.exe,' (REG_SZ)",), fixable=True),
    Case("logon-userinit", "userinit.exe itself gone: reported, the file must come back",
         _hives(listings=NO_USERINIT), FOUND,
         "Userinit \"C:\\Windows\\system32\\userinit.exe,\" (REG_SZ): C:\\Windows\\system32\\userinit.exe -> "
         f"\\Windows\\system32\\userinit.exe missing; no entry starts userinit.exe ({USERINIT_EFFECT})",
         plan=("winlogon.userinit skipped: \\Windows\\system32\\userinit.exe missing: Windows' own program is gone "
               "too: copy it from a VM of the same Windows build, or run `sfc /scannow /offbootdir=X:\\ "
               "/offwindir=X:\\Windows` from a repair VM",), fixable=False),
    Case("logon-userinit", "as Windows ships it", _hives(), OK,
         f'Userinit "{S.USERINIT}" (REG_SZ): every program it names exists',
         plan=("winlogon.userinit skipped: every program Userinit names exists",)),
    Case("logon-userinit", "a hive file without its volume", _hives(listings=None), UNKNOWN,
         "no Windows volume to look for the programs on (a hive file)",
         plan=("winlogon.userinit skipped: every program Userinit names exists",)),
    # --- logon-shell ---
    Case("logon-shell", "a replacement shell that is gone: explorer.exe again",
         _hives(shell="C:\\Program Files\\Kiosk\\kiosk.exe"), FOUND,
         "Shell \"C:\\Program Files\\Kiosk\\kiosk.exe\" (REG_SZ): C:\\Program Files\\Kiosk\\kiosk.exe -> "
         "\\Program.exe or \\Program Files\\Kiosk\\kiosk.exe missing (no desktop after logon)",
         plan=(f"winlogon.shell: set {WINLOGON}\\Shell = 'explorer.exe' (REG_SZ)",), fixable=True),
    Case("logon-shell", "a customised shell that exists is left alone",
         _hives(shell="C:\\Program Files\\Contoso\\shell.exe"), OK,
         "Shell \"C:\\Program Files\\Contoso\\shell.exe\" (REG_SZ): every program it names exists",
         plan=("winlogon.shell skipped: every program Shell names exists",)),
    Case("logon-shell", "explorer.exe, found in the Windows folder (a bare name)", _hives(), OK,
         "Shell \"explorer.exe\" (REG_SZ): every program it names exists",
         plan=("winlogon.shell skipped: every program Shell names exists",)),
    # --- boot-execute ---
    Case("boot-execute", "a disk tool's native program left behind (the sample's state)",
         _hives(boot_execute={1: S.BROKEN_BOOT_EXECUTE}), FOUND,
         "ControlSet001 BootExecute: contosochk /boot -> \\Windows\\System32\\contosochk.exe missing (Session Manager "
         "waits on it: a black screen)",
         plan=(f"session-manager.execute: set ControlSet001\\{SM}\\BootExecute = ['autocheck autochk *'] (REG_MULTI_SZ)",),
         fixable=True),
    Case("boot-execute", "autochk removed and a missing program in both sets",
         _hives(boot_execute={1: ("contosochk",), 2: ()}), FOUND,
         "ControlSet001 BootExecute: contosochk -> \\Windows\\System32\\contosochk.exe missing (Session Manager waits "
         "on it: a black screen); ControlSet001 BootExecute has no 'autocheck autochk *' (a dirty volume is mounted "
         "unchecked); ControlSet002 BootExecute has no 'autocheck autochk *' (a dirty volume is mounted unchecked)",
         plan=(f"session-manager.execute: set ControlSet001\\{SM}\\BootExecute = ['autocheck autochk *'] (REG_MULTI_SZ)",
               f"session-manager.execute: set ControlSet002\\{SM}\\BootExecute = ['autocheck autochk *'] (REG_MULTI_SZ)"),
         fixable=True),
    Case("boot-execute", "autochk.exe itself gone: nothing to put back",
         _hives(boot_execute={1: ()}, listings=NO_AUTOCHK), FOUND,
         "ControlSet001 BootExecute has no 'autocheck autochk *' (a dirty volume is mounted unchecked)",
         plan=("session-manager.execute skipped: \\Windows\\System32\\autochk.exe is missing: copy it from a VM of "
               "the same Windows build, or run sfc /scannow offline from a repair VM",), fixable=False),
    Case("boot-execute", "as Windows ships it", _hives(), OK,
         "BootExecute ['autocheck autochk *'] in ControlSet001, ControlSet002: every program exists",
         plan=("session-manager.execute skipped: every program Session Manager runs exists",)),
    # --- setup-mode ---
    Case("setup-mode", "a password-reset tool's hook whose program is gone (the sample's state)",
         _hives(setup=S.BROKEN_SETUP), FOUND,
         "SetupType 2, CmdLine C:\\Windows\\Temp\\ContosoReset\\reset.exe -pw -> \\Windows\\Temp\\ContosoReset\\reset.exe "
         "missing: Windows runs it before the logon screen at every boot (a repair tool's leftover)",
         plan=("setup.mode: set Setup\\SetupType = 0 (REG_DWORD)", "setup.mode: set Setup\\CmdLine = '' (REG_SZ)"),
         fixable=True),
    Case("setup-mode", "setup mode with nothing to run", _hives(setup=(1, "")), FOUND,
         "SetupType 1 with no CmdLine: Windows enters setup mode at every boot with nothing to run there",
         plan=("setup.mode: set Setup\\SetupType = 0 (REG_DWORD)",), fixable=True),
    Case("setup-mode", "a generalized image's first boot (windeploy exists): left alone",
         _hives(setup=(2, "cmd.exe /c C:\\Windows\\Setup\\Scripts\\first.cmd")), OK,
         "SetupType 2, CmdLine \"cmd.exe /c C:\\Windows\\Setup\\Scripts\\first.cmd\": Windows runs it before the "
         "logon screen (a generalized image's first boot or a tool's hook); its program exists",
         plan=("setup.mode skipped: no setup-mode command that cannot run",)),
    Case("setup-mode", "as Windows ships it", _hives(), OK, "SetupType 0: Windows starts normally",
         plan=("setup.mode skipped: no setup-mode command that cannot run",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    run_case(case, tmp_path)
