"""reg.exe key spelling -> hive + path, and CurrentControlSet resolution (Select\\Current)."""

from __future__ import annotations

import pytest

from rescue.errors import NotFoundError, UsageError
from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.registry.paths import (HKCU, HKLM, HKU, control_sets, current_control_set, hive_file,
                                   locate_in_file, parse_key, profile_dir, resolve_path, resolved_display,
                                   sid_profile, user_hive_path)
from rescue.safety.plan import FileRef
from rescue.samples.hives import AZURE_USER_SID, build_software_hive, build_system_hive


@pytest.mark.parametrize("text, root, hive, path, display", [
    ("HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl", HKLM, "SYSTEM",
     "CurrentControlSet\\Control\\CrashControl", "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\CrashControl"),
    ("hklm\\system\\Select", HKLM, "SYSTEM", "Select", "HKEY_LOCAL_MACHINE\\system\\Select"),
    ("HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\", HKLM, "SOFTWARE", "Microsoft",
     "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft"),
    ("HKLM\\SAM", HKLM, "SAM", "", "HKEY_LOCAL_MACHINE\\SAM"),
    ("HKLM\\SECURITY\\Policy", HKLM, "SECURITY", "Policy", "HKEY_LOCAL_MACHINE\\SECURITY\\Policy"),
    ("HKLM\\DEFAULT\\Environment", HKLM, "DEFAULT", "Environment", "HKEY_LOCAL_MACHINE\\DEFAULT\\Environment"),
    ("HKU\\.DEFAULT\\Control Panel", HKU, ".DEFAULT", "Control Panel", "HKEY_USERS\\.DEFAULT\\Control Panel"),
    ("HKU\\azureuser\\Environment", HKU, "azureuser", "Environment", "HKEY_USERS\\azureuser\\Environment"),
    ("HKCU\\Environment", HKCU, None, "Environment", "HKEY_CURRENT_USER\\Environment"),
    ("HKCR\\.txt", "HKEY_CLASSES_ROOT", "SOFTWARE", "Classes\\.txt", "HKEY_CLASSES_ROOT\\.txt"),
    ("HKCC\\Software", "HKEY_CURRENT_CONFIG", "SYSTEM", "CurrentControlSet\\Hardware Profiles\\Current\\Software",
     "HKEY_CURRENT_CONFIG\\Software"),
    ("ControlSet001\\Control", None, None, "ControlSet001\\Control", "ControlSet001\\Control"),
    ("\\Select", None, None, "Select", "Select"),
])
def test_parse_key(text, root, hive, path, display):
    k = parse_key(text)
    assert (k.root, k.hive, k.path, k.display) == (root, hive, path, display)


@pytest.mark.parametrize("bad", ["", "   ", "HKLM\\SYSTEM\\\\Select", "HKLM\\\\SYSTEM"])
def test_parse_key_rejects(bad):
    with pytest.raises(UsageError):
        parse_key(bad)


def test_hive_files():
    assert hive_file("system") == "\\Windows\\System32\\config\\SYSTEM"
    assert hive_file("SECURITY") == "\\Windows\\System32\\config\\SECURITY"


def test_locate_in_file_strips_prefix():
    ref = FileRef("/x/SYSTEM")
    assert locate_in_file(parse_key("HKLM\\SYSTEM\\Select"), ref).path == "Select"
    assert locate_in_file(parse_key("Select"), ref).path == "Select"
    assert locate_in_file(parse_key("HKU\\azureuser\\Environment"), ref).path == "Environment"
    assert locate_in_file(parse_key("HKCU\\Environment"), ref).path == "Environment"
    assert locate_in_file(parse_key("HKLM\\SYSTEM"), ref).path == ""
    with pytest.raises(UsageError):
        locate_in_file(parse_key("HKLM"), ref)


@pytest.mark.parametrize("current", [1, 2])
def test_current_control_set(tmp_path, current):
    p = build_system_hive(tmp_path / "SYSTEM", current=current, control_sets=(1, 2))
    h = Hive(p)
    assert control_sets(h) == [1, 2]
    assert current_control_set(h) == current
    r = resolve_path(h, "CurrentControlSet\\Control\\CrashControl")
    assert r.path == f"ControlSet00{current}\\Control\\CrashControl"
    assert r.control_set == current
    # case-insensitive, and only the first component is the link
    assert resolve_path(h, "currentcontrolset").path == f"ControlSet00{current}"
    assert resolve_path(h, "Select\\CurrentControlSet").path == "Select\\CurrentControlSet"
    assert resolve_path(h, "ControlSet001\\Control").control_set is None
    disp = resolved_display("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control", r)
    assert disp == f"HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet00{current}\\Control"


def test_current_control_set_errors(tmp_path):
    # No Select at all: a clear error that says to name the set.
    p = tmp_path / "NOSELECT"
    write_minimal_hive(p, root_name="ROOT", file_name="SYSTEM")
    h = Hive(p, write=True)
    h.ensure_key("ControlSet001\\Control")
    h.commit()
    with pytest.raises(NotFoundError, match="no Select\\\\Current.*ControlSet001"):
        resolve_path(Hive(p), "CurrentControlSet\\Control")
    # Select\Current names a set that does not exist.
    h = Hive(p, write=True)
    h.set("Select", "Current", V.REG_DWORD, V.encode_dword(3))
    h.commit()
    with pytest.raises(NotFoundError, match="Current is 3 but ControlSet003 does not exist"):
        current_control_set(Hive(p))


def test_profiles(tmp_path):
    assert profile_dir("C:\\Users\\azureuser") == "\\Users\\azureuser"
    assert profile_dir("%SystemDrive%\\Users\\Public") == "\\Users\\Public"
    assert profile_dir("%systemroot%\\system32\\config\\systemprofile") == "\\Windows\\system32\\config\\systemprofile"
    assert user_hive_path("\\Users\\x") == "\\Users\\x\\NTUSER.DAT"
    assert user_hive_path("\\Users\\x", classes=True) == "\\Users\\x\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat"
    sw = Hive(build_software_hive(tmp_path / "SOFTWARE"))
    assert sid_profile(sw, AZURE_USER_SID) == "\\Users\\azureuser"
    assert sid_profile(sw, AZURE_USER_SID + "_Classes") == "\\Users\\azureuser"
    assert sid_profile(sw, "S-1-5-18") == "\\Windows\\system32\\config\\systemprofile"
    assert sid_profile(sw, "S-1-5-21-1-2-3-1001") is None
