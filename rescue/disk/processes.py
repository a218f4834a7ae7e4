"""The appliance's qemu as a host process: finding it, recording it, reaping it when its rescue
process died. No libguestfs calls here (rescue.disk.appliance and the in-use check use these)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from rescue.disk import accel as accel_mod


def descendant_qemu_pids(root_pid: int) -> list[int]:
    """qemu processes started (directly or through a helper) by `root_pid`."""
    children: dict[int, list[int]] = {}
    comms: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1: stat.rfind(")")]
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        comms[int(entry)] = comm
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if comms.get(child, "").startswith("qemu"):
                out.append(child)
            todo.append(child)
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def runs_dir() -> Path:
    return accel_mod.cache_dir() / "appliances"


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid it
    names one process for good, since pids are reused (pid_max is often 32768)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        return int(stat[stat.rfind(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def reap_orphans() -> int:
    """Kill appliances left by a rescue process that died (SIGKILL, OOM, lost SSH session).

    libguestfs' recovery process normally does this, but a killed parent has been seen leaving qemu
    alive and holding the image's lock; the next run must not find the image "in use" because of
    our own orphan. Each session records its qemu pid; a record whose owner is gone is reaped.
    Start times recorded with the pids make sure a reused pid is never mistaken for the owner
    (which would keep an orphan) or for the qemu (which would kill someone else's process).
    """
    reaped = 0
    d = runs_dir()
    if not d.is_dir():
        return 0
    for rec in d.glob("*.json"):
        try:
            data = json.loads(rec.read_text())
            owner, qemu = int(data["owner"]), int(data["qemu"])
        except (OSError, ValueError, KeyError):
            rec.unlink(missing_ok=True)
            continue
        if pid_alive(owner) and data.get("owner_start") in (None, start_time(owner)):
            continue
        try:
            with open(f"/proc/{qemu}/cmdline", "rb") as fh:
                is_qemu = b"qemu" in fh.read()
        except OSError:
            is_qemu = False
        if is_qemu and data.get("qemu_start") not in (None, start_time(qemu)):
            is_qemu = False                   # the pid now belongs to another qemu: not ours
        if is_qemu:
            try:
                os.kill(qemu, signal.SIGKILL)
                reaped += 1
                for _ in range(50):  # wait for the lock to go away with the process
                    if not pid_alive(qemu):
                        break
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
        rec.unlink(missing_ok=True)
    return reaped


def writers_of(path: str) -> list[tuple[int, str]]:
    """(pid, command name) of every other process holding `path` open for writing: a running VM's
    qemu on a raw image or a block device (qemu's image locks do not stop a shared reader such as
    `qemu-img info`, and qemu opens block devices without O_EXCL), dd, another tool. Read from
    /proc/PID/fd (which file) and /proc/PID/fdinfo (the open flags' access mode)."""
    try:
        want = os.stat(path)
    except OSError:
        return []
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue                     # gone, or not ours to read
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
                if (st.st_dev, st.st_ino, st.st_rdev) != (want.st_dev, want.st_ino, want.st_rdev):
                    continue
                with open(f"/proc/{entry}/fdinfo/{fd}") as fh:
                    flags = next((int(line.split()[1], 8) for line in fh if line.startswith("flags:")), 0)
            except (OSError, ValueError):
                continue
            if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                try:
                    comm = Path(f"/proc/{entry}/comm").read_text().strip()
                except OSError:
                    comm = "?"
                found.append((int(entry), comm))
                break
    return found
