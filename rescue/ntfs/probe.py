"""Reading a volume's NTFS state through a disk session (read-only): the raw metadata through
`read_partition_bytes`, \\hiberfil.sys's first page and MFT record number through a read-only
mount (ntfs-3g mounts a crashed or hibernated volume read-only, and its inode numbers are MFT
record numbers). No guestfs here: only the session's own primitives."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rescue.errors import DiskError
from rescue.ntfs.reset import read_state
from rescue.ntfs.state import HIBERFIL_HEADER, NtfsEvidence, NtfsState, hiberfil_signature

if TYPE_CHECKING:
    from rescue.disk.records import Partition
    from rescue.disk.view import Session
    from rescue.hive.hive import Hive

POWER_KEY = "Control\\Session Manager\\Power"


def reader(session: Session, part: Partition):
    """read(offset, size) over the partition, in pieces the appliance accepts, until `size` bytes."""
    def read(offset: int, size: int) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            chunk = session.read_partition_bytes(part, min(1 << 20, size - len(buf)), offset + len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)
    return read


def hiberfil(session: Session, mountpoint: str | None) -> tuple[bytes | None, int | None]:
    """(first page, MFT record number) of \\hiberfil.sys on a mounted volume; (None, None) when absent."""
    if mountpoint is None:
        return None, None
    path = session.resolve(mountpoint + "/hiberfil.sys")
    if path is None or not session.is_file(path):
        return None, None
    try:
        return session.read_head(path, HIBERFIL_HEADER), session.lstat(path).inode
    except DiskError:
        return b"", None


def evidence(session: Session, part: Partition, mountpoint: str | None,
             hiberboot: bool | None = None) -> NtfsEvidence:
    head, _record = hiberfil(session, mountpoint)
    return read_state(reader(session, part), hiberfil_signature(head), hiberboot)


def hiberboot_enabled(system_hive: Hive, control_set: int | None) -> bool | None:
    """SYSTEM\\ControlSet00N\\Control\\Session Manager\\Power\\HiberbootEnabled == 1 (Fast Startup on)."""
    if system_hive is None or not control_set:
        return None
    try:
        value = system_hive.get_value(f"ControlSet{control_set:03d}\\{POWER_KEY}", "HiberbootEnabled")
    except Exception:          # a damaged hive: the state is told without it
        return None
    return None if value is None else value == 1


def with_hiberboot(ev: NtfsEvidence, enabled: bool | None) -> NtfsEvidence:
    """The evidence once the Windows install's Fast Startup setting is known."""
    if not ev.state.hibernation:
        return replace(ev, hiberboot_enabled=enabled)
    return replace(ev, hiberboot_enabled=enabled, state=NtfsState.FAST_STARTUP if enabled else NtfsState.HIBERNATED)
