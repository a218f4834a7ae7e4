"""The libguestfs appliance's lifecycle: handle, launch (KVM→TCG fallback, bounded), the call
watchdog, the error boundary, the run record the orphan reaper reads, and shutdown.

This module and the others of rescue.disk are the only code that talks to libguestfs (ground rule
5). Every call after the launch goes through `WatchedHandle`, which bounds its time and turns the
binding's RuntimeError into a DiskError (DiskNotFoundError for ENOENT), so nothing above this
package ever sees a libguestfs exception. Only this module imports guestfs; the others reach the
appliance through `Appliance.g`.
"""

from __future__ import annotations

import errno as errno_mod
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Union

try:
    import guestfs
except ImportError:   # a distribution package (python3-guestfs), never from pip: say so, exit 10
    from rescue.errors import ApplianceError

    raise ApplianceError("The libguestfs Python bindings are not installed for this Python.",
                         hint="Install python3-guestfs (README \"Install\" names the package of each "
                              "distribution); in a venv, create it with --system-site-packages. "
                              "`rescue doctor` checks the rest.") from None

from rescue.disk import accel as accel_mod
from rescue.disk.formats import DiskImage
from rescue.disk.processes import descendant_qemu_pids, reap_orphans, runs_dir, start_time
from rescue.errors import ApplianceError, DiskError, DiskNotFoundError, InputError, RescueError, UnsafeStateError


# The Python binding raises a bare RuntimeError carrying guestfs_last_error's text and offers no
# last_errno(); the daemon ends that text with strerror(errno) ("pread: /d0p3/x: No such file or
# directory"), so the errno is read back from it.
_ERRNO_OF = {os.strerror(code): code for code in errno_mod.errorcode}


def disk_error(operation: str, exc: RuntimeError) -> DiskError:
    """The typed error for a failed libguestfs call. The message is libguestfs' own last line:
    callers that add context quote it."""
    text = str(exc).strip()
    detail = text.splitlines()[-1] if text else f"{operation} failed"
    code = _ERRNO_OF.get(detail.rsplit(": ", 1)[-1])
    cls = DiskNotFoundError if code == errno_mod.ENOENT else DiskError
    return cls(detail, operation=operation, errno=code)


class WatchedHandle:
    """The launched guestfs handle with every call timed and its errors translated.

    A call still running after `limit` seconds gets the appliance's qemu killed (which makes the
    call return) and raises ApplianceError, so a hung appliance ends the command with a message
    instead of waiting forever. libguestfs releases the GIL during a call, so the watching thread
    runs meanwhile. Any other failure becomes a DiskError (no appliance call: the text is enough)."""

    def __init__(self, handle: guestfs.GuestFS, limit: float, kill: Callable[[], None]):
        self.handle, self.limit, self._kill = handle, limit, kill
        self._since: float | None = None
        self._name = ""
        self.fired = False
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def __getattr__(self, name: str):
        attr = getattr(self.handle, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._since, self._name = time.monotonic(), name
            try:
                return attr(*args, **kwargs)
            except RuntimeError as exc:
                if self.fired:
                    raise ApplianceError(
                        f"The libguestfs appliance stopped responding: `{self._name}` ran for more than "
                        f"{int(self.limit)} s, so it was stopped.",
                        hint="Run the command again (a backup made so far is listed by `rescue undo`); "
                             "RESCUE_CALL_TIMEOUT raises the limit.") from None
                raise disk_error(name, exc) from None
            finally:
                self._since = None
        return call

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            since = self._since
            if since is not None and time.monotonic() - since > self.limit:
                self.fired = True
                self._kill()
                return

    def stop(self) -> None:
        self._stop.set()


# A libguestfs handle: raw (while launching and closing) or watched (every call once launched).
# The bindings are untyped, so the raw handle is Any to the type checker.
Handle = Union["guestfs.GuestFS", WatchedHandle]


class Appliance:
    """One libguestfs appliance over the given disk images, launched once (ground rule 4)."""

    def __init__(self, images: Iterable[DiskImage], *, write: bool = False, accel: str | None = None,
                 notify: Callable[[str], None] | None = None):
        self.images = list(images)
        if not self.images:
            raise InputError("No disk given.")
        self.write = write
        self.accel_choice = accel
        self.notify = notify or (lambda msg: None)
        self.accel_used: str | None = None
        self.launch_seconds: float = 0.0
        self._g: WatchedHandle | None = None
        self._record: Path | None = None

    @property
    def launched(self) -> bool:
        return self._g is not None

    @property
    def g(self) -> WatchedHandle:
        """The handle (its calls timed and their errors translated: WatchedHandle)."""
        if self._g is None:
            raise RuntimeError("appliance used before launch()")     # programming error
        return self._g

    # --- launch ---------------------------------------------------------------------------------
    def new_handle(self, accel: str) -> guestfs.GuestFS:
        g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
        # The environment may carry force_tcg/force_kvm (tests, CI); the explicit choice wins. KVM
        # is forced too: libguestfs' default `accel=kvm:tcg` would let qemu fall back to TCG
        # silently while we believe (and remember) that KVM works.
        settings = [s for s in (g.get_backend_settings() or []) if s not in ("force_tcg", "force_kvm")]
        settings.append("force_tcg" if accel == "tcg" else "force_kvm")
        g.set_backend_settings(settings)
        # Read-only drives are throw-away overlays: nothing to flush at shutdown.
        g.set_autosync(self.write)
        for img in self.images:
            file, fmt = img.open_args
            opts = {"format": fmt, "readonly": not self.write}
            if img.is_block_device and not img.staging:
                opts["cachemode"] = "unsafe" if not self.write else "writeback"
            try:
                g.add_drive_opts(file, **opts)
            except RuntimeError as exc:
                raise InputError(f"{img.path} cannot be added: {exc}") from None
        return g

    def launch_with_timeout(self, g: guestfs.GuestFS, timeout: float, *, stall: float | None = None) -> None:
        """g.launch() with a watchdog: a launch that has not finished by `timeout`, or (with `stall`)
        that has printed nothing for `stall` seconds, gets its qemu killed, which makes launch()
        return with an error, reported as TimeoutError.

        Progress is the appliance's console output (libguestfs EVENT_APPLIANCE, delivered without
        verbose mode: qemu, supermin, /init, udev; the longest silence in a TCG launch here is the
        kernel boot, ~5 s). A hung nested-KVM kernel prints nothing, while a slow but working KVM
        (emulated SVM inside the rescue image: ~60 s launches) keeps printing.

        The launch runs in the main thread on purpose: libguestfs keeps its error handler per
        thread, and the Python binding silences it only in the creating thread. Ctrl-C reaches qemu
        too (same process group), so an interrupted launch returns promptly and leaves no qemu.
        """
        fired = threading.Event()
        done = threading.Event()
        started = last = time.monotonic()

        def progress(_event, _handle, _buf, _array) -> None:
            nonlocal last
            last = time.monotonic()

        def watchdog() -> None:
            while not done.wait(0.5):
                now = time.monotonic()
                if now - started > timeout or (stall is not None and now - last > stall):
                    fired.set()
                    self.kill_qemu()
                    return

        handle = g.set_event_callback(progress, guestfs.EVENT_APPLIANCE) if stall is not None else None
        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        try:
            g.launch()
        except RuntimeError:
            if fired.is_set():
                raise TimeoutError from None
            raise
        finally:
            done.set()
            if handle is not None:
                g.delete_event_callback(handle)
        if fired.is_set():
            raise TimeoutError

    def kill_qemu(self) -> None:
        for pid in descendant_qemu_pids(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def launch(self) -> None:
        reap_orphans()
        attempts = accel_mod.plan(self.accel_choice)
        started = time.monotonic()
        for i, accel in enumerate(attempts):
            g = self.new_handle(accel)
            last = i == len(attempts) - 1
            try:
                # A KVM try that may fall back is cut short when it stops making progress; the last
                # try only by the overall bound.
                self.launch_with_timeout(g, accel_mod.launch_timeout(),
                                         stall=None if last else accel_mod.kvm_timeout())
            except TimeoutError:
                self.close_handle(g)
                if last:
                    raise ApplianceError(
                        f"The libguestfs appliance did not start within {int(accel_mod.launch_timeout())} s "
                        f"({accel}).",
                        hint="Try --accel tcg, or check `libguestfs-test-tool`; RESCUE_LAUNCH_TIMEOUT "
                             "raises the limit.") from None
                why = f"KVM launch made no progress for {int(accel_mod.kvm_timeout())} s"
            except KeyboardInterrupt:
                self.kill_qemu()
                self.close_handle(g)
                raise
            except RuntimeError as exc:
                self.close_handle(g)
                err = self._launch_error(exc)
                if last or isinstance(err, UnsafeStateError):
                    raise err from None
                why = "KVM launch failed (qemu could not run the appliance with KVM)"
            else:
                self._g = WatchedHandle(g, accel_mod.call_timeout(), self.kill_qemu)
                self.accel_used = accel
                if accel == "kvm" and len(attempts) > 1:
                    accel_mod.remember("kvm", "kvm launch finished")
                break
            # Only `auto` gets here: fall back to TCG, say so once, remember the verdict.
            accel_mod.remember("tcg", why)
            self.notify(f"{why}; retrying with TCG (software emulation, slower). "
                        f"Remembered in {accel_mod.verdict_file()}.")
        self.launch_seconds = time.monotonic() - started
        self._write_record()
        counter = os.environ.get("RESCUE_LAUNCH_LOG")
        if counter:
            # Test hook: one line per launch, so tests can prove "one appliance launch per command".
            with open(counter, "a") as fh:
                fh.write(f"{os.getpid()} {self.accel_used} {self.launch_seconds:.1f}\n")

    @staticmethod
    def _launch_error(exc: RuntimeError) -> RescueError:
        text = str(exc)
        if "lock" in text.lower():
            return UnsafeStateError("A disk is in use by another process (a running VM or another rescue command).",
                                    hint="Stop it first; nothing was written.")
        return ApplianceError(f"The libguestfs appliance failed to start: {text.splitlines()[0] if text else exc}",
                              hint="Run `libguestfs-test-tool` to see why.")

    def _write_record(self) -> None:
        """Record this run's qemu for rescue.disk.processes.reap_orphans (a later run kills it if
        this process dies without shutting it down)."""
        try:
            qemu = self.g.get_pid()
            d = runs_dir()
            d.mkdir(parents=True, exist_ok=True)
            self._record = d / f"{os.getpid()}-{qemu}.json"
            self._record.write_text(json.dumps({"owner": os.getpid(), "qemu": qemu,
                                                "owner_start": start_time(os.getpid()),
                                                "qemu_start": start_time(qemu),
                                                "disks": [i.path for i in self.images]}))
        except (DiskError, OSError):
            self._record = None

    # --- shutdown -------------------------------------------------------------------------------
    @staticmethod
    def close_handle(g: Handle) -> None:
        """Shut down and close a raw or watched handle, ignoring its errors (it is going away)."""
        try:
            g.shutdown()
        except (RuntimeError, RescueError):
            pass
        try:
            g.close()
        except (RuntimeError, RescueError):
            pass

    def close(self) -> None:
        if self._g is None:
            return
        g, self._g = self._g, None
        # shutdown() unmounts everything and syncs before it stops the appliance (autosync, set in
        # new_handle for write sessions): no umount_all + sync of our own (~0.4 s under TCG). It is
        # timed like any call: a hung shutdown gets qemu killed.
        self.close_handle(g)
        g.stop()
        if self._record:
            self._record.unlink(missing_ok=True)

    def sync(self) -> None:
        """Flush every write to the disk images (~0.15 s under TCG)."""
        self.g.sync()


def unlaunched_settings() -> dict:
    """libguestfs' own settings (version, backend, appliance path, cache dir), read from a handle
    that is never launched (`rescue doctor`)."""
    g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
    try:
        v = g.version()
        return {"version": f"{v['major']}.{v['minor']}.{v['release']}{v.get('extra', '')}",
                "backend": g.get_backend(), "path": g.get_path() or "", "cachedir": g.get_cachedir() or ""}
    finally:
        g.close()
