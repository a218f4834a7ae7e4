"""reg.exe key spelling -> hive + path, and CurrentControlSet resolution (Select\\Current)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from rescue.errors import NotFoundError, UsageError
from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.registry.paths import (HKCU, HKLM, HKU, control_sets, current_control_set, hive_file,
                                   locate_in_file, locate_on_disk, parse_key, profile_dir, resolve_path, resolved_display,
                                   sid_profile, user_hive_path)
from rescue.safety.plan import FileRef
from rescue.samples.hives import AZURE_USER_SID, build_software_hive, build_system_hive
from rescue.target import Target, win_to_posix

sys.path.insert(0, str(Path(__file__).resolve().parent))


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


# --- on a disk: which file on the Windows volume ------------------------------------------------------
class FolderTarget(Target):
    """The Target interface over a host folder per volume (d<disk>p<partition>/...), for key location."""

    def __init__(self, base, layout):
        super().__init__()
        self.base, self.layout = base, layout
        self.session = object()            # marks a disk target for the CLI helpers

    def _p(self, ref):
        return self.base / f"d{ref.disk}p{ref.partition}" / win_to_posix(ref.path).lstrip("/")

    def exists(self, ref):
        return self._p(ref).exists()

    def listdir(self, ref):
        return sorted(x.name for x in self._p(ref).iterdir()) if self._p(ref).is_dir() else []

    def _download(self, ref, dest):
        shutil.copyfile(self._p(ref), dest)

    def size(self, ref):
        return self._p(ref).stat().st_size

    def sha256(self, ref):
        from rescue.target import sha256_file
        return sha256_file(self._p(ref))

    def read_bytes(self, ref):
        return self._p(ref).read_bytes()

    def free_bytes(self, ref):
        return None

    # Key location only reads: every write is a test failure.
    def _no_write(self, *_a, **_k):
        raise AssertionError("FolderTarget is read-only")

    stage = switch = copy = delete = rename = makedirs = write_bytes = _no_write


@pytest.fixture
def disk_target(tmp_path):
    from test_pagefile import make_layout

    vol = tmp_path / "vols" / "d0p4"
    build_software_hive(vol / "Windows/System32/config/SOFTWARE")
    for user in ("azureuser", "Default", "Public"):
        (vol / "Users" / user).mkdir(parents=True)
    (vol / "Users/azureuser/NTUSER.DAT").write_bytes(b"regf")
    (vol / "Users/Default/NTUSER.DAT").write_bytes(b"regf")
    t = FolderTarget(tmp_path / "vols", make_layout())
    yield t
    t.close()


def test_locate_on_disk(disk_target):
    def where(key, user=None):
        loc = locate_on_disk(parse_key(key), disk_target, user=user)
        return loc.ref, loc.hive_name, loc.path

    cfg = "\\Windows\\System32\\config\\"
    assert where("HKLM\\SYSTEM\\CurrentControlSet\\Control") == (FileRef(cfg + "SYSTEM", 0, 4), "SYSTEM",
                                                                 "CurrentControlSet\\Control")
    for h in ("SOFTWARE", "SAM", "SECURITY", "DEFAULT"):
        assert where(f"HKLM\\{h.lower()}\\X")[0] == FileRef(cfg + h, 0, 4)
    assert where("HKCR\\.txt") == (FileRef(cfg + "SOFTWARE", 0, 4), "SOFTWARE", "Classes\\.txt")
    assert where("HKU\\.DEFAULT\\Control Panel")[0] == FileRef(cfg + "DEFAULT", 0, 4)
    assert where("HKU\\azureuser\\Environment")[:2] == (FileRef("\\Users\\azureuser\\NTUSER.DAT", 0, 4),
                                                         "NTUSER.DAT (azureuser)")
    assert where("HKCU\\Environment")[0] == FileRef("\\Users\\azureuser\\NTUSER.DAT", 0, 4)   # the one profile
    assert where(f"HKU\\{AZURE_USER_SID}\\Environment")[0] == FileRef("\\Users\\azureuser\\NTUSER.DAT", 0, 4)
    with pytest.raises(NotFoundError, match="HARDWARE is built by Windows at every boot"):
        where("HKLM\\HARDWARE\\DESCRIPTION")
    with pytest.raises(NotFoundError, match="rescue bcd"):
        where("HKLM\\BCD00000000")
    with pytest.raises(NotFoundError, match="HKLM\\\\COMPONENTS is not a hive"):
        where("HKLM\\COMPONENTS")
    with pytest.raises(UsageError, match="name a hive"):
        where("HKLM")
    with pytest.raises(UsageError, match="does not start with HKLM"):
        where("SYSTEM\\Select")
    with pytest.raises(NotFoundError, match="Profiles with an NTUSER.DAT: azureuser"):
        where("HKU\\bob\\Environment")
    with pytest.raises(NotFoundError, match="No profile for S-1-5-21-9-9-9-1001"):
        where("HKU\\S-1-5-21-9-9-9-1001\\Environment")
    (disk_target.base / "d0p4/Users/bob").mkdir()
    (disk_target.base / "d0p4/Users/bob/NTUSER.DAT").write_bytes(b"regf")
    with pytest.raises(UsageError, match="--user NAME.*azureuser, bob"):
        where("HKCU\\Environment")
    assert where("HKCU\\Environment", user="bob")[0] == FileRef("\\Users\\bob\\NTUSER.DAT", 0, 4)
