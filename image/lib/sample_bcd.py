#!/usr/bin/env python3
"""Write the BCD hive shipped in the image as /usr/share/rescue/sample-BCD (for `rescue bcd enum`
at the console and for image-test, which needs a BCD without launching libguestfs).

    .venv/bin/python image/lib/sample_bcd.py OUT

Made with the project's own sample builder (rescue.samples.bcd_store.build_bcd_hive: the Gen2 store
bcdboot writes, with Azure's settings). If the builder fails, so does this script (exit 1, the
reason on stderr, no OUT left behind): an image must never ship a BCD of unknown origin.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> int:
    from rescue.samples.bcd_store import build_bcd_hive

    out.unlink(missing_ok=True)
    try:
        build_bcd_hive(out, generation="gen2")
    except Exception as exc:
        out.unlink(missing_ok=True)
        print(f"sample BCD: the builder failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print("sample BCD: rescue.samples.bcd_store.build_bcd_hive(generation='gen2')")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
