"""`rescue doctor` on this machine (TCG) and with the appliance made unavailable.

Exit codes (README "Exit codes"): 0 ready, 10 not ready. The launch is the real one, on a scratch
disk, through the same DiskSession code as every command; at most one per run (RESCUE_LAUNCH_LOG).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rescue import doctor
from rescue.doctor import Status

CHECK_IDS = ["bindings", "appliance_files", "kvm", "accel_verdict", "qemu_img", "ntfs3g_host", "space_tmp",
             "appliance_launch", "appliance_ntfs"]


def _launches(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _by_id(data: dict) -> dict:
    return {c["id"]: c for c in data["checks"]}


@pytest.mark.appliance
def test_doctor_on_this_machine_launches_once_with_tcg(cli, tmp_path, monkeypatch) -> None:
    log = tmp_path / "launches"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    r = cli("doctor", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["ready"] is True
    checks = _by_id(data)
    assert [c["id"] for c in data["checks"] if c["id"] in CHECK_IDS] == [i for i in CHECK_IDS if i in checks]
    assert checks["appliance_launch"]["status"] == "ok"
    assert checks["appliance_ntfs"]["status"] == "ok"
    assert data["launch"]["ok"] is True and data["launch"]["accel"] == "tcg"
    assert data["launch"]["features"] == {"ntfs3g": True, "ntfsprogs": True}
    assert "pins TCG" in checks["kvm"]["detail"] or checks["kvm"]["status"] in ("ok", "warn")
    assert _launches(log) == 1


def test_doctor_without_launch_is_ready_here(cli, tmp_path, monkeypatch) -> None:
    log = tmp_path / "launches"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    r = cli("doctor", "--no-launch")
    assert r.code == 0, r.err
    assert "This host is ready." in r.out
    assert "skipped (--no-launch)" in r.out
    assert _launches(log) == 0


def test_doctor_with_no_appliance_says_what_to_install(cli, tmp_path, monkeypatch) -> None:
    empty = tmp_path / "no-appliance"
    empty.mkdir()
    monkeypatch.setenv("LIBGUESTFS_PATH", str(empty))
    log = tmp_path / "launches"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    r = cli("doctor", "--json")
    assert r.code == 10
    data = r.json()
    assert data["ready"] is False
    checks = _by_id(data)
    assert checks["appliance_files"]["status"] == "fail"
    assert str(empty) in checks["appliance_files"]["detail"]
    assert "apt install libguestfs-tools" in checks["appliance_files"]["advice"]
    assert "LIBGUESTFS_PATH" in checks["appliance_files"]["advice"]
    assert checks["appliance_launch"]["status"] == "skipped"     # no minute wasted on a doomed launch
    assert data["launch"] is None and _launches(log) == 0
    assert "not ready" in r.err and "libguestfs appliance present" in r.err
    assert "Traceback" not in r.err


def test_doctor_when_the_appliance_cannot_start(cli, tmp_path, monkeypatch) -> None:
    """The appliance files are there but qemu cannot run: the launch fails fast and is reported."""
    monkeypatch.setenv("LIBGUESTFS_HV", "/bin/false")
    log = tmp_path / "launches"
    monkeypatch.setenv("RESCUE_LAUNCH_LOG", str(log))
    r = cli("doctor")
    assert r.code == 10
    assert "FAIL" in r.out and "appliance launches" in r.out
    assert "libguestfs appliance failed to start" in r.out
    assert "libguestfs-test-tool" in r.out
    assert "Traceback" not in r.err + r.out
    assert _launches(log) == 0          # the hook counts successful launches only


def test_doctor_bad_accel_setting_fails_clearly(cli, monkeypatch) -> None:
    monkeypatch.setenv("RESCUE_ACCEL", "fast")
    r = cli("doctor", "--no-launch", "--json")
    assert r.code == 10
    kvm = _by_id(r.json())["kvm"]
    assert kvm["status"] == "fail" and "fast" in kvm["detail"]


@pytest.mark.parametrize("release, expected", [
    ({"ID": "ubuntu", "ID_LIKE": "debian"}, "debian"),
    ({"ID": "debian"}, "debian"),
    ({"ID": "almalinux", "ID_LIKE": "rhel centos fedora"}, "rhel"),
    ({"ID": "rhel", "ID_LIKE": "fedora"}, "rhel"),
    ({"ID": "fedora"}, "rhel"),
    ({"ID": "azurelinux"}, "azurelinux"),
    ({"ID": "mariner"}, "azurelinux"),
    ({"ID": "sles", "ID_LIKE": "suse"}, "suse"),
    ({"ID": "opensuse-leap", "ID_LIKE": "suse opensuse"}, "suse"),
])
def test_advice_uses_the_distribution_package_names(release, expected) -> None:
    assert doctor.family(release) == expected


def test_space_check_thresholds(tmp_path) -> None:
    ok = doctor.check_space("here", "space_tmp", str(tmp_path))
    assert ok.status in (Status.OK, Status.WARN) and str(tmp_path) in ok.detail
    missing = doctor.check_space("there", "space_tmp", str(tmp_path / "absent"))
    assert missing.status is Status.FAIL and "TMPDIR" in missing.advice


def test_os_release_parsing(tmp_path) -> None:
    f = tmp_path / "os-release"
    f.write_text('NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n')
    rel = doctor.os_release(str(f))
    assert rel["ID"] == "almalinux" and doctor.family(rel) == "rhel"
    assert doctor.FAMILIES["rhel"].bindings == "python3-libguestfs python3-hivex"
