"""Which accelerator the libguestfs appliance uses, and the remembered verdict of `auto`.

Nested KVM on some hosts (this project's CI among them) lets qemu start but hangs the appliance
kernel forever. `auto` therefore tries KVM with a bounded launch time, falls back to TCG when the
launch does not finish, and records the verdict so the next run does not pay the wait again.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from rescue.errors import UsageError

CHOICES = ("auto", "kvm", "tcg")


def cache_dir() -> Path:
    base = os.environ.get("RESCUE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rescue")
    return Path(base)


def verdict_file() -> Path:
    return cache_dir() / "accel.json"


def requested(cli_value: str | None) -> str:
    value = (cli_value or os.environ.get("RESCUE_ACCEL") or "auto").lower()
    if value not in CHOICES:
        raise UsageError(f"Unknown acceleration {value!r}: use auto, kvm or tcg (--accel or RESCUE_ACCEL).")
    return value


def kvm_usable() -> bool:
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def _host_key() -> str:
    # A new host kernel or a different machine may change the answer: key the verdict by both.
    return f"{platform.node()}|{platform.release()}"


def remembered() -> str | None:
    try:
        data = json.loads(verdict_file().read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(_host_key()) if isinstance(data, dict) else None
    return entry.get("accel") if isinstance(entry, dict) else None


def remember(accel: str, reason: str) -> None:
    path = verdict_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[_host_key()] = {"accel": accel, "reason": reason, "when": int(time.time())}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not break a repair; we just pay the probe again next time


def plan(cli_value: str | None) -> list[str]:
    """The accelerators to try, in order."""
    choice = requested(cli_value)
    if choice == "tcg":
        return ["tcg"]
    if choice == "kvm":
        return ["kvm"]
    if not kvm_usable():
        return ["tcg"]
    if remembered() == "tcg":
        return ["tcg"]
    return ["kvm", "tcg"]


def kvm_timeout() -> float:
    """Seconds a KVM launch may go without any appliance output before it is taken as hung (a
    working one prints every few seconds; nested KVM that hangs prints nothing)."""
    return float(os.environ.get("RESCUE_KVM_TIMEOUT", "45"))


def launch_timeout() -> float:
    """Upper bound for any launch (TCG included, ~15-20 s here) so nothing ever hangs forever."""
    return float(os.environ.get("RESCUE_LAUNCH_TIMEOUT", "600"))


def call_timeout() -> float:
    """Upper bound for one appliance call after the launch. The slowest real calls under TCG (a
    cp or sync of a big hive, ntfsresize of a large volume) take seconds to a minute or two; a call
    still running after this long is hung, and the appliance is stopped rather than waited on."""
    return float(os.environ.get("RESCUE_CALL_TIMEOUT", "900"))
