"""`rescue doctor`: is this host ready to repair a disk, and if not, what to install or set.

For the first minute on a new repair VM. Each check is cheap and read-only except the last, the
one real appliance launch (on a scratch disk, through the same code every command uses), which
`--no-launch` skips. Advice names the packages of the distribution the host runs (from
/etc/os-release), the same table README.md "Install" gives.

The host is *not ready* when any check fails: the CLI then exits 10 (ExitCode.APPLIANCE, "the
libguestfs appliance could not be launched"), after showing every check. Warnings (no KVM, a
remembered TCG verdict, little space) leave it ready.
"""

from __future__ import annotations

import enum
import glob
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ContextManager, Optional

if TYPE_CHECKING:
    from rescue.disk.probe import LaunchResult

from rescue.disk import accel as accel_mod
from rescue.units import MiB, format_bytes

# Hive copies (SOFTWARE can exceed 100 MiB), backups and the expand overlay go to the temporary
# directory; the supermin appliance (~300-600 MiB) is built once into libguestfs' cache directory.
SPACE_FAIL = 512 * MiB
SPACE_WARN = 2048 * MiB


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    id: str           # stable key (README "rescue doctor --json")
    title: str
    status: Status
    detail: str
    advice: str = ""  # what to install or set; empty when nothing is needed


@dataclass(frozen=True)
class Report:
    distribution: str          # os-release ID (debian, ubuntu, rhel, almalinux, azurelinux, sles...)
    checks: tuple = ()
    launch: Optional[LaunchResult] = None     # None when not launched

    @property
    def ready(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    @property
    def failures(self) -> list:
        return [c for c in self.checks if c.status is Status.FAIL]


# --- distributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Packages:
    """Package names of one distribution family for what rescue needs (README "Install")."""

    install: str        # the command prefix
    bindings: str       # guestfs + hivex Python bindings
    tools: str          # libguestfs itself (the appliance) and its tools
    ntfs: str           # NTFS inside the appliance
    qemu_img: str


FAMILIES = {
    "debian": Packages("apt install", "python3-guestfs python3-hivex", "libguestfs-tools",
                       "ntfs-3g", "qemu-utils"),
    "rhel": Packages("dnf install", "python3-libguestfs python3-hivex", "libguestfs guestfs-tools",
                     "libguestfs-winsupport (RHEL/Alma/Rocky; Fedora: ntfs-3g ntfsprogs)", "qemu-img"),
    "azurelinux": Packages("tdnf install", "python3-libguestfs python3-hivex", "libguestfs libguestfs-tools",
                           "ntfs-3g ntfsprogs", "qemu-img"),
    "suse": Packages("zypper install", "python3-libguestfs python3-hivex", "guestfs-tools",
                     "ntfs-3g ntfsprogs", "qemu-tools"),
}


def os_release(path: str = "/etc/os-release") -> dict:
    data = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, sep, value = line.strip().partition("=")
                if sep:
                    data[key] = value.strip().strip('"')
    except OSError:
        pass
    return data


def family(release: dict) -> str:
    ids = [release.get("ID", "")] + release.get("ID_LIKE", "").split()
    for i in ids:
        if i in ("debian", "ubuntu"):
            return "debian"
        if i in ("azurelinux", "mariner"):
            return "azurelinux"
        if i in ("rhel", "fedora", "centos", "almalinux", "rocky"):
            return "rhel"
        if i.startswith("sles") or i.startswith("opensuse") or i == "suse":
            return "suse"
    return "debian"


# --- the checks ------------------------------------------------------------------------------
def check_bindings(pk: Packages) -> Check:
    from rescue.disk.probe import bindings

    b = bindings()
    missing = [n for n, ok in (("guestfs", b.guestfs), ("hivex", b.hivex)) if not ok]
    if not missing:
        return Check("bindings", "guestfs and hivex Python bindings", Status.OK, "both importable")
    return Check("bindings", "guestfs and hivex Python bindings", Status.FAIL,
                 f"not importable: {', '.join(missing)}",
                 f"{pk.install} {pk.bindings}; in a venv, create it with --system-site-packages "
                 "(the bindings exist only for the distribution's python3)")


def check_appliance_files(pk: Packages) -> Check:
    from rescue.disk.probe import appliance_info

    title = "libguestfs appliance present"
    try:
        info = appliance_info()
    except Exception as exc:   # a broken libguestfs install: say so, never a traceback
        return Check("appliance_files", title, Status.FAIL, f"libguestfs cannot be used: {exc}",
                     f"{pk.install} {pk.tools}")
    where = f"libguestfs {info.version}, backend {info.backend}, path {info.path}"
    if info.fixed_appliance:
        return Check("appliance_files", title, Status.OK, f"fixed appliance ({where})")
    if not info.supermin_found:
        return Check("appliance_files", title, Status.FAIL, f"no appliance found ({where})",
                     f"{pk.install} {pk.tools}, or point LIBGUESTFS_PATH at a fixed appliance "
                     "(libguestfs-make-fixed-appliance)")
    # supermin builds the appliance from the host's own kernel, which it must be able to read.
    kernels = sorted(glob.glob("/boot/vmlinuz-*"))
    if not any(os.access(k, os.R_OK) for k in kernels):
        detail = "no kernel in /boot" if not kernels else f"{kernels[-1]} is not readable by this user"
        return Check("appliance_files", title, Status.FAIL, f"{detail} ({where})",
                     "run rescue as root, or `sudo chmod 0644 /boot/vmlinuz-*` (Ubuntu keeps kernels 0600), "
                     "or set SUPERMIN_KERNEL to a readable kernel")
    return Check("appliance_files", title, Status.OK, f"supermin appliance, built on first launch ({where})")


def check_acceleration() -> Check:
    title = "KVM usable (else TCG, software emulation)"
    try:
        choice = accel_mod.requested(None)
    except Exception as exc:
        return Check("kvm", title, Status.FAIL, str(exc), "unset RESCUE_ACCEL or set it to auto, kvm or tcg")
    forced = "force_tcg" in os.environ.get("LIBGUESTFS_BACKEND_SETTINGS", "")
    if accel_mod.kvm_usable():
        if choice == "tcg" or forced:
            how = "RESCUE_ACCEL=tcg" if choice == "tcg" else "LIBGUESTFS_BACKEND_SETTINGS=force_tcg"
            return Check("kvm", title, Status.OK, f"/dev/kvm is usable, but {how} pins TCG")
        return Check("kvm", title, Status.OK, "/dev/kvm is usable")
    slow = "each appliance launch takes 15-60 s under TCG instead of 3-5 s"
    if choice == "kvm":
        status = Status.FAIL
    else:
        status = Status.WARN
    if not os.path.exists("/dev/kvm"):
        return Check("kvm", title, status, f"no /dev/kvm: {slow}",
                     "use a VM size with nested virtualization (Azure: Dv3/Ev3 or newer) for speed; "
                     "TCG works, only slower" + ("; --accel kvm cannot work here" if status is Status.FAIL else ""))
    return Check("kvm", title, status, f"/dev/kvm is not readable and writable by this user: {slow}",
                 "run as root, or `sudo usermod -aG kvm $USER` and log in again")


def check_verdict() -> Check:
    title = "remembered acceleration verdict"
    path = accel_mod.verdict_file()
    got = accel_mod.remembered()
    if got is None:
        return Check("accel_verdict", title, Status.OK,
                     f"none yet: the first `--accel auto` launch probes KVM and remembers the result in {path}")
    if got == "tcg" and accel_mod.kvm_usable():
        return Check("accel_verdict", title, Status.WARN,
                     f"auto uses TCG on this host: an earlier KVM launch hung or failed ({path})",
                     f"after fixing KVM, delete {path} so auto tries it again")
    return Check("accel_verdict", title, Status.OK, f"auto uses {got.upper()} on this host ({path})")


def check_program(cid: str, program: str, title: str, advice: str, *, required: bool = True) -> Check:
    found = shutil.which(program)
    if found:
        return Check(cid, title, Status.OK, found)
    return Check(cid, title, Status.FAIL if required else Status.WARN, f"{program} not found on PATH", advice)


def check_space(label: str, cid: str, path: str) -> Check:
    title = f"free space in {label}"
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return Check(cid, title, Status.FAIL, f"{path}: {exc.strerror}", f"create {path} or set TMPDIR")
    free = st.f_bavail * st.f_frsize
    detail = f"{path}: {format_bytes(free)} free"
    if free < SPACE_FAIL:
        return Check(cid, title, Status.FAIL, detail,
                     f"free at least {format_bytes(SPACE_WARN, exact=True)} there, or point TMPDIR (and LIBGUESTFS_CACHEDIR) "
                     "at a bigger filesystem")
    if free < SPACE_WARN:
        return Check(cid, title, Status.WARN, detail, f"{format_bytes(SPACE_WARN, exact=True)} or more is comfortable")
    return Check(cid, title, Status.OK, detail)


def check_launch(result: LaunchResult | None) -> Check:
    title = "appliance launches (one real launch)"
    if result is None:
        return Check("appliance_launch", title, Status.SKIPPED, "skipped (--no-launch)")
    if not result.ok:
        return Check("appliance_launch", title, Status.FAIL, result.error,
                     "run `libguestfs-test-tool` for the full log")
    return Check("appliance_launch", title, Status.OK,
                 f"launched with {(result.accel or '?').upper()} in {result.seconds:.1f} s")


def check_ntfs(result: LaunchResult | None, pk: Packages) -> Check:
    title = "NTFS support inside the appliance"
    if result is None or not result.ok:
        return Check("appliance_ntfs", title, Status.SKIPPED, "needs a launched appliance")
    missing = [f for f, ok in sorted(result.features.items()) if not ok]
    if not missing:
        return Check("appliance_ntfs", title, Status.OK, "ntfs-3g and ntfsprogs available")
    return Check("appliance_ntfs", title, Status.FAIL, f"missing feature group(s): {', '.join(missing)}",
                 f"{pk.install} {pk.ntfs}, then remove libguestfs' cached appliance (/var/tmp/.guestfs-*) "
                 "so it is rebuilt with it")


def diagnose(*, launch: bool = True, accel: str | None = None,
             notify: Callable[[str], None] | None = None,
             progress: Callable[[str], ContextManager] | None = None) -> Report:
    """Run every check; at most one appliance launch (none with launch=False, or when an earlier
    check already shows it cannot work). `progress(label)` wraps the launch (a spinner)."""
    release = os_release()
    pk = FAMILIES[family(release)]
    checks = [check_bindings(pk)]
    can_launch = checks[0].status is Status.OK
    if can_launch:
        checks.append(check_appliance_files(pk))
        can_launch = checks[-1].status is Status.OK
    checks += [
        check_acceleration(),
        check_verdict(),
        check_program("qemu_img", "qemu-img", "qemu-img (image formats, expand)", f"{pk.install} {pk.qemu_img}"),
        # supermin copies the host's ntfs-3g into the appliance; a fixed appliance brings its own.
        check_program("ntfs3g_host", "ntfs-3g", "ntfs-3g on the host", f"{pk.install} {pk.ntfs}",
                      required=False),
        check_space("the temporary directory", "space_tmp", tempfile.gettempdir()),
    ]
    cache = os.environ.get("LIBGUESTFS_CACHEDIR") or os.environ.get("TMPDIR") or "/var/tmp"
    try:
        same_fs = os.stat(cache).st_dev == os.stat(tempfile.gettempdir()).st_dev
    except OSError:
        same_fs = False
    if not same_fs:
        checks.append(check_space("libguestfs' cache directory", "space_cache", cache))
    result = None
    if launch and can_launch:
        from rescue.disk import probe

        if progress is not None:
            with progress("Launching the libguestfs appliance on a scratch disk"):
                result = probe.launch(accel, notify)
        else:
            result = probe.launch(accel, notify)
    checks.append(check_launch(result) if launch and can_launch else
                  Check("appliance_launch", "appliance launches (one real launch)", Status.SKIPPED,
                        "skipped (--no-launch)" if not launch else "skipped: fix the failures above first"))
    checks.append(check_ntfs(result, pk))
    return Report(distribution=release.get("ID", "unknown"), checks=tuple(checks), launch=result)
