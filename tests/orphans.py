"""An appliance orphaned by a killed rescue run, for tests of the in-use check: a real qemu process
(qemu-io) holding a disk image open read-write, so qemu's image lock is taken, recorded in the
run records (rescue.disk.processes.runs_dir) as owned by a process that is gone."""

from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager
from pathlib import Path

from rescue.disk import processes


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _locked(image: Path, fmt: str) -> bool:
    out = subprocess.run(["qemu-img", "info", "-f", fmt, str(image)], capture_output=True, text=True)
    return out.returncode != 0 and "lock" in out.stderr


@contextmanager
def orphan_holding(image: Path, fmt: str = "vpc", *, owner: int | None = None):
    """Yield the qemu-io process holding `image` (a format whose open qemu-img info sees locked,
    e.g. vpc; qemu does not report a raw image locked this way). `owner`: the recorded rescue
    process (default: one that has exited, i.e. an orphan)."""
    holder = subprocess.Popen(["qemu-io", "-f", fmt, str(image)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Its answer to a command proves the image is open (polling with qemu-img meanwhile could
        # take the lock first and make qemu-io fail to open it).
        holder.stdin.write(b"length\n")
        holder.stdin.flush()
        answer = holder.stdout.readline()
        assert answer.strip(), f"qemu-io could not open {image}: {holder.stderr.read().decode(errors='replace')}"
        assert _locked(image, fmt), "qemu-io holds the image but qemu-img does not see it locked"
        owner = owner if owner is not None else _dead_pid()
        d = processes.runs_dir()
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{owner}-{holder.pid}.json").write_text(json.dumps({
            "owner": owner, "qemu": holder.pid, "owner_start": processes.start_time(owner),
            "qemu_start": processes.start_time(holder.pid), "disks": [str(image)]}))
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
