#!/usr/bin/env python3
"""Write the BCD hive shipped in the image as /usr/share/rescue/sample-BCD (for `rescue bcd enum`
at the console and for image-test, which needs a BCD without launching libguestfs).

    .venv/bin/python image/lib/sample_bcd.py OUT

Made with the project's own sample builder (rescue.samples.hives.build_bcd_hive: the Gen2 store
bcdboot writes, with Azure's settings). Until that builder is importable, falls back to a real
store from ../shared/realdata/bcd (absent outside the project's machines, then this fails loudly).
Prints which source was used.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FALLBACK = REPO.parent / "shared" / "realdata" / "bcd" / "regipy_win10_uefi_BCD"


def main(out: Path) -> int:
    out.unlink(missing_ok=True)
    try:
        from rescue.samples.bcd_store import build_bcd_hive
        build_bcd_hive(out, generation="gen2")
        print("sample BCD: rescue.samples.hives.build_bcd_hive(generation='gen2')")
        return 0
    except Exception as exc:  # the builder is being written by another helper: say why, fall back
        out.unlink(missing_ok=True)
        reason = f"{type(exc).__name__}: {exc}"
    if FALLBACK.is_file():
        shutil.copyfile(FALLBACK, out)
        print(f"sample BCD: {FALLBACK.name} from shared/realdata (builder unavailable: {reason})")
        return 0
    print(f"sample BCD: cannot build one ({reason}) and {FALLBACK} is absent", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
