"""`make bench`: rescue against the bare appliance and against the generic tools, side by side.

Measured in one run, on copies of the broken Gen2 sample (dynamic VHD):
  1. `rescue inspect` vs a bare `guestfish --ro -a DISK run` (goal: ratio <= 1.5)
  2. `rescue inspect` on a 127 GiB dynamic VHD vs a 2 GiB one with the same content (goal <= 1.1)
  3. `rescue fix no-memory --yes` vs one bare launch (goal <= 1.5), vs the same changes made with the
     generic tools a Linux user has today (guestfish + hivexregedit, one guestfish call per article
     step), and on 127 GiB vs 2 GiB.
  4. `rescue diagnose` (the triage of every scenario) vs one bare launch (goal <= 1.5).
  5. Fleet mode: `rescue diagnose --each` over 10 disks in one launch vs one single-disk triage
     (goal <= 3x), the same over 10 disks of 127 GiB (per-disk cost must not grow with size), and
     with `--jobs 2` (the speed-up on this machine).
The single-disk commands run in BENCH_RUNS interleaved rounds (default 3): a bare launch and each
command once per round, each ratio taken within a round and the median shown, so a machine shared
with other work still gives comparable figures. The load average before and after is printed.
Not a test: it prints a table. Runs with TCG as the tests do (set RESCUE_ACCEL to change that).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
os.environ.setdefault("RESCUE_ACCEL", "tcg")
RESCUE = str(Path(sys.executable).with_name("rescue"))
GIB = 1 << 30

# The generic way, article step by article step: each step is one guestfish run (one appliance
# launch) that downloads a hive, edits it with hivexregedit/hivexget on the host, and uploads it.
BADMEM = "{5189b25c-5558-4bf2-bca4-289b11bd29e2}"
EMSSET = "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}"
BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
REG_HEAD = "Windows Registry Editor Version 5.00\n\n"


def generic_steps(work: Path):
    """The article's steps as a Linux user does them today, for the Gen2 layout: (title, callable)
    pairs; each callable runs guestfish once (one appliance launch) with hivexregedit/hivexget on
    the host between download and upload (guestfish's `!cmd`)."""
    esp, c = "/dev/sda1", "/dev/sda3"
    bcd, system = "/EFI/Microsoft/Boot/BCD", "/Windows/System32/config/SYSTEM"
    b, s = work / "BCD", work / "SYSTEM"

    def merge(dev, path, local, prefix, reg_text, name):
        def run(disk):
            reg = work / name
            reg.write_text(REG_HEAD + reg_text)
            script = (f"run\nmount {dev} /\ndownload {path} {local}\n"
                      f"!hivexregedit --merge --prefix '{prefix}' {local} {reg}\nupload {local} {path}\n")
            return guestfish(disk, script)
        return run

    def find_default(disk):
        t = guestfish(disk, f"run\nmount {esp} /\ndownload {bcd} {b}\n", ro=True)
        default = subprocess.run(["hivexget", str(b), f"Objects\\{BOOTMGR}\\Elements\\23000003", "Element"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        state["default"] = default
        return t

    def ems_on(disk):
        return merge(esp, bcd, b, "HKEY_LOCAL_MACHINE\\BCD",
                     f"[HKEY_LOCAL_MACHINE\\BCD\\Objects\\{state['default']}\\Elements\\260000b0]\n"
                     "\"Element\"=hex:01\n", "s5.reg")(disk)

    state: dict = {}
    paging = _hex_multi(["D:\\pagefile.sys 0 0"])
    dumpfile = _hex_sz("%SystemRoot%\\MEMORY.DMP")
    sysp = "HKEY_LOCAL_MACHINE\\SYSTEM"
    bcdp = "HKEY_LOCAL_MACHINE\\BCD"
    return [
        ("3 delete badmemorylist", merge(esp, bcd, b, bcdp,
            f"[-{bcdp}\\Objects\\{BADMEM}\\Elements\\1700000a]\n", "s3.reg")),
        ("4 page file setting (001, 002)", merge(c, system, s, sysp, "".join(
            f"[{sysp}\\ControlSet00{n}\\Control\\Session Manager\\Memory Management]\n"
            f"\"PagingFiles\"=hex(7):{paging}\n\n" for n in (1, 2)), "s4.reg")),
        ("4 delete pagefile.sys", lambda disk: guestfish(disk, f"run\nmount {c} /\nrm /pagefile.sys\n")),
        ("5 enum: find the loader id", find_default),
        ("5 ems {default} on", ems_on),
        ("5 emssettings port 1, 115200", merge(esp, bcd, b, bcdp,
            f"[{bcdp}\\Objects\\{EMSSET}\\Elements\\15000022]\n\"Element\"=hex:01,00,00,00,00,00,00,00\n\n"
            f"[{bcdp}\\Objects\\{EMSSET}\\Elements\\15000023]\n\"Element\"=hex:00,c2,01,00,00,00,00,00\n", "s5b.reg")),
        ("5c crash dump + NMI (001, 002)", merge(c, system, s, sysp, "".join(
            f"[{sysp}\\ControlSet00{n}\\Control\\CrashControl]\n"
            f"\"CrashDumpEnabled\"=dword:00000001\n\"NMICrashDump\"=dword:00000001\n"
            f"\"DumpFile\"=hex(2):{dumpfile}\n\n" for n in (1, 2)), "s5c.reg")),
    ]


def guestfish(disk: Path, script: str, ro: bool = False) -> float:
    return timed(["guestfish", "--ro" if ro else "--rw", "--format=vpc", "-a", str(disk)], stdin=script)


def _hex_bytes(data: bytes) -> str:
    return ",".join(f"{x:02x}" for x in data)


def _hex_sz(text: str) -> str:
    return _hex_bytes((text + "\0").encode("utf-16-le"))


def _hex_multi(items: list[str]) -> str:
    return _hex_bytes("".join(i + "\0" for i in items).encode("utf-16-le") + b"\0\0")


def timed(argv: list[str], *, stdin: str | None = None, ok=(0,)) -> float:
    t = time.monotonic()
    r = subprocess.run(argv, input=stdin, text=True, capture_output=True)
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return time.monotonic() - t


RUNS = int(os.environ.get("BENCH_RUNS", "3"))     # interleaved rounds (see main)


def _spread(values: list[float]) -> str:
    return "runs " + ", ".join(f"{v:.1f}" for v in values)


def bare_launch(disk: Path) -> float:
    return timed(["guestfish", "--ro", "--format=vpc", "-a", str(disk), "run"])


def sized_copy(raw: Path, size: int, out: Path) -> Path:
    """The sample's content on a disk of `size` bytes: grow the sparse raw, move the GPT backup
    header to the new end (sgdisk -e), convert to a dynamic VHD (sparse: unused space costs nothing)."""
    tmp = out.with_suffix(".raw")
    subprocess.run(["cp", "--sparse=always", str(raw), str(tmp)], check=True)
    os.chmod(tmp, 0o644)
    os.truncate(tmp, size)
    subprocess.run(["sgdisk", "-e", str(tmp)], check=True, capture_output=True)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
                    str(tmp), str(out)], check=True)
    tmp.unlink()
    return out


def _median_ratio(rounds: list[dict[str, float]], name: str, base: str) -> float:
    """The median over rounds of name/base measured in the same round: on a shared machine the load
    changes from minute to minute, and a ratio of two runs made seconds apart cancels most of it."""
    return statistics.median(r[name] / r[base] for r in rounds)


def _fix(disk: Path, work: Path, tag: str) -> float:
    d = work / f"fix-{tag}.vhd"               # each fix on a fresh copy of the broken disk
    shutil.copyfile(disk, d)
    os.sync()                                 # the copy's write-back must not land inside the timing
    try:
        return timed([RESCUE, "fix", "no-memory", str(d), "--yes"])
    finally:
        d.unlink()


def main() -> int:
    from rescue.samples import sample_path

    work = Path(tempfile.mkdtemp(prefix="rescue-bench-"))
    rows: list[tuple[str, float, str]] = []
    load_before = os.getloadavg()[0]
    try:
        raw = sample_path("gen2-broken.raw")
        small = sized_copy(raw, 2 * GIB, work / "small.vhd")
        big = sized_copy(raw, 127 * GIB, work / "big.vhd")
        print(f"disks: 2 GiB VHD file {small.stat().st_size >> 20} MiB, 127 GiB VHD file "
              f"{big.stat().st_size >> 20} MiB (same content)", flush=True)
        # Interleaved rounds: each round runs the bare launch and every rescue command once, so each
        # ratio compares runs made under the same load; the table shows medians over the rounds.
        rounds: list[dict[str, float]] = []
        for i in range(RUNS):
            r = {"bare": bare_launch(small),
                 "inspect": timed([RESCUE, "inspect", str(small)], ok=(0, 1)),
                 "inspect_big": timed([RESCUE, "inspect", str(big)], ok=(0, 1)),
                 "diagnose": timed([RESCUE, "diagnose", str(small)], ok=(0, 1)),
                 "fix": _fix(small, work, f"2-{i}"),
                 "fix_big": _fix(big, work, f"127-{i}")}
            rounds.append(r)
            print(f"round {i + 1}/{RUNS}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)

        def med(name: str) -> float:
            return statistics.median(r[name] for r in rounds)

        def spread(name: str) -> str:
            return _spread([r[name] for r in rounds])

        rows.append((f"bare guestfish launch (2 GiB), median of {RUNS}", med("bare"), spread("bare")))
        rows.append(("rescue inspect (2 GiB)", med("inspect"),
                     f"{_median_ratio(rounds, 'inspect', 'bare'):.2f}x bare (goal <= 1.5)"))
        rows.append(("rescue inspect (127 GiB)", med("inspect_big"),
                     f"{_median_ratio(rounds, 'inspect_big', 'inspect'):.2f}x 2 GiB (goal <= 1.1)"))
        rows.append(("rescue diagnose, every scenario (2 GiB)", med("diagnose"),
                     f"{_median_ratio(rounds, 'diagnose', 'bare'):.2f}x bare (goal <= 1.5)"))
        rows.append(("rescue fix no-memory --yes (2 GiB)", med("fix"),
                     f"{_median_ratio(rounds, 'fix', 'bare'):.2f}x bare (goal <= 1.5); {spread('fix')}"))
        rows.append(("rescue fix no-memory --yes (127 GiB)", med("fix_big"),
                     f"{_median_ratio(rounds, 'fix_big', 'fix'):.2f}x 2 GiB (goal <= 1.1)"))

        # Fleet mode: one round (each run is 10 disks), its own single-disk triage as the base.
        fleet = [small] + [Path(shutil.copyfile(small, work / f"fleet-{i}.vhd")) for i in range(1, 10)]
        bigs = [big] + [Path(shutil.copyfile(big, work / f"fleet-big-{i}.vhd")) for i in range(1, 10)]
        one = timed([RESCUE, "diagnose", str(small)], ok=(0, 1))
        each = timed([RESCUE, "diagnose", "--each", *map(str, fleet), "--jobs", "1"], ok=(0, 1))
        each_big = timed([RESCUE, "diagnose", "--each", *map(str, bigs), "--jobs", "1"], ok=(0, 1))
        jobs2 = timed([RESCUE, "diagnose", "--each", *map(str, fleet), "--jobs", "2"], ok=(0, 1))
        rows.append(("rescue diagnose --each, 10 disks (2 GiB), one launch", each,
                     f"{each / one:.2f}x one triage of {one:.1f} s (goal <= 3); "
                     f"{(each - one) / 9:.1f} s a disk after the first"))
        rows.append(("rescue diagnose --each, 10 disks of 127 GiB", each_big,
                     f"{each_big / each:.2f}x the 2 GiB disks (goal <= 1.1)"))
        rows.append(("rescue diagnose --each, 10 disks, --jobs 2", jobs2, f"{each / jobs2:.2f}x faster than --jobs 1"))
        for f in fleet[1:] + bigs[1:]:
            f.unlink()

        gdisk = work / "generic.vhd"
        shutil.copyfile(small, gdisk)
        total = 0.0
        steps = generic_steps(work)
        for _title, step in steps:
            total += step(gdisk)
        rows.append((f"generic tools: {len(steps)} guestfish runs + hivexregedit", total,
                     f"rescue fix is {total / med('fix'):.1f}x faster"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measurement'.ljust(width)}  seconds  ratio   (load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores)")
    for name, secs, note in rows:
        print(f"{name.ljust(width)}  {secs:7.1f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
