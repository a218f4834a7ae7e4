"""Benchmark: expand, cleanup and frag on a small and a 127 GiB dynamic VHD ("must not read
unused space"). `python -m rescue.cli.bench_space [OUTDIR]`; prints a table and writes bench-space.json.

Both disks start as a copy of the gen2-broken sample (1 GiB dynamic VHD); one is expanded to 2 GiB,
the other to 127 GiB (Azure's default OS disk size), each with `rescue expand`; then `rescue
cleanup --yes` and `rescue frag` run on each. Reported: wall time of each command and its phases,
the appliance launch included, and the VHD file's size afterwards (the 127 GiB one must stay small).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def _run(args: list[str]) -> tuple[float, dict]:
    import contextlib
    import io

    from rescue.cli.main import run

    buf = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(buf):
        code = run(args)
    took = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"rescue {' '.join(args)} failed with exit code {code}")
    return took, json.loads(buf.getvalue())


def main(outdir: str = "bench") -> dict:
    from rescue import samples
    from rescue.units import format_bytes

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    os.environ.setdefault("RESCUE_ACCEL", "tcg")
    results = {}
    for label, size in (("2G", "2G"), ("127G", "127G")):
        disk = out / f"space-{label}.vhd"
        shutil.copyfile(samples.sample_path("gen2-broken.vhd"), disk)
        disk.chmod(0o644)
        t_exp, exp = _run(["expand", str(disk), "--size", size, "--yes", "--json"])
        t_clean, clean = _run(["cleanup", str(disk), "--yes", "--json"])
        t_frag, frag = _run(["frag", str(disk), "--json"])
        results[label] = {
            "expand_seconds": round(t_exp, 1), "expand_phases": exp["expand"]["seconds"],
            "cleanup_seconds": round(t_clean, 1), "cleanup_phases": clean["seconds"],
            "cleanup_files": clean["cleanup"]["files"], "frag_seconds": round(t_frag, 1),
            "vhd_file_bytes": disk.stat().st_size,
            "filesystem_bytes": exp["expand"]["filesystem_size_after"],
            "largest_free_extent_bytes": frag["fragmentation"]["largest_free_extent_bytes"],
        }
        disk.unlink()
    (out / "bench-space.json").write_text(json.dumps(results, indent=2))
    print(f"{'':>6} {'expand s':>9} {'cleanup s':>10} {'frag s':>7} {'VHD file':>13}")
    for label, r in results.items():
        print(f"{label:>6} {r['expand_seconds']:>9} {r['cleanup_seconds']:>10} {r['frag_seconds']:>7} "
              f"{format_bytes(r['vhd_file_bytes']):>13}")
    return results


if __name__ == "__main__":
    main(*sys.argv[1:2])
