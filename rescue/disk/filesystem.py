"""One volume of an attached disk: mounting it, ntfs-3g's verdict on it, and its files.

A `Filesystem` is made per partition by the DiskSession and keeps what is worth keeping per
volume for one launch: its mount point and mode, ntfs-3g's probe verdicts, and the directory
listings that case-insensitive resolution walks. Every call that changes the volume's tree drops its
listings; unmounting or anything done to the device below it (resize, raw writes) drops its probes
too. File paths are appliance paths below the volume's mount point (/d<disk>p<partition>).

Under TCG every appliance call has a price, set mostly by what guestfsd does, not by the bytes
moved: a call that runs a program in the appliance (mount, find, blkid) or streams a file
(download/upload/find0/checksums_out) costs 70-250 ms, a plain syscall-sized call (pread, write,
ls, lstatns) 2-35 ms. The methods below pick the cheap calls; the numbers are from a 2-core host.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from rescue.disk import walk
from rescue.disk.appliance import Appliance
from rescue.disk.records import Partition, TreeEntry, VolumeUsage
from rescue.errors import DiskError, InputError, UnsafeStateError

# Exit codes of `ntfs-3g.probe` (ntfs-3g.probe(8), EXIT CODES), which guestfs ntfs_3g_probe returns.
NTFS_PROBE_STATES = {
    0: "ok", 11: "syntax error", 12: "not NTFS", 13: "corrupt", 14: "hibernated",
    15: "unclean", 16: "locked", 17: "raid", 18: "unknown reason", 19: "no privilege",
    20: "out of memory", 21: "fuse error", 22: "insecure",
}

HIBERNATION_ADVICE = (
    "Windows was hibernated, shut down with Fast Startup, or stopped without dismounting this volume, so "
    "its NTFS holds state only Windows can finish: writing now would corrupt it. If the VM still starts, "
    "boot it and shut it down fully (`shutdown /s /t 0`). If it does not, run the command again with "
    "--discard-hibernation (hibernated / Fast Startup) or --reset-ntfs-log (crash or forced stop): the "
    "log is reset and chkdsk checks the volume at the next boot. Nothing was written."
)

# File contents move in pread/write messages of CHUNK bytes, not through download/upload/read_file:
# those cost ~130-250 ms a call under TCG whatever the size (a 45 KiB hive), where a pread or a
# write of up to 2 MiB costs ~5-35 ms; for a 20 MiB file pread is 2.5x faster than download and
# write+write_append 20% faster than upload. CHUNK stays well under the protocol's 4 MiB message.
CHUNK = 2 << 20

# Hashing on the host from pread chunks beats the appliance's checksum (~45 ms a file under TCG)
# for the small files we verify (hives, BCD, logs, manifests); big files stay in the appliance.
HASH_ON_HOST = 8 << 20

# A folder with at most this many entries is hashed from one lstat call + host hashing.
SMALL_FOLDER = 64


class Filesystem:
    """The volume on `part`, mounted on demand under /<part.key> in the appliance."""

    def __init__(self, appliance: Appliance, part: Partition, *, label: str):
        self.appliance = appliance
        self.part = part
        self.label = label                      # "<image path> partition N", for messages
        self.mountpoint: str | None = None
        self.writable = False
        self._made_mountpoint = False
        self._listings: dict[str, dict[str, str] | None] = {}   # resolve(): directory listings
        self._probes: dict[bool, str] = {}                      # ntfs_state() verdicts by rw

    @property
    def g(self):
        return self.appliance.g

    # --- caches ---------------------------------------------------------------------------------
    def tree_changed(self) -> None:
        self._listings.clear()

    def device_changed(self) -> None:
        """Unmounted after writing, resized or overwritten below: probe it again, list it again."""
        self._probes.clear()
        self._listings.clear()

    # --- state and mounting ---------------------------------------------------------------------
    def ntfs_state(self, *, rw: bool = True) -> str:
        """ntfs-3g's own verdict on whether the volume can be mounted (read-write by default)."""
        # Cached per launch (~0.16 s a probe under TCG; discovery and the write mount both ask). Only
        # our own writes can change the verdict, and those drop the cache (device_changed).
        if rw not in self._probes:
            try:
                code = self.g.ntfs_3g_probe(rw, self.part.device)
            except DiskError:
                return "unknown reason"
            self._probes[rw] = NTFS_PROBE_STATES.get(code, f"code {code}")
        return self._probes[rw]

    def mount(self, *, write: bool = False) -> str:
        """Mount the volume (read-only unless `write`) and return its mount point in the appliance.
        Raises RescueError subclasses with advice when it cannot be mounted."""
        part, mp = self.part, self.mountpoint
        if mp is not None:
            if not write or self.writable:
                return mp
            if part.fstype == "vfat" and self.appliance.write:
                # The kernel's FAT driver remounts read-write in place (~0.2 s under TCG, where
                # umount + mount cost ~0.4 s); ntfs-3g (FUSE) cannot remount, so NTFS is mounted again.
                try:
                    self.g.mount_options("remount,rw", part.device, mp)
                except DiskError:
                    pass                # umount + mount below says what is wrong
                else:
                    self._check_really_writable(mp)
                    self.writable = True
                    self.tree_changed()
                    return mp
            self.g.umount(mp)
            self.mountpoint = None
        if write and not self.appliance.write:
            raise RuntimeError("write mount on a read-only session")  # programming error
        mp = f"/{part.key}"
        if not self._made_mountpoint:
            self.g.mkmountpoint(mp)
            self._made_mountpoint = True
        if write and part.fstype == "ntfs":
            self._refuse_unsafe_ntfs()
        try:
            # ro for NTFS also lets ntfs-3g mount a hibernated volume for inspection.
            self.g.mount_options("" if write else "ro", part.device, mp)
        except DiskError as exc:
            text = exc.message.lower()
            if "hibernat" in text or "unsafe state" in text or "fast restart" in text:
                raise UnsafeStateError(f"Volume {self.label} is hibernated (Fast Startup).",
                                       hint=HIBERNATION_ADVICE) from None
            raise InputError(f"Volume {self.label} cannot be mounted: {exc.message}") from None
        if write:
            self._check_really_writable(mp)
        self.mountpoint, self.writable = mp, write
        self.tree_changed()
        return mp

    def _refuse_unsafe_ntfs(self) -> None:
        state = self.ntfs_state(rw=True)
        if state == "hibernated":
            raise UnsafeStateError(f"Volume {self.label} is hibernated (Fast Startup).", hint=HIBERNATION_ADVICE)
        if state == "unclean":
            raise UnsafeStateError(
                f"Volume {self.label} was not shut down cleanly (NTFS marked unclean).",
                hint="Run `chkdsk /f` on it from Windows, or `ntfsfix` if you accept its limits; nothing was written.")
        if state != "ok":
            raise UnsafeStateError(f"Volume {self.label} cannot be opened for writing ({state}).")

    def _check_really_writable(self, mp: str) -> None:
        """ntfs-3g may silently fall back to a read-only mount on an unsafe volume (virt-v2v checks
        the same way): prove the mount takes a write before planning any change on it."""
        probe = f"{mp}/.rescue-write-probe"
        try:
            self.g.write(probe, b"")
            self.g.rm(probe)
        except DiskError:
            try:
                self.g.umount(mp)
            except DiskError:
                pass
            self.mountpoint = None
            raise UnsafeStateError(f"Volume {self.label} mounted read-only although writing was asked "
                                   "(ntfs-3g found it in an unsafe state).", hint=HIBERNATION_ADVICE) from None

    def umount(self) -> None:
        self.device_changed()
        mp, self.mountpoint, self.writable = self.mountpoint, None, False
        if mp:
            self.g.umount(mp)
            # mount() creates the mount point again next time: remove it, or that fails ("File exists").
            self.g.rmmountpoint(mp)
            self._made_mountpoint = False

    def usage(self, mountpoint: str | None = None) -> VolumeUsage:
        st = self.g.statvfs(mountpoint or self.mount())
        return VolumeUsage(size_bytes=st["blocks"] * st["frsize"], free_bytes=st["bavail"] * st["frsize"])

    def cluster_size(self, mountpoint: str | None = None) -> int:
        """The mounted filesystem's allocation unit (NTFS cluster size as ntfs-3g reports it)."""
        st = self.g.statvfs(mountpoint or self.mount())
        return st["frsize"] or st["bsize"]

    # --- names ----------------------------------------------------------------------------------
    def resolve(self, path: str) -> str | None:
        """The real spelling of `path` (case-insensitive, like Windows), or None when it is missing.

        Why not just guestfs' case_sensitive_path: under TCG it costs ~16 ms a call, and a cleanup
        scan resolves ~200 paths, most of them absent. ntfs-3g looks names up case-sensitively, so
        an exact-case `exists` (~2 ms) settles the usual case; otherwise the path is walked with
        directory listings cached for the launch (dropped by every call that changes the tree)."""
        if self.g.exists(path):
            return path
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None
        real = "/" + parts[0]               # the mount point itself: spelled by us
        for name in parts[1:]:
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
        if directory not in self._listings:
            try:
                names = self.g.ls(directory)        # fails for a file: one call, not is_dir + ls
            except DiskError:
                names = None
            self._listings[directory] = None if names is None else {n.lower(): n for n in names}
        return self._listings[directory]

    def is_file(self, path: str) -> bool:
        return self._kind(path) == 0o100000

    def is_dir(self, path: str) -> bool:
        return self._kind(path) == 0o040000

    def _kind(self, path: str) -> int | None:
        """S_IFMT of lstat(path), None when missing. lstatns costs ~2 ms under TCG where the
        is_dir/is_file calls cost ~10 ms; lstat never follows a link, as is_dir(followsymlinks=False)."""
        try:
            return self.g.lstatns(path)["st_mode"] & 0o170000
        except DiskError:
            return None

    def listdir(self, path: str) -> list[str]:
        return list(self.g.ls(path))

    def file_size(self, path: str) -> int:
        return self.g.statns(path)["st_size"]

    # --- contents -------------------------------------------------------------------------------
    def _read_chunks(self, path: str) -> Iterator[bytes]:
        # Until a read returns nothing: pread(2) may return less than asked before the end.
        offset = 0
        while data := self.g.pread(path, CHUNK, offset):
            yield data
            offset += len(data)

    def read_file(self, path: str) -> bytes:
        return b"".join(self._read_chunks(path))

    def read_head(self, path: str, size: int) -> bytes:
        """The first `size` bytes of a file that may be huge (hiberfil.sys: a header, never the file)."""
        out = b""
        while len(out) < size:
            data = self.g.pread(path, size - len(out), len(out))
            if not data:
                break
            out += data
        return out

    def download(self, path: str, host_path: str | Path) -> None:
        with open(host_path, "wb") as fh:
            for data in self._read_chunks(path):
                fh.write(data)

    def upload(self, host_path: str | Path, path: str) -> None:
        with open(host_path, "rb") as fh:
            self._write_chunks(path, iter(lambda: fh.read(CHUNK), b""))

    def write_file(self, path: str, data: bytes) -> None:
        self._write_chunks(path, (data[i:i + CHUNK] for i in range(0, len(data), CHUNK)))

    def _write_chunks(self, path: str, chunks: Iterator[bytes]) -> None:
        """The first chunk creates or truncates the file (also when there is none: an empty file),
        the others are appended."""
        self.tree_changed()
        self.g.write(path, next(chunks, b""))
        for data in chunks:
            self.g.write_append(path, data)

    def sha256(self, path: str) -> str:
        if self.g.statns(path)["st_size"] > HASH_ON_HOST:
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
        if len(names) <= SMALL_FOLDER:
            stats = self.g.lstatnslist(path, names) if names else []
            files = [(n, st["st_size"]) for n, st in zip(names, stats) if st["st_mode"] & 0o170000 == 0o100000]
            if sum(size for _n, size in files) <= HASH_ON_HOST:
                return {n: self._sha256_on_host(f"{path}/{n}") for n, _size in files}
        with tempfile.NamedTemporaryFile(prefix="rescue-sums-") as tmp:
            self.g.checksums_out("sha256", path, tmp.name)
            lines = Path(tmp.name).read_bytes().decode("utf-8", "surrogateescape").splitlines()
        out = {}
        for line in lines:
            digest, _, name = line.partition("  ")
            name = name[2:] if name.startswith("./") else name
            if name and "/" not in name:
                out[name] = digest
        return out

    # --- changing the tree ----------------------------------------------------------------------
    def rename(self, src: str, dst: str) -> None:
        """rename(2) inside one volume: atomic, so a crash leaves the old or the new file."""
        self.tree_changed()
        self.g.rename(src, dst)

    def copy(self, src: str, dst: str) -> None:
        self.tree_changed()
        self.g.cp(src, dst)

    def remove(self, path: str) -> None:
        self.tree_changed()
        self.g.rm(path)

    def makedirs(self, path: str) -> None:
        self.tree_changed()
        self.g.mkdir_p(path)

    def remove_files(self, paths: Iterable[str]) -> list[tuple[str, str]]:
        """Delete many files by their exact appliance paths (no case resolution: the caller listed
        them), one unlink each (about 1.5 ms under TCG, where resolving a path costs ~20 ms).
        Returns the (path, reason) pairs that could not be deleted; never raises for one file."""
        self.tree_changed()
        failed: list[tuple[str, str]] = []
        for p in paths:
            try:
                self.g.rm(p)
            except DiskError as exc:
                text = exc.message
                failed.append((p, text.split(": ", 1)[-1] if text.startswith("rm:") else text))
        return failed

    # --- metadata walks -------------------------------------------------------------------------
    def lstat_tree(self, root: str, *, limit: int | None = None,
                   recursive: bool = True) -> tuple[list[TreeEntry], bool]:
        return walk.lstat_tree(self.g, root, limit=limit, recursive=recursive)

    def lstat(self, path: str) -> TreeEntry:
        """lstat(2) of one path (a link is reported as a link, never followed)."""
        return walk.entry(path, self.g.lstatns(path))

    def ntfs_attributes(self, paths: Iterable[str]) -> dict[str, int | None]:
        """Windows file attributes (FILE_ATTRIBUTE_* bits: 0x1 read-only, 0x2 hidden, 0x4 system,
        0x400 reparse point) of files on an ntfs-3g mount, from its `system.ntfs_attrib` xattr
        (little-endian u32); None when it cannot be read. One call per path (about 1 ms each)."""
        out: dict[str, int | None] = {}
        for p in paths:
            try:
                raw = self.g.lgetxattr(p, "system.ntfs_attrib")
                out[p] = int.from_bytes(bytes(raw)[:4], "little") if raw else None
            except DiskError:
                out[p] = None
        return out
