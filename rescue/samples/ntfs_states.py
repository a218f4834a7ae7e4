"""Sample builders for NTFS volumes in the states Windows leaves them in, stamped on the host into an
image file after the volume is written (mkntfs and ntfs-3g only ever leave a clean, empty log):

- `unclean`: a version 2.0 $LogFile restart area without the clean flag and with one log client in
  use ("NTFS"), as Windows 8 and later leave a volume that crashed, was force-stopped or shut down
  with Fast Startup. The field values are those of a real Windows-made volume (the unclean
  volume in ../shared/realdata/ntfs: system and log page 4 KiB, restart area at 0x30, client array
  at 0x40, record header 0x30, page data at 0x40) with the sequence-number bits and the file size
  of this volume's log, so ntfs-3g's restart-area checks accept it and then refuse to write
  ("Metadata kept in Windows cache").
- `dirty`: VOLUME_IS_DIRTY set in $Volume ($MFT and $MFTMirr), the log left clean: what Windows
  leaves when it schedules chkdsk.
- `wrap_volume`: a GPT disk around a bare NTFS volume image (the real Windows-made volumes).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from rescue.ntfs.mft import MFT_RECORD_LOGFILE, NtfsVolume, protect
from rescue.ntfs.reset import dirty_writes

PAGE = 4096
NO_CLIENT = 0xFFFF


def _reader(fh, base: int):
    def read(offset: int, size: int) -> bytes:
        fh.seek(base + offset)
        return fh.read(size)
    return read


def _restart_page(log_size: int, current_lsn: int) -> bytes:
    page = bytearray(b"\x00" * PAGE)
    usa_count = PAGE // 512 + 1
    struct.pack_into("<4sHHQIIHhh", page, 0, b"RSTR", 0x1E, usa_count, 0, PAGE, PAGE, 0x30, 0, 2)
    seq_bits = 67 - log_size.bit_length()
    struct.pack_into("<QHHHHIHHqIHHI", page, 0x30, current_lsn, 1, NO_CLIENT, 0, 0x0000, seq_bits, 0xE0, 0x40,
                     log_size, 0x70, 0x30, 0x40, 0x5EC7A2B1)
    client = 0x30 + 0x40
    struct.pack_into("<QQHHH", page, client, current_lsn - 0x1A7, current_lsn, NO_CLIENT, NO_CLIENT, 0)
    struct.pack_into("<I", page, client + 0x20, 8)
    page[client + 0x24:client + 0x2C] = "NTFS".encode("utf-16-le")
    return protect(bytes(page), 0)


def unclean_restart_pages(log_size: int, current_lsn: int = 0x2891CB) -> bytes:
    """Both restart pages (8 KiB) of a version 2.0 log left open by Windows."""
    return _restart_page(log_size, current_lsn) + _restart_page(log_size, current_lsn + 0xE4)


def make_unclean(image: Path, part_offset: int) -> None:
    """Write an unclean version 2.0 restart area over the first 8 KiB of the volume's $LogFile."""
    with open(image, "r+b") as fh:
        vol = NtfsVolume(_reader(fh, part_offset))
        size = vol.data_size(MFT_RECORD_LOGFILE)
        pieces = vol.extents(MFT_RECORD_LOGFILE, 0, 2 * PAGE)
        data = unclean_restart_pages(size)
        pos = 0
        for off, n in pieces:
            fh.seek(part_offset + off)
            fh.write(data[pos:pos + n])
            pos += n


def make_dirty(image: Path, part_offset: int) -> None:
    with open(image, "r+b") as fh:
        for w in dirty_writes(_reader(fh, part_offset)):
            for off, data in w.pieces():
                fh.seek(part_offset + off)
                fh.write(data)


def wrap_volume(volume: Path, dest: Path, *, disk_guid: str, part_guid: str) -> Path:
    """A GPT disk holding `volume` (a bare NTFS image) as partition 1 at 1 MiB, type basic data."""
    size = volume.stat().st_size
    part_sectors = -(-size // 512)
    total = 1024 * 1024 + part_sectors * 512 + 1024 * 1024
    dest.unlink(missing_ok=True)
    with open(dest, "wb") as fh:
        fh.truncate(total)
    table = (f"label: gpt\nlabel-id: {disk_guid}\nunit: sectors\n"
             f"start=2048, size={part_sectors}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid={part_guid}, "
             'name="Basic data partition"\n')
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(dest)], input=table.encode(),
                   check=True, capture_output=True)
    with open(volume, "rb") as src, open(dest, "r+b") as out:
        out.seek(1024 * 1024)
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return dest
