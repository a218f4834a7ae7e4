"""Sizes as people type them and as people read them: the one parser and the one formatter (and
the one way a count is written with its noun).

Units are binary (K = 1024), as qemu-img, Azure's --size-gb and Windows' memory sizes count them,
and are shown with their IEC names (MiB, GiB) so no reader takes them for decimal ones. Every size
rescue shows a person goes through `format_bytes`; exact byte counts ("41,000 bytes" of a file
named in evidence) are numbers, not sizes, and are written as such.
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


def count(n: int, noun: str, plural: Optional[str] = None) -> str:
    """A count and its noun as people write them: "1 file", "0 files", "1,500 files"."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def format_bytes(n: Optional[int], *, exact: bool = False) -> str:
    """How rescue shows every size to a person (messages, tables, findings): binary units with IEC
    names, one decimal, the largest unit the size reaches: "0 bytes", "1 byte", "1023 bytes",
    "1.0 KiB", "233.4 MiB", "1.5 GiB". A size that rounds up to 1024 of a unit is shown in the next
    one (1 MiB - 1 is "1.0 MiB", not "1024.0 KiB"). None reads "unknown"; a negative size (a
    change) keeps its sign.

    `exact` (disk and partition sizes, which are whole units more often than not): whole units
    when the size is a whole number of MiB, GiB or TiB (2040 GiB, not 1.99 TiB), two decimals
    otherwise."""
    if n is None:
        return "unknown"
    if n < 0:
        return "-" + format_bytes(-n, exact=exact)
    if exact:
        for unit, div in _EXACT_UNITS:
            if n >= div and n % div == 0:
                return f"{n // div} {unit}"
        for i, (unit, div) in enumerate(_EXACT_UNITS):
            if n >= div:
                if i > 0 and round(n / div, 2) >= 1024:
                    unit, div = _EXACT_UNITS[i - 1]
                return f"{n / div:.2f} {unit}"
        return _in_bytes(n)
    for i, (unit, div) in enumerate(_UNITS_DOWN):
        if n >= div:
            if i > 0 and round(n / div, 1) >= 1024:      # 1023.96 KiB rounds to 1024.0: say 1.0 MiB
                unit, div = _UNITS_DOWN[i - 1]
            value = n / div
            # Only TiB can reach 1024 (nothing larger is named): group the digits of such a size.
            return f"{value:,.1f} {unit}" if value >= 1024 else f"{value:.1f} {unit}"
    return _in_bytes(n)


_UNITS_DOWN = (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB))
_EXACT_UNITS = _UNITS_DOWN[:3]


def _in_bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"
