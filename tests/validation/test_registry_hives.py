"""Validation cases of `registry` (corrupt hives restored from RegBack)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from harness import Case, context, run_case
from rescue.repairs.findings import FOUND, OK
from rescue.samples import hives as H
from rescue.samples.disks import REALDATA, damage_hbin

S = "registry"


def _hives(d: Path) -> dict:
    """The six hives of a healthy config folder."""
    d.mkdir(parents=True, exist_ok=True)
    out = {"SYSTEM": H.build_system_hive(d / "SYSTEM"), "SOFTWARE": H.build_software_hive(d / "SOFTWARE")}
    for name in ("SAM", "SECURITY", "DEFAULT", "COMPONENTS"):
        out[name] = H.build_plain_hive(d / name, root_name="ROOT", file_name=name, keys=[f"{name}\\Probe"])
    return out


def _break_checksum(p: Path) -> None:
    data = bytearray(p.read_bytes())
    struct.pack_into("<I", data, 0x1FC, struct.unpack_from("<I", data, 0x1FC)[0] ^ 0x5A5A)
    p.write_bytes(bytes(data))


def _config(*, damage=None, regback=(), empty_regback=(), remove=(), log_for=None, real_system=None):
    def build(d):
        hives = _hives(d / "config")
        rb = d / "config" / "RegBack"
        rb.mkdir()
        for name in regback:
            hives[f"RegBack\\{name}"] = Path(shutil.copyfile(hives[name], rb / name))
        for name in empty_regback:
            (rb / name).write_bytes(b"")
            hives[f"RegBack\\{name}"] = rb / name
        for name, how in (damage or {}).items():
            how(hives[name])
        if real_system is not None:
            src = REALDATA / real_system
            if not src.is_file():
                pytest.skip(f"{src} not present")
            shutil.copyfile(src, hives["SYSTEM"])
        if log_for:
            H.synthetic_log(hives[log_for], f"{hives[log_for]}.LOG1")
        for name in remove:
            hives[name].unlink()
        return context(d, scenario=S, hives=hives)
    return build


OK_ALL = "SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, COMPONENTS open and are consistent"

CASES = [
    Case("hive-corrupt", "SYSTEM hive bin damaged, RegBack good, SYSTEM.LOG1 non-empty",
         _config(damage={"SYSTEM": damage_hbin}, regback=("SYSTEM", "SOFTWARE"), log_for="SYSTEM"), FOUND,
         "SYSTEM: hive bin at file offset 0x1000 has no 'hbin' signature (RegBack\\SYSTEM (81,920 bytes) opens and "
         "is consistent)",
         plan=("registry.restore-system: write file {d}/config/SYSTEM (81,920 bytes)",
               "registry.restore-system: write file {d}/config/SYSTEM.LOG1 (0 bytes)"), fixable=True),
    Case("hive-corrupt", "SOFTWARE checksum wrong, RegBack empty (Windows 10 1803+)",
         _config(damage={"SOFTWARE": _break_checksum}, empty_regback=("SOFTWARE",)), FOUND,
         "SOFTWARE: the base block checksum is wrong and no transaction log repairs it (RegBack\\SOFTWARE is empty "
         "(0 bytes): Windows 10 1803 / Server 2019 and later leave RegBack empty unless HKLM\\SYSTEM\\"
         "CurrentControlSet\\Control\\Session Manager\\Configuration Manager EnablePeriodicBackup=1 is set)",
         plan=("registry.restore-software skipped: SOFTWARE cannot be restored offline: RegBack\\SOFTWARE is empty "
               "(0 bytes): Windows 10 1803 / Server 2019 and later leave RegBack empty unless HKLM\\SYSTEM\\"
               "CurrentControlSet\\Control\\Session Manager\\Configuration Manager EnablePeriodicBackup=1 is set; "
               "restore the OS disk from a backup or snapshot (Azure Backup, a disk snapshot), or copy this hive "
               "from a System Restore point or volume shadow copy with a Windows repair VM",), fixable=False),
    Case("hive-corrupt", "SAM missing, no RegBack copy", _config(remove=("SAM",)), FOUND,
         "SAM: the file is missing (no RegBack copy)",
         plan=("registry.restore-sam skipped: SAM cannot be restored offline: no RegBack copy; restore the OS disk "
               "from a backup or snapshot (Azure Backup, a disk snapshot), or copy this hive from a System Restore "
               "point or volume shadow copy with a Windows repair VM",), fixable=False),
    Case("hive-corrupt", "regipy's corrupted SYSTEM (real)",
         _config(real_system="system/regipy_corrupted_SYSTEM", regback=("SYSTEM",)), FOUND,
         "SYSTEM: hive bin at file offset 0x1a000 has no 'hbin' signature (RegBack\\SYSTEM (81,920 bytes) opens "
         "and is consistent)", plan=("registry.restore-system: write file {d}/config/SYSTEM (81,920 bytes)",),
         fixable=True),
    Case("hive-corrupt", "six healthy hives, RegBack empty", _config(empty_regback=("SYSTEM",)), OK, OK_ALL,
         plan=("registry.restore skipped: every hive opens and is consistent",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case, tmp_path):
    from dataclasses import replace

    # The plan names host paths of this case's folder.
    plan = None if case.plan is None else tuple(line.format(d=tmp_path) for line in case.plan)
    run_case(replace(case, plan=plan), tmp_path)
