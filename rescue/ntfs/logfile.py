"""$LogFile restart pages: is the log clean, which version, and what a reset writes.

The NTFS log ($LogFile, MFT record 2) starts with two restart pages (at offset 0 and at one system
page size), each a RESTART_PAGE_HEADER ("RSTR", or "CHKD" after chkdsk) followed by a RESTART_AREA;
layouts as in ntfs-3g's logfile.h:

    RESTART_PAGE_HEADER   0 magic, 4 usa_ofs, 6 usa_count, 8 chkdsk_lsn, 16 system_page_size,
                          20 log_page_size, 24 restart_area_offset, 26 minor_ver, 28 major_ver
    RESTART_AREA          0 current_lsn, 8 log_clients, 10 client_free_list,
                          12 client_in_use_list, 14 flags (0x0002 RESTART_VOLUME_IS_CLEAN), ...

The newer restart page (higher current_lsn) is the one that counts. ntfs-3g calls the log clean
when no client has it open or the clean flag is set (ntfs_is_logfile_clean), and on top refuses
any read-write mount when that page is version 2.0 ("Metadata kept in Windows cache"): Windows 8
and later write 2.0 pages while the volume is in use, so a crash, a forced stop or a Fast Startup
shutdown all leave a 2.0 page without the clean flag. A log that is 0xFF throughout is empty:
Windows creates new restart pages at its next mount.

Resetting the log is what ntfs-3g does for older logs (ntfs_logfile_reset -> ntfs_empty_logfile):
fill all of $LogFile with 0xFF. Windows then has nothing to replay and starts a new log, and the
volume marked dirty makes it run chkdsk first, which repairs what the dropped log records would
have (the last metadata changes before the crash).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rescue.ntfs.mft import NtfsFormatError, unprotect

RESTART_VOLUME_IS_CLEAN = 0x0002
LOGFILE_NO_CLIENT = 0xFFFF
RESTART_MAGICS = (b"RSTR", b"CHKD")


@dataclass(frozen=True)
class RestartPage:
    position: int              # byte offset in $LogFile (0 or the system page size)
    magic: str
    major: int
    minor: int
    system_page_size: int
    log_page_size: int
    current_lsn: int
    client_in_use_list: int
    flags: int

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def clean(self) -> bool:
        """ntfs-3g's rule: clean when no log client is in use or the volume-is-clean flag is set."""
        return self.client_in_use_list == LOGFILE_NO_CLIENT or bool(self.flags & RESTART_VOLUME_IS_CLEAN)


@dataclass(frozen=True)
class LogState:
    empty: bool                          # 0xFF throughout where looked (a reset log)
    page: RestartPage | None             # the restart page that counts (None when empty)

    @property
    def clean(self) -> bool:
        return self.empty or (self.page is not None and self.page.clean)

    @property
    def windows_cache(self) -> bool:
        """Version 2.0 and not clean: ntfs-3g refuses read-write ("Metadata kept in Windows cache")."""
        return self.page is not None and (self.page.major, self.page.minor) == (2, 0) and not self.page.clean


def parse_restart_page(block: bytes, position: int) -> RestartPage | None:
    """The restart page at `position` of $LogFile (block starts there), or None when there is none."""
    if block[:4] not in RESTART_MAGICS:
        return None
    system_page, log_page, ra_ofs, minor, major = struct.unpack_from("<IIHhh", block, 16)
    if system_page < 512 or system_page & (system_page - 1) or system_page > len(block):
        raise NtfsFormatError(f"$LogFile restart page at {position} has a bad page size ({system_page}).")
    plain = unprotect(block[:system_page], f"$LogFile restart page at {position}")
    if ra_ofs + 16 > system_page:
        raise NtfsFormatError(f"$LogFile restart page at {position} points outside itself.")
    current_lsn, _clients, _free, in_use, flags = struct.unpack_from("<QHHHH", plain, ra_ofs)
    return RestartPage(position, block[:4].decode(), major, minor, system_page, log_page, current_lsn, in_use, flags)


def restart_span(first_page: bytes) -> int:
    """Bytes at the start of $LogFile the two restart pages occupy (2 x system page size; 8 KiB
    when the first page says nothing, which is the size Windows uses on x86/x64)."""
    if first_page[:4] in RESTART_MAGICS:
        size = struct.unpack_from("<I", first_page, 16)[0]
        if 512 <= size <= 65536 and not size & (size - 1):
            return 2 * size
    return 8192


def assess(head: bytes) -> LogState:
    """Judge the log from its first bytes (`head`: at least both restart pages)."""
    first = parse_restart_page(head, 0)
    page_size = first.system_page_size if first else 4096
    second = parse_restart_page(head[page_size:], page_size) if len(head) >= 2 * page_size else None
    pages = [p for p in (first, second) if p is not None]
    if not pages:
        if head and head == b"\xff" * len(head):
            return LogState(True, None)
        raise NtfsFormatError("$LogFile has no restart page and is not empty.")
    newest = max(pages, key=lambda p: p.current_lsn)
    return LogState(False, newest)
