"""The real hives in ../shared/realdata (beside the repo), described in its README.md.

Tests that use them call `need("bcd/regipy_win10_uefi_BCD")`, which skips the test cleanly when the
folder or the file is absent (the data is never copied into the project).
"""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/realdata.py -> parents[1] is the repo; realdata sits in ../shared beside it.
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def need(name: str) -> Path:
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"real data {name} is not available ({REALDATA} absent)")
    return path
