"""rescue.units.format_bytes: the one way every size is shown to a person, exact to the character."""

from __future__ import annotations

import pytest

from rescue.units import GiB, KiB, MiB, TiB, count, format_bytes


@pytest.mark.parametrize("n, shown", [
    (None, "unknown"),
    (0, "0 bytes"),
    (1, "1 byte"),
    (2, "2 bytes"),
    (1023, "1023 bytes"),
    (KiB, "1.0 KiB"),
    (KiB + 51, "1.0 KiB"),                 # 1.0498 KiB
    (KiB + 52, "1.1 KiB"),                 # 1.0508 KiB
    (41_000, "40.0 KiB"),
    (MiB - 1, "1.0 MiB"),                  # 1023.999 KiB would read "1024.0 KiB": the next unit
    (MiB - 52, "1023.9 KiB"),              # the last value that still rounds below 1024 KiB
    (MiB, "1.0 MiB"),
    (300 * 1000 * 1000, "286.1 MiB"),      # the article's "300 MB", in the unit rescue shows
    (256 * MiB, "256.0 MiB"),
    (GiB - 1, "1.0 GiB"),
    (int(1.5 * GiB), "1.5 GiB"),
    (int(2.25 * GiB), "2.2 GiB"),          # 2.25 rounds half to even
    (127 * GiB + 300 * MiB, "127.3 GiB"),
    (TiB, "1.0 TiB"),
    (2040 * GiB, "2.0 TiB"),
    (5000 * TiB, "5,000.0 TiB"),           # nothing larger than TiB: huge sizes group their digits
    (1 << 60, "1,048,576.0 TiB"),
    (-5 * MiB, "-5.0 MiB"),                # a change that shrank something
    (-1, "-1 byte"),
])
def test_format_bytes(n, shown):
    assert format_bytes(n) == shown


@pytest.mark.parametrize("n, shown", [
    (None, "unknown"),
    (0, "0 bytes"),
    (1023, "1023 bytes"),
    (KiB, "1024 bytes"),                   # disk sizes: no KiB (nothing is sized in KiB)
    (MiB, "1 MiB"),
    (64 * MiB, "64 MiB"),
    (GiB, "1 GiB"),
    (GiB + 1, "1.00 GiB"),
    (GiB - 1, "1.00 GiB"),                 # not "1024.00 MiB"
    (GiB + MiB, "1025 MiB"),               # a whole number of MiB: exact, not "1.00 GiB"
    (127 * GiB, "127 GiB"),
    (2040 * GiB, "2040 GiB"),              # the VHD limit as the spec writes it, not "1.99 TiB"
    (4 * TiB, "4 TiB"),
    (int(1.5 * TiB) + 1, "1.50 TiB"),
])
def test_format_bytes_exact(n, shown):
    assert format_bytes(n, exact=True) == shown


@pytest.mark.parametrize("n, noun, plural, shown", [
    (0, "file", None, "0 files"),
    (1, "file", None, "1 file"),
    (2, "file", None, "2 files"),
    (1500, "file", None, "1,500 files"),
    (1, "directory", "directories", "1 directory"),
    (3, "directory", "directories", "3 directories"),
])
def test_count(n, noun, plural, shown):
    assert count(n, noun, plural) == shown
