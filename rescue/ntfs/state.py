"""What state Windows left an NTFS volume in, told from the volume's own metadata (read-only).

Evidence: the $LogFile restart page that counts (rescue.ntfs.logfile), the VOLUME_INFORMATION
flags of $Volume (0x0001 VOLUME_IS_DIRTY: chkdsk runs at the next boot), and the first bytes of
\\hiberfil.sys. A resumable hibernation image starts "HIBR" (Windows 8 and later; "hibr" on older
Windows, ntfs-3g's ntfs_volume_check_hiberfile refuses both); Windows rewrites the signature once
the image is used or dropped ("wake", "RSTR" while a resume is under way, zeroes), so any other
header is not resumable. Fast Startup is a hibernation of the kernel session at shutdown (a
"hybrid shutdown"): the image header looks the same, so it is told apart by the SYSTEM hive's
`Control\\Session Manager\\Power\\HiberbootEnabled` = 1 — a VM with Fast Startup on whose
hiberfil.sys holds an image was shut down that way, not hibernated on purpose.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rescue.ntfs.logfile import LogState
from rescue.ntfs.mft import ATTR_VOLUME_INFORMATION, resident_value_offset

VOLUME_IS_DIRTY = 0x0001
RESUMABLE_SIGNATURES = ("HIBR", "hibr", "RSTR", "HORM")
HIBERFIL = "\\hiberfil.sys"
HIBERFIL_HEADER = 4096            # the PO_MEMORY_IMAGE page ntfs-3g and the boot manager look at


class NtfsState(str, enum.Enum):
    CLEAN = "clean"                    # clean log, no resumable image, not dirty
    UNCLEAN = "unclean"                # log not clean, no hibernation image: a crash or a forced stop
    HIBERNATED = "hibernated"          # hiberfil.sys holds a resumable image
    FAST_STARTUP = "fast-startup"      # the same, written by a Fast Startup (hybrid) shutdown
    DIRTY = "dirty"                    # log clean, dirty bit set: chkdsk runs at the next boot
    UNKNOWN = "unknown"                # the metadata could not be read

    @property
    def needs_reset(self) -> bool:
        """ntfs-3g cannot write here until the log is reset (and the image dropped)."""
        return self in (NtfsState.UNCLEAN, NtfsState.HIBERNATED, NtfsState.FAST_STARTUP)

    @property
    def hibernation(self) -> bool:
        return self in (NtfsState.HIBERNATED, NtfsState.FAST_STARTUP)


@dataclass(frozen=True)
class NtfsEvidence:
    """What the state was told from; every field is None when it could not be read."""

    state: NtfsState
    log_version: str | None = None             # "2.0"
    log_clean: bool | None = None
    log_empty: bool | None = None
    restart_flags: int | None = None           # RESTART_AREA.flags
    log_clients_in_use: bool | None = None     # client_in_use_list != LOGFILE_NO_CLIENT
    volume_flags: int | None = None            # VOLUME_INFORMATION.flags
    hiberfil_signature: str | None = None      # "HIBR", "wake", "zeroed", ... None: no hiberfil.sys
    hiberboot_enabled: bool | None = None      # SYSTEM ...\Power\HiberbootEnabled (Fast Startup on)
    problem: str | None = None                 # why the state is unknown

    @property
    def dirty(self) -> bool | None:
        return None if self.volume_flags is None else bool(self.volume_flags & VOLUME_IS_DIRTY)

    @property
    def resumable(self) -> bool:
        return self.hiberfil_signature in RESUMABLE_SIGNATURES

    def summary(self) -> str:
        """One line of evidence, e.g. "log 2.0 not clean (flags 0x0000), no hiberfil.sys"."""
        if self.state is NtfsState.UNKNOWN:
            return f"NTFS state unknown: {self.problem}"
        bits = []
        if self.log_empty:
            bits.append("log empty")
        elif self.log_version is not None:
            bits.append(f"log {self.log_version} {'clean' if self.log_clean else 'not clean'}"
                        f" (restart flags 0x{self.restart_flags or 0:04x})")
        if self.volume_flags is not None:
            bits.append(f"volume flags 0x{self.volume_flags:04x}" + (" (dirty)" if self.dirty else ""))
        bits.append("no hiberfil.sys" if self.hiberfil_signature is None
                    else f"hiberfil.sys header {self.hiberfil_signature!r}")
        if self.hiberboot_enabled is not None:
            bits.append(f"Fast Startup {'on' if self.hiberboot_enabled else 'off'}")
        return ", ".join(bits)

    def to_json(self) -> dict:
        return {"state": self.state.value, "log_version": self.log_version, "log_clean": self.log_clean,
                "log_empty": self.log_empty, "restart_flags": self.restart_flags,
                "log_clients_in_use": self.log_clients_in_use, "volume_flags": self.volume_flags,
                "dirty": self.dirty, "hiberfil_signature": self.hiberfil_signature,
                "hiberboot_enabled": self.hiberboot_enabled, "problem": self.problem}


def hiberfil_signature(head: bytes | None) -> str | None:
    """The header's signature as shown to users: None (no file), "zeroed", "empty", or 4 characters."""
    if head is None:
        return None
    if not head:
        return "empty"
    if head.count(0) == len(head):
        return "zeroed"
    sig = head[:4]
    return sig.decode("ascii") if all(0x20 < c < 0x7F for c in sig) else sig.hex()


def volume_flags(volume_record_plain: bytes) -> int:
    """VOLUME_INFORMATION.flags from the unprotected $Volume record (offset 10 of the value)."""
    return struct.unpack_from("<H", volume_record_plain,
                              resident_value_offset(volume_record_plain, ATTR_VOLUME_INFORMATION) + 10)[0]


def classify(log: LogState, flags: int, hiberfil: str | None, hiberboot: bool | None) -> NtfsEvidence:
    page = log.page
    resumable = hiberfil in RESUMABLE_SIGNATURES
    if resumable:
        state = NtfsState.FAST_STARTUP if hiberboot else NtfsState.HIBERNATED
    elif not log.clean:
        state = NtfsState.UNCLEAN
    elif flags & VOLUME_IS_DIRTY:
        state = NtfsState.DIRTY
    else:
        state = NtfsState.CLEAN
    return NtfsEvidence(
        state=state, log_version=page.version if page else None, log_clean=log.clean, log_empty=log.empty,
        restart_flags=page.flags if page else None,
        log_clients_in_use=(page.client_in_use_list != 0xFFFF) if page else None,
        volume_flags=flags, hiberfil_signature=hiberfil, hiberboot_enabled=hiberboot)
