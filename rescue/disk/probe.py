"""Can this host run the libguestfs appliance? One real launch on a scratch disk, for `rescue doctor`.

The launch goes through `DiskSession`, the same code every command uses: the same acceleration plan
(`--accel`/RESCUE_ACCEL, the remembered verdict, the KVM-hang fallback), the same timeouts and the
same error messages, so what the probe says is what the next `rescue inspect` will do. The scratch
disk is a 1 MiB sparse raw file in the temporary directory, opened read-only and removed after.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.disk.session import DiskSession

SCRATCH_BYTES = 1 << 20
# libguestfs feature groups rescue relies on inside the appliance (guestfs_available(3)): NTFS
# through ntfs-3g and ntfsprogs (ntfsresize, ntfsfix for `expand`).
FEATURES = ("ntfs3g", "ntfsprogs")


@dataclass(frozen=True)
class BindingInfo:
    """The Python bindings rescue needs, found without importing them."""

    guestfs: bool
    hivex: bool


@dataclass(frozen=True)
class ApplianceInfo:
    """Where libguestfs looks for its appliance and what it would launch with (no launch)."""

    version: str
    backend: str
    path: str                 # LIBGUESTFS_PATH or the built-in search path
    cachedir: str             # where the supermin appliance is built and cached
    fixed_appliance: bool     # `path` holds a prebuilt (fixed) appliance: kernel, initrd, root
    supermin_found: bool      # `path` holds supermin.d (Debian/Ubuntu/Fedora packaging)


@dataclass(frozen=True)
class LaunchResult:
    ok: bool
    accel: str | None         # "kvm" or "tcg" when ok
    seconds: float
    error: str                # the one sentence (with its hint) when not ok
    exit_code: int            # the exit code the error would give a command (0 when ok)
    features: dict            # feature group -> available inside the appliance (empty when not ok)


def bindings() -> BindingInfo:
    return BindingInfo(guestfs=importlib.util.find_spec("guestfs") is not None,
                       hivex=importlib.util.find_spec("hivex") is not None)


def appliance_info() -> ApplianceInfo:
    """libguestfs' own settings, read from a handle that is never launched."""
    from rescue.disk.appliance import unlaunched_settings

    v = unlaunched_settings()
    dirs = [d for d in v["path"].split(":") if d]
    fixed = any(all(os.path.exists(os.path.join(d, f)) for f in ("kernel", "initrd", "root")) for d in dirs)
    supermin = any(os.path.isdir(os.path.join(d, "supermin.d")) for d in dirs)
    return ApplianceInfo(version=v["version"], backend=v["backend"], path=v["path"], cachedir=v["cachedir"],
                         fixed_appliance=fixed, supermin_found=supermin)


def launch(accel: str | None = None, notify: Callable[[str], None] | None = None) -> LaunchResult:
    """Launch the appliance once on a scratch disk and ask it which feature groups it has."""
    from rescue.disk.formats import detect
    from rescue.disk.session import DiskSession

    fd, scratch = tempfile.mkstemp(prefix="rescue-doctor-", suffix=".raw")
    started = time.monotonic()
    try:
        os.ftruncate(fd, SCRATCH_BYTES)
        os.close(fd)
        session = DiskSession([detect(scratch, "raw")], write=False, accel=accel, notify=notify)
        try:
            session.launch()
            features = {f: _available(session, f) for f in FEATURES}
            return LaunchResult(True, session.accel_used, time.monotonic() - started, "", 0, features)
        finally:
            session.close()
    except RescueError as exc:
        return LaunchResult(False, None, time.monotonic() - started, str(exc), exc.exit_code, {})
    finally:
        try:
            os.unlink(scratch)
        except OSError:
            pass


def _available(session: DiskSession, group: str) -> bool:
    try:
        return bool(session.g.feature_available([group]))
    except (RuntimeError, RescueError):
        return False
