"""The one module that talks to libguestfs (ground rule 5).

A `DiskSession` opens one or more disks (OS disk plus data disks) in ONE appliance (ground rule 4),
read-only unless a fix command asks for writes. Everything above this layer works with the typed
records here, user-facing disk paths and 1-based partition numbers, never with the appliance's
/dev/sdX names, which mean nothing to a user whose disk is /dev/sdc on the host.

Volumes are mounted on demand under /d<disk>p<partition> inside the appliance; file paths passed to
the file methods are appliance paths below such a mount point, resolved case-insensitively as
Windows would.

Under TCG every appliance call has a price, and it is set mostly by what guestfsd does, not by the
bytes moved: a call that runs a program in the appliance (blkid, mount, find, blockdev, list_devices'
udev wait) or streams a file (download/upload/find0/checksums_out) costs 70-250 ms, a plain
syscall-sized call (pread, write, ls, lstatns) 2-35 ms, a sync ~0.15 s. The methods below pick the
cheap calls; the numbers in their comments are from this machine (2 cores, TCG).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import guestfs

from rescue.disk import accel as accel_mod
from rescue.disk.formats import DiskImage
from rescue.disk.processes import descendant_qemu_pids, reap_orphans, runs_dir, start_time
from rescue.disk.records import DiskInfo, Partition, TreeEntry, VolumeUsage
from rescue.errors import ApplianceError, InputError, RescueError, UnsafeStateError

# Re-exported: callers import the records and the reaper from here.
__all__ = ["DiskSession", "DiskInfo", "Partition", "TreeEntry", "VolumeUsage", "reap_orphans",
           "HIBERNATION_ADVICE"]

ESP_TYPE_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
MSR_TYPE_GUID = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
BASIC_DATA_GUID = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
WINRE_TYPE_GUID = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"

# Exit codes of `ntfs-3g.probe` (ntfs-3g.probe(8), EXIT CODES), which guestfs ntfs_3g_probe returns.
NTFS_PROBE_STATES = {
    0: "ok", 11: "syntax error", 12: "not NTFS", 13: "corrupt", 14: "hibernated",
    15: "unclean", 16: "locked", 17: "raid", 18: "unknown reason", 19: "no privilege",
    20: "out of memory", 21: "fuse error", 22: "insecure",
}

HIBERNATION_ADVICE = (
    "Windows was hibernated or shut down with Fast Startup, so its NTFS holds unsaved state: writing "
    "now would corrupt it. Boot the VM to Windows and shut it down fully (`shutdown /s /t 0`, or "
    "disable Fast Startup: `powercfg /h off`), or, if it cannot boot, accept losing the hibernated "
    "session and run `ntfsfix`/remove hiberfil.sys yourself; rescue never deletes it silently. Nothing was written."
)


class _WatchedHandle:
    """The launched guestfs handle with every call timed: a call still running after `limit`
    seconds gets the appliance's qemu killed (which makes the call return) and raises
    ApplianceError, so a hung appliance ends the command with a message instead of waiting forever.
    libguestfs releases the GIL during a call, so the watching thread runs meanwhile."""

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
            except RuntimeError:
                if self.fired:
                    raise ApplianceError(
                        f"The libguestfs appliance stopped responding: `{self._name}` ran for more than "
                        f"{int(self.limit)} s, so it was stopped.",
                        hint="Run the command again (a backup made so far is listed by `rescue undo`); "
                             "RESCUE_CALL_TIMEOUT raises the limit.") from None
                raise
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


class DiskSession:
    """One libguestfs appliance over the given disks. Use as a context manager."""

    def __init__(self, images: Iterable[DiskImage], *, write: bool = False, accel: str | None = None,
                 notify: Callable[[str], None] | None = None):
        self.images = list(images)
        self._ls_cache: dict[str, dict[str, str] | None] = {}   # resolve(): directory listings
        self._probes: dict[tuple[str, bool], str] = {}                 # ntfs_state() verdicts
        if not self.images:
            raise InputError("No disk given.")
        self.write = write
        self.accel_choice = accel
        self.notify = notify or (lambda msg: None)
        self.accel_used: str | None = None
        self.launch_seconds: float = 0.0
        self._g: _WatchedHandle | None = None
        self._mounts: dict[str, str] = {}     # partition key -> mount point
        self._mount_rw: dict[str, bool] = {}
        self._disks: list[DiskInfo] | None = None
        self._record: Path | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def _new_handle(self, accel: str) -> guestfs.GuestFS:
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

    def _launch_with_timeout(self, g: guestfs.GuestFS, timeout: float, *, stall: float | None = None) -> None:
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
                    self._kill_qemu()
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

    def _kill_qemu(self) -> None:
        for pid in descendant_qemu_pids(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def launch(self) -> "DiskSession":
        reap_orphans()
        attempts = accel_mod.plan(self.accel_choice)
        started = time.monotonic()
        for i, accel in enumerate(attempts):
            g = self._new_handle(accel)
            last = i == len(attempts) - 1
            try:
                # A KVM try that may fall back is cut short when it stops making progress; the last
                # try only by the overall bound.
                self._launch_with_timeout(g, accel_mod.launch_timeout(),
                                          stall=None if last else accel_mod.kvm_timeout())
            except TimeoutError:
                self._close_handle(g)
                if last:
                    raise ApplianceError(
                        f"The libguestfs appliance did not start within {int(accel_mod.launch_timeout())} s "
                        f"({accel}).",
                        hint="Try --accel tcg, or check `libguestfs-test-tool`; RESCUE_LAUNCH_TIMEOUT "
                             "raises the limit.") from None
                why = f"KVM launch made no progress for {int(accel_mod.kvm_timeout())} s"
            except KeyboardInterrupt:
                self._kill_qemu()
                self._close_handle(g)
                raise
            except RuntimeError as exc:
                self._close_handle(g)
                err = self._launch_error(exc)
                if last or isinstance(err, UnsafeStateError):
                    raise err from None
                why = "KVM launch failed (qemu could not run the appliance with KVM)"
            else:
                self._g = _WatchedHandle(g, accel_mod.call_timeout(), self._kill_qemu)
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
        return self

    def _launch_error(self, exc: RuntimeError) -> RescueError:
        text = str(exc)
        if "lock" in text.lower():
            return UnsafeStateError("A disk is in use by another process (a running VM or another rescue command).",
                                    hint="Stop it first; nothing was written.")
        return ApplianceError(f"The libguestfs appliance failed to start: {text.splitlines()[0] if text else exc}",
                              hint="Run `libguestfs-test-tool` to see why.")

    def _write_record(self) -> None:
        try:
            qemu = self.g.get_pid()
            d = runs_dir()
            d.mkdir(parents=True, exist_ok=True)
            self._record = d / f"{os.getpid()}-{qemu}.json"
            self._record.write_text(json.dumps({"owner": os.getpid(), "qemu": qemu,
                                                "owner_start": start_time(os.getpid()),
                                                "qemu_start": start_time(qemu),
                                                "disks": [i.path for i in self.images]}))
        except (RuntimeError, OSError):
            self._record = None

    def _close_handle(self, g) -> None:
        try:
            g.shutdown()
        except (RuntimeError, ApplianceError):
            pass
        try:
            g.close()
        except (RuntimeError, ApplianceError):
            pass

    def close(self) -> None:
        if self._g is None:
            return
        g, self._g = self._g, None
        # shutdown() unmounts everything and syncs before it stops the appliance (autosync, set in
        # _new_handle for write sessions): no umount_all + sync of our own (~0.4 s under TCG). It is
        # timed like any call: a hung shutdown gets qemu killed.
        self._close_handle(g)
        g.stop()
        if self._record:
            self._record.unlink(missing_ok=True)

    def __enter__(self) -> "DiskSession":
        if self._g is None:
            self.launch()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def g(self) -> guestfs.GuestFS:
        """The handle (its calls timed: _WatchedHandle)."""
        if self._g is None:
            raise RuntimeError("DiskSession used before launch()")
        return self._g

    # --- disks and partitions ---------------------------------------------------------------
    def disks(self) -> list[DiskInfo]:
        """Partition tables of every attached disk, read once per session.

        The table is parsed on the host from one read of the first sectors (rescue.disk.ptable); the
        appliance is asked only for what a table cannot say (filesystem type and label: one blkid
        per partition). parted is used only for layouts the parser leaves to it (logical partitions).
        """
        if self._disks is not None:
            return self._disks
        from rescue.disk import ptable

        g = self.g
        out = []
        for index, (img, dev) in enumerate(zip(self.images, [self.disks_device(i) for i in range(len(self.images))])):
            # The host already knows the size the appliance sees (formats.detect: qemu-img's view of
            # the image, or the block device's size): blockdev_getsize64 runs a program in the
            # appliance (~0.2 s under TCG). A staging overlay is bigger than its image: asked.
            size = img.virtual_size if img.virtual_size and not img.staging else g.blockdev_getsize64(dev)
            head = g.pread_device(dev, min(size, ptable.HEAD_BYTES), 0) if size else b""
            raw = ptable.parse(head)
            if raw.needs_fallback:
                raw = self._table_via_parted(dev, raw)
            parts: list[Partition] = []
            for rp in raw.partitions:
                pdev = f"{dev}{rp.number}"
                # The Microsoft reserved partition never holds a filesystem (UEFI spec / Microsoft
                # "Windows and GPT FAQ"): no blkid for it (~0.16 s under TCG).
                fstype, label = (None, None) if (rp.gpt_type or "").upper() == MSR_TYPE_GUID else self._blkid(pdev)
                parts.append(Partition(disk=index, number=rp.number, device=pdev, start=rp.start, size=rp.size,
                                       mbr_type=rp.mbr_type, bootable=rp.bootable, gpt_type=rp.gpt_type,
                                       gpt_guid=rp.gpt_guid, name=rp.name, fstype=fstype, label=label))
            if raw.table is None:
                fstype, label = self._blkid(dev)
                if fstype:
                    # A bare filesystem with no partition table: Windows never boots from that, but
                    # show it as volume 0 so the user sees what the disk holds.
                    parts.append(Partition(disk=index, number=0, device=dev, start=0, size=size,
                                           fstype=fstype, label=label))
            out.append(DiskInfo(index=index, image=img, device=dev, size=size, table=raw.table,
                                mbr_signature=raw.mbr_signature, gpt_guid=raw.gpt_guid, partitions=tuple(parts)))
        self._disks = out
        return out

    def _blkid(self, device: str) -> tuple[str | None, str | None]:
        try:
            tags = self.g.blkid(device)
        except RuntimeError:
            return None, None
        fstype = tags.get("TYPE") or None
        if fstype == "BitLocker":
            fstype = "bitlocker"
        # blkid's export format backslash-escapes spaces and shell characters ("System\ Reserved").
        label = re.sub(r"\\(.)", r"\1", tags.get("LABEL") or "") or None
        return fstype, label

    def _table_via_parted(self, dev: str, raw):
        """Slow path (several appliance calls per partition): MBR with logical partitions, GPT on
        4 KiB sectors. Same record as the host parser."""
        from rescue.disk import ptable

        g = self.g
        try:
            kind = {"msdos": "mbr", "gpt": "gpt"}.get(g.part_get_parttype(dev))
        except RuntimeError:
            return ptable.RawTable(None)
        parts = []
        for p in g.part_list(dev):
            num = p["part_num"]
            if kind == "mbr":
                parts.append(ptable.RawPartition(num, p["part_start"], p["part_size"],
                                                 mbr_type=g.part_get_mbr_id(dev, num),
                                                 bootable=bool(g.part_get_bootable(dev, num))))
            else:
                parts.append(ptable.RawPartition(num, p["part_start"], p["part_size"],
                                                 gpt_type=g.part_get_gpt_type(dev, num).upper(),
                                                 gpt_guid=g.part_get_gpt_guid(dev, num).upper(),
                                                 name=g.part_get_name(dev, num) or None))
        disk_guid = raw.gpt_guid
        if kind == "gpt" and disk_guid is None:
            try:
                disk_guid = g.part_get_disk_guid(dev).upper()
            except RuntimeError:
                disk_guid = None
        return ptable.RawTable(kind, mbr_signature=raw.mbr_signature if kind == "mbr" else None,
                               gpt_guid=disk_guid, partitions=tuple(parts))

    def partitions(self) -> list[Partition]:
        return [p for d in self.disks() for p in d.partitions]

    def partition(self, disk: int, number: int) -> Partition:
        for p in self.partitions():
            if p.disk == disk and p.number == number:
                return p
        raise InputError(f"Disk {self.images[disk].path} has no partition {number}.")

    def read_partition_bytes(self, part: Partition, size: int, offset: int = 0) -> bytes:
        return self.g.pread_device(part.device, size, offset)

    def ntfs_state(self, part: Partition, *, rw: bool = True) -> str:
        """ntfs-3g's own verdict on whether the volume can be mounted (read-write by default)."""
        # Cached per launch (~0.16 s a probe under TCG; discovery and the write mount both ask). Only
        # our own writes can change the verdict, and those drop the cache (_volumes_changed).
        key = (part.device, rw)
        if key not in self._probes:
            try:
                code = self.g.ntfs_3g_probe(rw, part.device)
            except RuntimeError:
                return "unknown reason"
            self._probes[key] = NTFS_PROBE_STATES.get(code, f"code {code}")
        return self._probes[key]

    # --- mounting -----------------------------------------------------------------------------
    def mount(self, part: Partition, *, write: bool = False) -> str:
        """Mount a volume (read-only unless `write`) and return its mount point in the appliance.
        Raises RescueError subclasses with advice when it cannot be mounted."""
        key = part.key
        if key in self._mounts:
            if not write or self._mount_rw[key]:
                return self._mounts[key]
            if part.fstype == "vfat" and self.write:
                # The kernel's FAT driver remounts read-write in place (~0.2 s under TCG, where
                # umount + mount cost ~0.4 s); ntfs-3g (FUSE) cannot remount, so NTFS is mounted again.
                try:
                    self.g.mount_options("remount,rw", part.device, self._mounts[key])
                except RuntimeError:
                    pass                # umount + mount below says what is wrong
                else:
                    self._check_really_writable(part, self._mounts[key])
                    self._mount_rw[key] = True
                    self._tree_changed()
                    return self._mounts[key]
            self.g.umount(self._mounts[key])
        if write and not self.write:
            raise RuntimeError("write mount on a read-only session")  # programming error
        mp = self._mounts.get(key) or f"/{key}"
        if key not in self._mounts:
            self.g.mkmountpoint(mp)
        g = self.g
        if write and part.fstype == "ntfs":
            state = self.ntfs_state(part, rw=True)
            if state == "hibernated":
                raise UnsafeStateError(f"Volume {self.describe(part)} is hibernated (Fast Startup).",
                                       hint=HIBERNATION_ADVICE)
            if state == "unclean":
                raise UnsafeStateError(
                    f"Volume {self.describe(part)} was not shut down cleanly (NTFS marked unclean).",
                    hint="Run `chkdsk /f` on it from Windows, or `ntfsfix` if you accept its limits; nothing was written.")
            if state not in ("ok",):
                raise UnsafeStateError(f"Volume {self.describe(part)} cannot be opened for writing ({state}).")
        try:
            if write:
                g.mount_options("", part.device, mp)
            else:
                # ro for NTFS also lets ntfs-3g mount a hibernated volume for inspection.
                g.mount_options("ro", part.device, mp)
        except RuntimeError as exc:
            text = str(exc)
            if "hibernat" in text.lower() or "unsafe state" in text.lower() or "fast restart" in text.lower():
                raise UnsafeStateError(f"Volume {self.describe(part)} is hibernated (Fast Startup).",
                                       hint=HIBERNATION_ADVICE) from None
            raise InputError(f"Volume {self.describe(part)} cannot be mounted: {text.splitlines()[-1]}") from None
        if write:
            self._check_really_writable(part, mp)
        self._mounts[key] = mp
        self._mount_rw[key] = write
        self._tree_changed()
        return mp

    def _check_really_writable(self, part: Partition, mp: str) -> None:
        """ntfs-3g may silently fall back to a read-only mount on an unsafe volume (virt-v2v checks
        the same way): prove the mount takes a write before planning any change on it."""
        probe = f"{mp}/.rescue-write-probe"
        try:
            self.g.write(probe, b"")
            self.g.rm(probe)
        except RuntimeError:
            try:
                self.g.umount(mp)
            except RuntimeError:
                pass
            raise UnsafeStateError(f"Volume {self.describe(part)} mounted read-only although writing was asked "
                                   "(ntfs-3g found it in an unsafe state).", hint=HIBERNATION_ADVICE) from None

    def mounted(self, part: Partition) -> str | None:
        return self._mounts.get(part.key)

    def umount(self, part: Partition) -> None:
        self._volumes_changed()
        mp = self._mounts.pop(part.key, None)
        self._mount_rw.pop(part.key, None)
        if mp:
            self.g.umount(mp)
            # mount() creates the mount point again next time: remove it, or that fails ("File exists").
            self.g.rmmountpoint(mp)

    def describe(self, part: Partition) -> str:
        # By device, not part.disk: a fleet view (rescue.disk.view) numbers each VM's disks from 0.
        disk = next((i for i in range(len(self.images)) if part.device.startswith(self.disks_device(i))
                     and part.device[len(self.disks_device(i)):] in ("", *map(str, range(1, 129)))), part.disk)
        return f"{self.images[disk].path} partition {part.number}"

    def usage(self, mountpoint: str) -> VolumeUsage:
        st = self.g.statvfs(mountpoint)
        return VolumeUsage(size_bytes=st["blocks"] * st["frsize"], free_bytes=st["bavail"] * st["frsize"])

    # --- files (appliance paths under a mount point) -------------------------------------------
    def resolve(self, path: str) -> str | None:
        """The real spelling of `path` (case-insensitive, like Windows), or None when it is missing.

        Why not just guestfs' case_sensitive_path: under TCG it costs ~16 ms a call, and a cleanup
        scan resolves ~200 paths, most of them absent. ntfs-3g looks names up case-sensitively, so
        an exact-case `exists` (~2 ms) settles the usual case; otherwise the path is walked with
        directory listings cached for the session (dropped by every call that changes a tree)."""
        if self.g.exists(path):
            return path
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None
        real = ""
        for i, name in enumerate(parts):
            if i == 0:
                real = "/" + name               # the mount point itself: spelled by us
                continue
            listing = self._listing(real)
            if listing is None:
                return None
            found = listing.get(name.lower())
            if found is None:
                return None
            real = f"{real}/{found}"
        return real if self.g.exists(real) else None

    def _listing(self, directory: str) -> dict[str, str] | None:
        """{lower-case name: real name} of a directory, cached; None when it is not a directory."""
        if directory not in self._ls_cache:
            try:
                names = self.g.ls(directory)        # fails for a file: one call, not is_dir + ls
            except RuntimeError:
                names = None
            self._ls_cache[directory] = None if names is None else {n.lower(): n for n in names}
        return self._ls_cache[directory]

    def _tree_changed(self) -> None:
        self._ls_cache.clear()

    def _volumes_changed(self) -> None:
        """A volume was unmounted after writing, resized or overwritten: probe it again."""
        self._probes.clear()
        self._ls_cache.clear()

    def is_file(self, path: str) -> bool:
        return self._kind(path) == 0o100000

    def is_dir(self, path: str) -> bool:
        return self._kind(path) == 0o040000

    def _kind(self, path: str) -> int | None:
        """S_IFMT of lstat(path), None when missing. lstatns costs ~2 ms under TCG where the
        is_dir/is_file calls cost ~10 ms; lstat never follows a link, as is_dir(followsymlinks=False)."""
        try:
            return self.g.lstatns(path)["st_mode"] & 0o170000
        except RuntimeError:
            return None

    def listdir(self, path: str) -> list[str]:
        return list(self.g.ls(path))

    def file_size(self, path: str) -> int:
        return self.g.statns(path)["st_size"]

    def read_head(self, path: str, size: int) -> bytes:
        return self.g.pread(path, size, 0)

    # File contents move in pread/write messages of CHUNK bytes, not through download/upload/read_file:
    # those cost ~130-250 ms a call under TCG whatever the size (a 45 KiB hive), where a pread or a
    # write of up to 2 MiB costs ~5-35 ms; for a 20 MiB file pread is 2.5x faster than download and
    # write+write_append 20% faster than upload. CHUNK stays well under the protocol's 4 MiB message.
    CHUNK = 2 << 20

    def _read_chunks(self, path: str) -> Iterator[bytes]:
        # Until a read returns nothing: pread(2) may return less than asked before the end.
        offset = 0
        while data := self.g.pread(path, self.CHUNK, offset):
            yield data
            offset += len(data)

    def read_file(self, path: str) -> bytes:
        return b"".join(self._read_chunks(path))

    def download(self, path: str, host_path: str | Path) -> None:
        with open(host_path, "wb") as fh:
            for data in self._read_chunks(path):
                fh.write(data)

    def upload(self, host_path: str | Path, path: str) -> None:
        with open(host_path, "rb") as fh:
            self._write_chunks(path, iter(lambda: fh.read(self.CHUNK), b""))

    def write_file(self, path: str, data: bytes) -> None:
        self._write_chunks(path, (data[i:i + self.CHUNK] for i in range(0, len(data), self.CHUNK)))

    def _write_chunks(self, path: str, chunks: Iterator[bytes]) -> None:
        """The first chunk creates or truncates the file (also when there is none: an empty file),
        the others are appended."""
        self._tree_changed()
        self.g.write(path, next(chunks, b""))
        for data in chunks:
            self.g.write_append(path, data)

    def rename(self, src: str, dst: str) -> None:
        """rename(2) inside one volume: atomic, so a crash leaves the old or the new file."""
        self._tree_changed()
        self.g.rename(src, dst)

    def copy(self, src: str, dst: str) -> None:
        self._tree_changed()
        self.g.cp(src, dst)

    def remove(self, path: str) -> None:
        self._tree_changed()
        self.g.rm(path)

    def remove_tree(self, path: str) -> None:
        self._tree_changed()
        self.g.rm_rf(path)

    def makedirs(self, path: str) -> None:
        self._tree_changed()
        self.g.mkdir_p(path)

    # Hashing on the host from pread chunks beats the appliance's checksum (~45 ms a file under TCG)
    # for the small files we verify (hives, BCD, logs, manifests); big files stay in the appliance.
    HASH_ON_HOST = 8 << 20

    def sha256(self, path: str) -> str:
        if self.g.statns(path)["st_size"] > self.HASH_ON_HOST:
            return self.g.checksum("sha256", path)
        return self._sha256_on_host(path)

    def _sha256_on_host(self, path: str) -> str:
        h = hashlib.sha256()
        for data in self._read_chunks(path):
            h.update(data)
        return h.hexdigest()

    def sha256_folder(self, path: str) -> dict[str, str]:
        """{name: sha256} of every file directly in folder `path`: one listing and one lstat call,
        then a few small files hashed on the host; many files or big ones in one checksums_out."""
        names = list(self.g.ls(path))
        if len(names) <= 64:
            stats = self.g.lstatnslist(path, names) if names else []
            files = [(n, st["st_size"]) for n, st in zip(names, stats) if st["st_mode"] & 0o170000 == 0o100000]
            if sum(size for _n, size in files) <= self.HASH_ON_HOST:
                return {n: self._sha256_on_host(f"{path}/{n}") for n, _size in files}
        import tempfile as _tempfile

        with _tempfile.NamedTemporaryFile(prefix="rescue-sums-") as tmp:
            self.g.checksums_out("sha256", path, tmp.name)
            lines = Path(tmp.name).read_bytes().decode("utf-8", "surrogateescape").splitlines()
        out = {}
        for line in lines:
            digest, _, name = line.partition("  ")
            name = name[2:] if name.startswith("./") else name
            if name and "/" not in name:
                out[name] = digest
        return out

    def sync(self) -> None:
        self.g.sync()

    # --- building disks (sample builder, tests): only on scratch or new image files -------------
    def init_table(self, disk: int, table: str) -> None:
        self.g.part_init(self.disks_device(disk), "msdos" if table == "mbr" else "gpt")
        self._disks = None

    def add_partition(self, disk: int, start_sector: int, end_sector: int) -> None:
        self.g.part_add(self.disks_device(disk), "p", start_sector, end_sector)
        self._disks = None

    def set_partition_attrs(self, disk: int, number: int, *, mbr_type: int | None = None,
                            bootable: bool | None = None, gpt_type: str | None = None,
                            gpt_guid: str | None = None, name: str | None = None) -> None:
        dev = self.disks_device(disk)
        if mbr_type is not None:
            self.g.part_set_mbr_id(dev, number, mbr_type)
        if bootable is not None:
            self.g.part_set_bootable(dev, number, bootable)
        if gpt_type is not None:
            self.g.part_set_gpt_type(dev, number, gpt_type)
        if gpt_guid is not None:
            self.g.part_set_gpt_guid(dev, number, gpt_guid)
        if name is not None:
            self.g.part_set_name(dev, number, name)
        self._disks = None

    def set_disk_guid(self, disk: int, guid: str) -> None:
        self.g.part_set_disk_guid(self.disks_device(disk), guid)
        self._disks = None

    def write_device(self, disk: int, data: bytes, offset: int) -> None:
        self._volumes_changed()
        self.g.pwrite_device(self.disks_device(disk), data, offset)
        self._disks = None

    def mkfs(self, disk: int, number: int, fstype: str, label: str | None = None) -> None:
        self._volumes_changed()
        dev = f"{self.disks_device(disk)}{number}"
        opts = {"label": label} if label else {}
        self.g.mkfs(fstype, dev, **opts)
        self._disks = None

    def disks_device(self, disk: int) -> str:
        """The appliance device of the disk-th image added. libguestfs names drives /dev/sda,
        /dev/sdb, ... in the order they were added, whatever the appliance's own driver calls them
        (guestfs(3), "BLOCK DEVICE NAMING"; /dev/sdaa follows /dev/sdz), so no list_devices call
        (~0.2 s under TCG: it waits for udev)."""
        if not 0 <= disk < len(self.images):
            raise IndexError(disk)
        letters, i = "", disk
        while i >= 0:
            letters = chr(ord("a") + i % 26) + letters
            i = i // 26 - 1
        return "/dev/sd" + letters

    def extract_tar(self, host_tar: str | Path, directory: str) -> None:
        """Unpack a host tarball below `directory` in one call (sample builders write a whole
        volume tree at once instead of one call per file)."""
        self._tree_changed()
        self.g.tar_in(str(host_tar), directory)

    # --- space (issue 6): bounded metadata walks, batched deletes, growing a partition + NTFS ----
    # A small tree is cheaper to walk with ls + lstatnslist (~4 ms each under TCG) than with one
    # find0 (~100 ms: it runs find(1) in the appliance and streams a file back); a tree with more
    # than this many directories goes to find0.
    WALK_DIRS = 16

    def lstat_tree(self, root: str, *, limit: int | None = None,
                   recursive: bool = True) -> tuple[list["TreeEntry"], bool]:
        """Every entry below directory `root` (not `root` itself), from metadata only, never
        following links: ntfs-3g presents NTFS junctions, symbolic links and reparse points it has no
        plugin for as symlinks; the walk descends only into real directories, and `find` (under
        find0) never descends into a symlink, so nothing outside `root` is ever listed. Returns
        (entries, truncated) where truncated means more than `limit` entries were found.
        recursive=False: the entries directly in `root` only."""
        root = root.rstrip("/") or "/"
        try:
            walked = self._walk(root, limit, recursive)
        except RuntimeError:
            walked = None               # an unreadable subfolder: let find0 report it as before
        if walked is not None:
            return walked
        return self._lstat_tree_find0(root, limit)

    def _walk(self, root: str, limit: int | None, recursive: bool) -> tuple[list["TreeEntry"], bool] | None:
        out: list[TreeEntry] = []
        queue, listed = [root], 0
        while queue:
            if listed == self.WALK_DIRS:
                return None
            directory = queue.pop(0)
            listed += 1
            entries = self._lstat_names(directory, list(self.g.ls(directory)))
            if limit is not None and len(out) + len(entries) > limit:
                return out + entries[:limit - len(out)], True
            out.extend(entries)
            if recursive:
                queue.extend(e.path for e in entries if e.kind == "dir")
        return out, False

    def _lstat_names(self, directory: str, bases: list[str]) -> list["TreeEntry"]:
        out: list[TreeEntry] = []
        prefix = "" if directory == "/" else directory
        for i in range(0, len(bases), 1000):
            chunk = bases[i:i + 1000]
            for base, st in zip(chunk, self.g.lstatnslist(directory, chunk)):
                if st["st_ino"] == -1:          # vanished between listing and lstat
                    continue
                fmt = st["st_mode"] & 0o170000
                kind = {0o100000: "file", 0o040000: "dir", 0o120000: "link"}.get(fmt, "other")
                out.append(TreeEntry(path=f"{prefix}/{base}", kind=kind, size=st["st_size"],
                                     allocated=st["st_blocks"] * 512, inode=st["st_ino"], nlink=st["st_nlink"]))
        return out

    def _lstat_tree_find0(self, root: str, limit: int | None) -> tuple[list["TreeEntry"], bool]:
        """One find0 call, then one lstatnslist call per directory (chunks of 1000 names)."""
        import tempfile as _tempfile

        with _tempfile.NamedTemporaryFile(prefix="rescue-find0-") as tmp:
            self.g.find0(root, tmp.name)
            raw = Path(tmp.name).read_bytes()
        names = [n.decode("utf-8", "surrogateescape") for n in raw.split(b"\0") if n]
        truncated = limit is not None and len(names) > limit
        if truncated:
            names = names[:limit]
        by_dir: dict[str, list[str]] = {}
        for rel in names:
            parent, _, base = rel.rpartition("/")
            by_dir.setdefault(("" if root == "/" else root) + parent, []).append(base)
        out: list[TreeEntry] = []
        for directory, bases in by_dir.items():
            out.extend(self._lstat_names(directory or "/", bases))
        return out, truncated

    def lstat(self, path: str) -> "TreeEntry":
        """lstat(2) of one path (a link is reported as a link, never followed)."""
        st = self.g.lstatns(path)
        fmt = st["st_mode"] & 0o170000
        kind = {0o100000: "file", 0o040000: "dir", 0o120000: "link"}.get(fmt, "other")
        return TreeEntry(path=path, kind=kind, size=st["st_size"], allocated=st["st_blocks"] * 512,
                         inode=st["st_ino"], nlink=st["st_nlink"])

    def ntfs_attributes(self, paths: Iterable[str]) -> dict[str, int | None]:
        """Windows file attributes (FILE_ATTRIBUTE_* bits: 0x1 read-only, 0x2 hidden, 0x4 system,
        0x400 reparse point) of files on an ntfs-3g mount, from its `system.ntfs_attrib` xattr
        (little-endian u32); None when it cannot be read. One call per path (about 1 ms each)."""
        out: dict[str, int | None] = {}
        for p in paths:
            try:
                raw = self.g.lgetxattr(p, "system.ntfs_attrib")
                out[p] = int.from_bytes(bytes(raw)[:4], "little") if raw else None
            except RuntimeError:
                out[p] = None
        return out

    def remove_files(self, paths: Iterable[str]) -> list[tuple[str, str]]:
        """Delete many files by their exact appliance paths (no case resolution: the caller listed
        them), one unlink each (about 1.5 ms under TCG, where resolving a path costs ~20 ms).
        Returns the (path, reason) pairs that could not be deleted; never raises for one file."""
        self._tree_changed()
        failed: list[tuple[str, str]] = []
        for p in paths:
            try:
                self.g.rm(p)
            except RuntimeError as exc:
                text = str(exc).splitlines()[-1] if str(exc) else "unknown error"
                failed.append((p, text.split(": ", 1)[-1] if text.startswith("rm:") else text))
        return failed

    def read_disk_bytes(self, disk: int, size: int, offset: int) -> bytes:
        """`size` bytes of the whole disk at byte `offset` (partition tables, boot sectors). Reads in
        1 MiB pieces (pread_device may return fewer bytes than asked)."""
        dev = self.disks_device(disk)
        buf = bytearray()
        while len(buf) < size:
            chunk = self.g.pread_device(dev, min(1 << 20, size - len(buf)), offset + len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def disk_size(self, disk: int) -> int:
        return self.disks()[disk].size

    def part_expand_gpt(self, disk: int) -> None:
        """Move the GPT backup header and table to the end of a grown disk (sgdisk -e)."""
        self._volumes_changed()
        self.g.part_expand_gpt(self.disks_device(disk))
        self._disks = None

    def part_resize(self, disk: int, number: int, end_sector: int) -> None:
        """Move the end of partition `number` to `end_sector` (inclusive); its start, type, GUID and
        contents stay as they are (parted resizepart; no filesystem is touched)."""
        self._volumes_changed()
        self.g.part_resize(self.disks_device(disk), number, end_sector)
        self._disks = None

    def reread_partition_table(self, disk: int) -> None:
        """Make the appliance kernel re-read a partition table written with write_device (BLKRRPART),
        so partition devices get their new sizes."""
        self._volumes_changed()
        self.g.blockdev_rereadpt(self.disks_device(disk))
        self._disks = None

    def ntfsresize(self, part: Partition, size: int | None = None) -> None:
        """Grow (or shrink to `size` bytes) the NTFS on an UNMOUNTED partition with ntfsresize, which
        checks the filesystem's consistency first and refuses a volume marked dirty."""
        self._volumes_changed()
        if self._mounts.get(part.key):
            self.umount(part)
        opts = {"size": size} if size else {}
        self.g.ntfsresize_opts(part.device, **opts)
        self._disks = None

    def cluster_size(self, mountpoint: str) -> int:
        """The mounted filesystem's allocation unit (NTFS cluster size as ntfs-3g reports it)."""
        st = self.g.statvfs(mountpoint)
        return st["frsize"] or st["bsize"]

    def set_ntfs_xattr(self, path: str, name: str, value: bytes) -> None:
        """Set a binary ntfs-3g `system.ntfs_*` attribute (e.g. "system.ntfs_attrib_be" for the
        Windows attributes, "system.ntfs_reparse_data" for a junction). Builders/tests only: the
        binding's setxattr cannot carry NUL bytes, so this goes through the appliance's setfattr
        (libguestfs debug sh; mount points live under /sysroot inside the appliance)."""
        import shlex

        target = "/sysroot" + path
        self.g.debug("sh", [f"setfattr -h -n {shlex.quote(name)} -v 0x{value.hex()} {shlex.quote(target)}"])
