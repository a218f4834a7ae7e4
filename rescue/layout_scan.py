"""Collect a `WindowsLayout` through one DiskSession (read-only mounts, metadata only).

Order of work: partition tables → per-volume state (BitLocker signature, ntfs-3g verdict) →
read-only mounts → Windows roots (\\Windows\\System32\\config\\SYSTEM) → hives (SOFTWARE version,
SYSTEM Select\\Current and MountedDevices) → drive letters → the BCD the firmware will use.
Nothing here reads data proportional to the disk size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rescue.errors import DiskError, InputError, NotWindowsError, RescueError, UnsafeStateError, UsageError
from rescue.layout import (BCD_GEN1, BCD_GEN2, SOFTWARE_HIVE, SYSTEM_HIVE, BcdLocation, LetterMapping,
                           SystemPartition, Volume, VolumeRole, VolumeState, WindowsInstall, WindowsLayout,
                           parse_mounted_devices)
from rescue.ntfs import probe as ntfs_probe
from rescue.ntfs.state import NtfsState
from rescue.target import win_to_posix

if TYPE_CHECKING:
    from rescue.ntfs.state import NtfsEvidence

if TYPE_CHECKING:
    from rescue.disk.records import DiskInfo, Partition
    from rescue.disk.view import Session

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MSR = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
WINRE = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"
BITLOCKER_OEM_ID = b"-FVE-FS-"   # offset 3 of a BitLocker volume's boot sector


# blkid recognises these by their own signatures, so a volume it calls one of them is not BitLocker
# (whose boot sector carries -FVE-FS- instead of "NTFS    "): no boot-sector read for them.
KNOWN_FILESYSTEMS = {"ntfs", "vfat", "exfat", "ext2", "ext3", "ext4", "xfs", "btrfs", "swap"}


def _volume_state(session: Session, part: Partition) -> tuple[str, str | None]:
    """The state told before mounting: BitLocker (by its boot sector), unformatted, or "ok" for now
    (an NTFS volume's own metadata decides after its read-only mount, _ntfs_state)."""
    fstype = (part.fstype or "").lower()
    if fstype in KNOWN_FILESYSTEMS or part.gpt_type == MSR:
        head = b""
    else:
        head = session.read_partition_bytes(part, 512, 0) if part.size >= 512 else b""
    if head[3:11] == BITLOCKER_OEM_ID or fstype == "bitlocker":
        return "bitlocker", "BitLocker-encrypted: unlock it (e.g. dislocker with the recovery key) first"
    if part.fstype is None:
        return "unformatted", None
    return "ok", None


# Volume.state of each NTFS state, and what the note says (the evidence follows it).
NTFS_STATE_NOTES = {
    NtfsState.UNCLEAN: ("unclean", "not shut down cleanly (crash or forced stop): the NTFS log was not "
                                   "replayed; writing needs --reset-ntfs-log"),
    NtfsState.HIBERNATED: ("hibernated", "hibernated: resumable image in hiberfil.sys; writing needs "
                                         "--discard-hibernation"),
    NtfsState.FAST_STARTUP: ("fast-startup", "shut down with Fast Startup (hybrid shutdown image in "
                                             "hiberfil.sys); writing needs --discard-hibernation"),
    NtfsState.DIRTY: ("dirty", "marked dirty: chkdsk runs at the next Windows boot"),
}


def _ntfs_state(session: Session, part: Partition, mountpoint: str | None,
                ev: NtfsEvidence) -> tuple[str, str | None]:
    """Volume.state and note of an NTFS volume from its evidence; ntfs-3g's own verdict where the
    metadata says clean (it may still refuse for reasons of its own) or could not be read."""
    if ev.state in NTFS_STATE_NOTES:
        state, note = NTFS_STATE_NOTES[ev.state]
        return state, f"{note} ({ev.summary()})"
    verdict = session.ntfs_state(part, rw=True)
    if verdict == "hibernated":
        return "hibernated", "ntfs-3g: hibernated or unclean log; " + ev.summary()
    if verdict == "unclean":
        return "unclean", "NTFS not shut down cleanly: run chkdsk /f before writing"
    if verdict not in ("ok",):
        return "unmountable", f"ntfs-3g: {verdict}"
    return "ok", None


def _role(part: Partition, has_windows: bool, is_system: bool) -> str:
    if part.gpt_type == ESP or part.mbr_type == 0xEF:
        return "esp"
    if part.gpt_type == MSR:
        return "msr"
    if part.gpt_type == WINRE or part.mbr_type == 0x27:
        return "recovery"
    if has_windows:
        return "windows"
    if is_system:
        return "system-reserved"
    return "data"


def _read_hive(session: Session, mp: str, path: str, tmp: Path, name: str):
    from rescue.hive import Hive

    real = session.resolve(mp + win_to_posix(path))
    if real is None:
        return None, f"{path} is missing"
    local = tmp / name
    try:
        session.download(real, local)
        return Hive(local), None
    except DiskError as exc:
        return None, f"{path} cannot be read: {exc}"
    except RescueError as exc:
        return None, str(exc)


def scan(session: Session, *, root: str | None = None, workdir: Path | None = None,
         fetched: dict | None = None) -> WindowsLayout:
    """`workdir`/`fetched`: when given, the hives downloaded here are kept in `workdir` and recorded
    in `fetched` ({FileRef: host path}) so the command reuses them instead of downloading again."""
    disks = session.disks()
    notes: list[str] = []
    states: dict[str, tuple[str, str | None]] = {}
    mounts: dict[str, str] = {}
    evidence: dict = {}
    for part in session.partitions():
        states[part.key] = _volume_state(session, part)
        if states[part.key][0] == "ok" and part.fstype in ("ntfs", "vfat", "fat", "exfat"):
            try:
                # Read-only: ntfs-3g mounts a crashed or hibernated NTFS this way too.
                mounts[part.key] = session.mount(part, write=False)
            except RescueError as exc:
                states[part.key] = ("unmountable", str(exc))
        if part.fstype == "ntfs" and states[part.key][0] != "bitlocker":
            evidence[part.key] = ntfs_probe.evidence(session, part, mounts.get(part.key))
            if states[part.key][0] == "ok":
                states[part.key] = _ntfs_state(session, part, mounts.get(part.key), evidence[part.key])

    # Windows roots: volumes with \Windows\System32\config\SYSTEM.
    parts = {p.key: p for p in session.partitions()}
    windows_keys = [k for k, mp in mounts.items() if session.resolve(mp + win_to_posix(SYSTEM_HIVE))]
    installs: list[WindowsInstall] = []
    letters: list[LetterMapping] = []
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="rescue-layout-"))
    chosen_key = None
    if root:
        chosen_key = _parse_root(root, session, parts)
        if chosen_key not in windows_keys:
            raise NotWindowsError(f"--root {root} does not hold a Windows installation.")
    elif len(windows_keys) > 1:
        roots = ", ".join(f"{session.images[parts[k].disk].path}:{parts[k].number}" for k in windows_keys)
        raise NotWindowsError(f"Found more than one Windows installation ({roots}).",
                              hint="Choose one with --root DISK:PARTITION (e.g. --root 1:2, disk index then partition number).")
    elif windows_keys:
        chosen_key = windows_keys[0]
    try:
        for key in windows_keys:
            p, mp = parts[key], mounts[key]
            inotes: list[str] = []
            product = version = None
            build = control_set = None
            sw, why = _read_hive(session, mp, SOFTWARE_HIVE, tmp, f"{key}-SOFTWARE")
            if sw is None:
                inotes.append(f"version unknown: {why}")
            else:
                cv = "Microsoft\\Windows NT\\CurrentVersion"
                try:
                    product = sw.get_value(cv, "ProductName")
                    major = sw.get_value(cv, "CurrentMajorVersionNumber")
                    minor = sw.get_value(cv, "CurrentMinorVersionNumber")
                    version = f"{major}.{minor}" if major is not None else sw.get_value(cv, "CurrentVersion")
                    b = sw.get_value(cv, "CurrentBuildNumber") or sw.get_value(cv, "CurrentBuild")
                    build = int(b) if isinstance(b, str) and b.isdigit() else None
                except RescueError as exc:
                    inotes.append(f"version unknown: {exc}")
            sysh, why = _read_hive(session, mp, SYSTEM_HIVE, tmp, f"{key}-SYSTEM")
            if sysh is None:
                inotes.append(f"control set unknown: {why}")
            else:
                try:
                    cur = sysh.get_value("Select", "Current")
                    control_set = cur if isinstance(cur, int) else None
                    if control_set is None:
                        inotes.append("control set unknown: SYSTEM has no Select\\Current")
                    if key in evidence:
                        ev = ntfs_probe.with_hiberboot(evidence[key], ntfs_probe.hiberboot_enabled(sysh, control_set))
                        if ev != evidence[key]:
                            evidence[key] = ev
                            if states[key][0] in ("ok", "hibernated", "fast-startup"):
                                states[key] = _ntfs_state(session, p, mounts.get(key), ev)
                    if key == chosen_key:
                        node = sysh.find("MountedDevices")
                        vals = [(v.name, v.data) for v in sysh.values(node)] if node else []
                        letters = parse_mounted_devices(vals, disks)
                except RescueError as exc:
                    inotes.append(f"SYSTEM hive unreadable: {exc}")
            installs.append(WindowsInstall(disk=p.disk, partition=p.number, product=product, version=version,
                                           build=build, control_set=control_set, notes=tuple(inotes)))
            if fetched is not None:
                from rescue.safety.plan import FileRef
                for hive, path, name in ((sw, SOFTWARE_HIVE, "SOFTWARE"), (sysh, SYSTEM_HIVE, "SYSTEM")):
                    if hive is not None:
                        fetched[FileRef(path, p.disk, p.number)] = tmp / f"{key}-{name}"
    finally:
        if not workdir:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)

    chosen_part = parts.get(chosen_key) if chosen_key else None
    chosen = next((i for i in installs if chosen_part is not None
                   and (i.disk, i.partition) == (chosen_part.disk, chosen_part.number)), None)
    bcd, generation = _find_bcd(session, disks, mounts, parts, chosen)
    system = _find_system(disks, bcd, chosen)
    if chosen is None and not windows_keys:
        notes.append("no Windows installation found")
    letter_of = {(m.disk, m.partition): m.letter for m in letters if m.disk is not None}

    volumes = []
    for key, p in parts.items():
        state, note = states[key]
        size, free = p.size, None
        if key in mounts:
            try:
                usage = session.usage(mounts[key])
                size, free = usage.size_bytes, usage.free_bytes
            except DiskError:
                pass
        is_system = system is not None and system.how != "windows" and (system.disk, system.partition) == (p.disk, p.number)
        role = "bitlocker" if state == "bitlocker" else _role(p, key in windows_keys, is_system)
        volumes.append(Volume(disk=p.disk, partition=p.number, fstype=p.fstype, label=p.label,
                              size_bytes=size, free_bytes=free, letter=letter_of.get((p.disk, p.number)),
                              role=VolumeRole(role), state=VolumeState(state), note=note, ntfs=evidence.get(key)))
    return WindowsLayout(
        disk_paths=tuple(i.path for i in session.images),
        disk_formats=tuple(i.format_label for i in session.images),
        partition_tables=tuple(d.table for d in disks),
        generation=generation, volumes=tuple(volumes), windows=tuple(installs), root=chosen,
        bcd=bcd, letters=tuple(letters), notes=tuple(notes), system=system)


def _parse_root(root: str, session: Session, parts: dict[str, Partition]) -> str:
    """--root DISK:PARTITION where DISK is a 0-based index or the path given, e.g. "0:3" or "/dev/sdc:2"."""
    disk_s, _, part_s = root.rpartition(":")
    if not part_s.isdigit():
        raise UsageError(f"--root {root!r} is not DISK:PARTITION (e.g. 0:3).")
    if disk_s == "":
        disk = 0
    elif disk_s.isdigit():
        disk = int(disk_s)
    else:
        paths = [i.path for i in session.images]
        if disk_s not in paths:
            raise UsageError(f"--root names disk {disk_s!r}, which was not given.")
        disk = paths.index(disk_s)
    want = (disk, int(part_s))
    return next((k for k, p in parts.items() if (p.disk, p.number) == want), f"{disk}:{part_s}")


def _find_bcd(session: Session, disks: Sequence[DiskInfo], mounts: dict[str, str], parts: dict[str, Partition],
              chosen: WindowsInstall | None):
    """The BCD the firmware will actually use.

    Gen2 (GPT): UEFI firmware runs \\EFI\\Microsoft\\Boot\\bootmgfw.efi from the ESP, which reads
    \\EFI\\Microsoft\\Boot\\BCD on the ESP (the article's "\\boot\\bcd" is wrong for Gen2).
    Gen1 (MBR): the BIOS boots the active partition's bootmgr, which reads \\Boot\\BCD there: the
    "System Reserved" partition, or C: itself when there is none.
    Prefer the OS disk (the chosen install's disk), then any attached disk.
    """
    order = sorted(disks, key=lambda d: 0 if chosen and d.index == chosen.disk else 1)
    for d in order:
        if d.table == "gpt":
            for p in d.partitions:
                if p.gpt_type == ESP and p.key in mounts and session.resolve(mounts[p.key] + win_to_posix(BCD_GEN2)):
                    return BcdLocation(d.index, p.number, BCD_GEN2), "gen2"
        if d.table == "mbr":
            active = [p for p in d.partitions if p.bootable]
            candidates = active + [p for p in d.partitions if p not in active]
            for p in candidates:
                if p.key in mounts and session.resolve(mounts[p.key] + win_to_posix(BCD_GEN1)):
                    return BcdLocation(d.index, p.number, BCD_GEN1), "gen1"
    if chosen:
        d = disks[chosen.disk]
        return None, {"gpt": "gen2", "mbr": "gen1"}.get(d.table or "")
    return None, None


def _find_system(disks: Sequence[DiskInfo], bcd: BcdLocation | None,
                 chosen: WindowsInstall | None) -> SystemPartition | None:
    """The system partition (rescue.layout.SystemPartition): where the store is when one was
    found, else where Windows Setup puts it on the chosen install's disk."""
    by_key = {(d.index, p.number): p for d in disks for p in d.partitions}
    if bcd is not None:
        p = by_key.get((bcd.disk, bcd.partition))
        how = "esp" if p is not None and (p.gpt_type == ESP or p.mbr_type == 0xEF) else \
            "active" if p is not None and p.bootable else "system-reserved"
        if chosen is not None and (bcd.disk, bcd.partition) == (chosen.disk, chosen.partition) and how != "active":
            how = "windows"
        return SystemPartition(bcd.disk, bcd.partition, how, bool(p is not None and p.bootable))
    if chosen is None or chosen.disk >= len(disks):
        return None
    d = disks[chosen.disk]
    if d.table == "gpt":
        esp = next((p for p in d.partitions if p.gpt_type == ESP), None)
        return SystemPartition(d.index, esp.number, "esp") if esp else None
    if d.table == "mbr":
        active = next((p for p in d.partitions if p.bootable), None)
        if active is not None:
            return SystemPartition(d.index, active.number, "active", True)
        reserved = next((p for p in d.partitions if (p.label or "").lower() == "system reserved"), None)
        if reserved is not None:
            return SystemPartition(d.index, reserved.number, "system-reserved", False)
        return SystemPartition(d.index, chosen.partition, "windows", False)
    return None


def refresh_usage(session: Session, layout: WindowsLayout) -> WindowsLayout:
    """The same layout with each mounted volume's size/free read again (after a write changed them);
    everything else was collected once and stays as it was."""
    from dataclasses import replace

    vols = []
    for v in layout.volumes:
        part = session.partition(v.disk, v.partition)
        mp = session.mounted(part)
        if mp:
            try:
                usage = session.usage(mp)
                v = replace(v, size_bytes=usage.size_bytes, free_bytes=usage.free_bytes)
            except DiskError:
                pass
        vols.append(v)
    return replace(layout, volumes=tuple(vols))
