"""Sizes as people type them and as people read them: the one parser and the one formatter.

Units are binary (K = 1024), as qemu-img, Azure's --size-gb and Windows' memory sizes count them.
"""

from __future__ import annotations

import re
from typing import Optional

from rescue.errors import UsageError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": TiB}


def parse_size(text: str) -> int:
    """"16G", "16GiB", "16 GB", "3.5G", "4096M", "17179869184" (bytes) -> a positive byte count."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if not m:
        raise UsageError(f"{text!r} is not a size: write it like 16G, 3.5G, 127G or 4096M.")
    n = int(float(m.group(1)) * _UNITS[m.group(2)])
    if n <= 0:
        raise UsageError(f"{text!r} is not a positive size.")
    return n


def format_bytes(n: Optional[int], *, exact: bool = False) -> str:
    """1.5 GiB; with `exact`, whole units when the size is a whole number of them (2040 GiB, not
    1.99 TiB) and two decimals otherwise. None reads "unknown"."""
    if n is None:
        return "unknown"
    units = (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB))
    if exact:
        for unit, div in units[:3]:
            if n >= div and n % div == 0:
                return f"{n // div} {unit}"
        for unit, div in units[:3]:
            if n >= div:
                return f"{n / div:.2f} {unit}"
        return f"{n} bytes"
    for unit, div in units:
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} bytes"
