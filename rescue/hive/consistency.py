"""Is a hive file structurally sound? The checks Windows' loader makes before it trusts a hive.

REGF layout (libyal "Windows NT Registry File (REGF) format"; Maxim Suhanov, "Windows registry
file format specification"): a 4 KiB base block ("regf", checksum at 0x1FC over the first 508
bytes, hive bins data size at 0x28), then hive bins, each starting on a 4 KiB boundary with
"hbin", its own offset from the first bin (must equal its position) and its size (a multiple of
4 KiB); the bins fill exactly the size the base block gives. Then hivex must open it (it walks the
bins and the root key). Reads only the host copy it is given.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rescue.hive.regf import BASE_BLOCK_SIZE, REGF_MAGIC, base_block_checksum

HBIN_MAGIC = b"hbin"
_ALIGN = 4096


@dataclass(frozen=True)
class Consistency:
    ok: bool
    problem: Optional[str] = None      # one sentence when not ok
    bins: int = 0


def check_hive_file(path: Path, *, check_checksum: bool = True) -> Consistency:
    """Signature, base block checksum (unless the caller already replayed logs over it), the chain
    of hive bins, and whether hivex opens it."""
    size = path.stat().st_size
    if size == 0:
        return Consistency(False, "the file is empty (0 bytes)")
    with open(path, "rb") as fh:
        base = fh.read(BASE_BLOCK_SIZE)
        if len(base) < 512 or base[:4] != REGF_MAGIC:
            return Consistency(False, "no 'regf' signature: not a registry hive")
        if check_checksum and struct.unpack_from("<I", base, 0x1FC)[0] != base_block_checksum(base[:512]):
            return Consistency(False, "the base block checksum is wrong")
        bins_size = struct.unpack_from("<I", base, 0x28)[0]
        if bins_size == 0 or bins_size % _ALIGN or BASE_BLOCK_SIZE + bins_size > size:
            return Consistency(False, f"the base block gives {bins_size:,} bytes of hive bins, the file holds "
                                      f"{max(size - BASE_BLOCK_SIZE, 0):,}")
        offset, bins = 0, 0
        while offset < bins_size:
            fh.seek(BASE_BLOCK_SIZE + offset)
            head = fh.read(32)
            at = f"hive bin at file offset 0x{BASE_BLOCK_SIZE + offset:x}"
            if len(head) < 32 or head[:4] != HBIN_MAGIC:
                return Consistency(False, f"{at} has no 'hbin' signature", bins)
            own, bin_size = struct.unpack_from("<II", head, 4)
            if own != offset:
                return Consistency(False, f"{at} says it is at 0x{own:x}", bins)
            if bin_size == 0 or bin_size % _ALIGN or offset + bin_size > bins_size:
                return Consistency(False, f"{at} has an impossible size ({bin_size:,} bytes)", bins)
            offset += bin_size
            bins += 1
    try:
        from rescue.errors import RescueError
        from rescue.hive import Hive

        hive = Hive(path)
        try:
            hive.child_names("")
        finally:
            hive.close()
    except RescueError as exc:
        return Consistency(False, f"hivex cannot read it ({exc.message})", bins)
    return Consistency(True, None, bins)
