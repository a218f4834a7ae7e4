"""Turn sample specifications (rescue.samples.disks) into raw images, then other formats.

Order of work (build_raw_images):
1. host: sparse raw files; partition tables with the known GUIDs / MBR signatures (sfdisk); NTFS
   (mkntfs into a scratch file, root-level allocated files such as pagefile.sys added with ntfscp,
   then copied in), ext4 with its files (mke2fs -d) and FAT32 ESPs with their files (mkfs.fat
   --offset + mtools: libguestfs' mkfs cannot force FAT32, and Windows formats its ESP FAT32).
   Partitioning inside a TCG appliance cost about a minute per disk (parted/sgdisk + udev settle)
   and fallocate through FUSE about 1 s per MiB; these host tools take milliseconds and touch
   nothing but the image files.
2. ONE appliance over every disk with NTFS contents (write=True): each volume's folders and files
   (hives included) as one tarball; then ntfs-3g's verdict ("hibernated" on the hibernated sample,
   "ok" elsewhere).
3. host: the BitLocker OEM id stamped into the bitlocker sample's C: boot sector; the crashed and
   Fast Startup samples' unclean $LogFile and the chkdsk-scheduled sample's dirty bit
   (rescue.samples.ntfs_states), after ntfs-3g's check of the clean volume.
Other formats: `convert` (qemu-img on the host).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from rescue.disk.formats import DiskImage
from rescue.samples.disks import (BITLOCKER_OEM_ID, MiB, SECTORS_PER_MIB, DiskSpec, FileSpec,
                                  PartSpec)

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A sample came out different from its specification (a builder bug, not user input)."""


def _posix(path: str) -> str:
    return "/" + "/".join(p for p in path.replace("\\", "/").split("/") if p)


def _run(cmd: list[str], **kw) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, **kw)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{' '.join(cmd)} failed: {exc.stderr.decode(errors='replace').strip()}") from None


def _partition_table(image: Path, spec: DiskSpec) -> None:
    """sfdisk on the host (parted/sgdisk inside a TCG appliance cost ~10 s per call with udev
    settling); GUIDs, names, types, the MBR signature and the active flag all set here."""
    lines = ["label: " + ("gpt" if spec.table == "gpt" else "dos"), "unit: sectors"]
    lines.append(f"label-id: {str(spec.disk_guid).upper()}" if spec.table == "gpt"
                 else f"label-id: 0x{spec.mbr_signature:08x}")
    for p in spec.partitions:
        start = p.start_mib * SECTORS_PER_MIB
        fields = [f"start={start}", f"size={spec.end_sector(p) - start + 1}"]
        if spec.table == "gpt":
            fields += [f"type={p.gpt_type}", f"uuid={str(p.gpt_guid).upper()}"]
            if p.name:
                fields.append(f'name="{p.name}"')
        else:
            fields.append(f"type={p.mbr_type:x}")
            if p.bootable:
                fields.append("bootable")
        lines.append(", ".join(fields))
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(image)],
         input=("\n".join(lines) + "\n").encode())


def _copy_into(src: Path, image: Path, offset: int) -> None:
    """Copy a (sparse) filesystem image into the disk image at `offset`, skipping holes."""
    with open(src, "rb") as fi, open(image, "r+b") as fo:
        size = os.fstat(fi.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                data_at = os.lseek(fi.fileno(), pos, os.SEEK_DATA)
            except OSError:      # no data after pos
                break
            hole_at = os.lseek(fi.fileno(), data_at, os.SEEK_HOLE)
            fi.seek(data_at)
            fo.seek(offset + data_at)
            remaining = hole_at - data_at
            while remaining:
                chunk = fi.read(min(remaining, 4 * MiB))
                fo.write(chunk)
                remaining -= len(chunk)
            pos = hole_at


def _make_filesystems(image: Path, spec: DiskSpec, tmp: Path) -> None:
    """NTFS (mkntfs into a scratch file, copied in), ext4 with its files (mke2fs -d) and FAT32 with
    its files (mkfs.fat + mtools), all on the host: no mounts, milliseconds each."""
    for n, p in enumerate(spec.partitions, 1):
        start = p.start_mib * SECTORS_PER_MIB
        sectors = spec.end_sector(p) - start + 1
        if p.fs == "ntfs":
            scratch = tmp / f"{spec.name}-p{n}.ntfs"
            with open(scratch, "wb") as fh:
                fh.truncate(sectors * 512)
            # -p/-H/-S: hidden sectors and geometry in the boot sector, as Windows' format writes
            # them for a partition at `start` (mkntfs cannot ask a regular file for them).
            _run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", "-p", str(start), "-H", "255",
                  "-S", "63", *(["-L", p.label] if p.label else []), str(scratch), str(sectors)])
            for f in p.files:
                if _host_allocated(f):
                    # ntfscp (libntfs-3g, no mount) writes the zeros natively in milliseconds;
                    # fallocate through FUSE in the TCG appliance took about 1 s per MiB.
                    zeros = tmp / "zeros"
                    with open(zeros, "wb") as fh:
                        fh.truncate(f.allocate)
                    _run(["ntfscp", "-f", str(scratch), str(zeros), _posix(f.path).lstrip("/")])
                    zeros.unlink()
            _copy_into(scratch, image, start * 512)
            scratch.unlink()
        elif p.fs == "ext4":
            root = tmp / f"{spec.name}-p{n}.d"
            for d in p.dirs:
                (root / _posix(d).lstrip("/")).mkdir(parents=True, exist_ok=True)
            for f in p.files:
                dest = root / _posix(f.path).lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(f.host.read_bytes() if f.host else f.data or bytes(f.allocate))
            _run(["mke2fs", "-q", "-F", "-t", "ext4", *(["-L", p.label] if p.label else []),
                  "-E", f"offset={start * 512}", "-d", str(root), str(image), f"{sectors // 2}k"])
        elif p.fs == "fat32":
            vol = hashlib.sha256(spec.name.encode()).hexdigest()[:8].upper()
            _make_fat32(image, p, vol, tmp)


def _make_fat32(image: Path, part: PartSpec, volume_id: str, tmp: Path) -> None:
    """FAT32 + files on the host: mkfs.fat writes at a sector offset, mtools copies (libguestfs'
    mkfs cannot force FAT32; Windows formats its 100 MiB ESP FAT32)."""
    start = part.start_mib * SECTORS_PER_MIB
    _run(["mkfs.fat", "-F", "32", "-S", "512", "-s", "1", "-i", volume_id, f"--offset={start}",
          str(image), str((part.size_mib or 0) * 1024)])
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    target = f"{image}@@{start * 512}"
    made: set[str] = set()

    def mkdirs(path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for k in range(1, len(parts) + 1):
            d = "/".join(parts[:k])
            if d not in made:
                _run(["mmd", "-i", target, "::/" + d], env=env)
                made.add(d)

    for d in part.dirs:
        mkdirs(_posix(d))
    for k, f in enumerate(part.files):
        dest = _posix(f.path)
        mkdirs(dest.rsplit("/", 1)[0])
        src = f.host
        if src is None:
            src = tmp / f"esp-{volume_id}-{k}"
            src.write_bytes(f.data if not f.allocate else bytes(f.allocate))
        _run(["mcopy", "-o", "-i", target, str(src), "::" + dest], env=env)


def _host_allocated(f: FileSpec) -> bool:
    """Allocated files in the root folder are written on the host (ntfscp cannot make folders)."""
    return bool(f.allocate) and f.host is None and _posix(f.path).count("/") == 1


def _volume_tar(spec: PartSpec, dest: Path) -> bool:
    """Every folder and file of the volume (but host-allocated ones) as one tarball; False when
    there is nothing to send."""
    entries = 0
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        def add_dir(path: str) -> None:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)

        made: set[str] = set()
        wanted = [_posix(d).lstrip("/") for d in spec.dirs]
        wanted += [_posix(f.path).lstrip("/").rsplit("/", 1)[0] for f in spec.files if "/" in _posix(f.path).lstrip("/")]
        for d in wanted:
            parts = d.split("/")
            for k in range(1, len(parts) + 1):
                sub = "/".join(parts[:k])
                if sub and sub not in made:
                    add_dir(sub)
                    made.add(sub)
                    entries += 1
        for f in spec.files:
            if _host_allocated(f):
                continue
            data = f.host.read_bytes() if f.host is not None else (f.data or bytes(f.allocate))
            info = tarfile.TarInfo(_posix(f.path).lstrip("/"))
            info.size, info.mode = len(data), 0o644
            info.mtime = f.mtime if f.mtime is not None else 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
            entries += 1
    return entries > 0


def _write_volume(s, part, spec: PartSpec, tmp: Path) -> None:
    tarball = tmp / "volume.tar"
    if _volume_tar(spec, tarball):
        from rescue.disk.builder import DiskBuilder

        mp = s.mount(part, write=True)
        DiskBuilder(s).extract_tar(tarball, mp)
        s.umount(part)
    tarball.unlink(missing_ok=True)


def _check_identity(image: Path, spec: DiskSpec) -> None:
    """Read the table back (sfdisk --json) and compare: signature / disk GUID, starts, GUIDs, flags."""
    out = subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True).stdout
    table = json.loads(out)["partitiontable"]
    if spec.table == "mbr" and int(table["id"], 16) != spec.mbr_signature:
        raise BuildError(f"{spec.name}: MBR signature {table['id']} != {spec.mbr_signature:#x}")
    if spec.table == "gpt" and table["id"].upper() != str(spec.disk_guid).upper():
        raise BuildError(f"{spec.name}: disk GUID {table['id']} != {spec.disk_guid}")
    got = table.get("partitions", [])
    if len(got) != len(spec.partitions):
        raise BuildError(f"{spec.name}: {len(got)} partitions, expected {len(spec.partitions)}")
    for n, (g, p) in enumerate(zip(got, spec.partitions), 1):
        if g["start"] != p.start_mib * SECTORS_PER_MIB:
            raise BuildError(f"{spec.name} p{n}: starts at sector {g['start']}")
        if p.gpt_guid and g.get("uuid", "").upper() != p.gpt_guid.upper():
            raise BuildError(f"{spec.name} p{n}: GUID {g.get('uuid')} != {p.gpt_guid}")
        if spec.table == "mbr" and bool(g.get("bootable")) != p.bootable:
            raise BuildError(f"{spec.name} p{n}: active flag {g.get('bootable')}")


def _needs_appliance(p: PartSpec) -> bool:
    return p.fs == "ntfs" and (bool(p.dirs) or any(not _host_allocated(f) for f in p.files)
                               or p.expect_state != "ok")


def _create_raw(path: Path, size_mib: int) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size_mib * MiB)


def build_raw_images(specs: list[DiskSpec], outdir: Path, *, log: Log = lambda m: None,
                     accel: str | None = None) -> dict[str, Path]:
    """Write every spec as `<outdir>/<name>.raw`: tables and filesystems on the host, NTFS contents
    through ONE appliance launch (ntfs-3g inside libguestfs), BitLocker stamps on the host last."""
    from rescue.disk.session import DiskSession, Partition

    outdir.mkdir(parents=True, exist_ok=True)
    paths = {sp.name: outdir / f"{sp.name}.raw" for sp in specs}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rescue-samples-", dir=outdir) as tmpname:
        tmp = Path(tmpname)
        for sp in specs:
            _create_raw(paths[sp.name], sp.size_mib)
            if sp.table:
                _partition_table(paths[sp.name], sp)
                _check_identity(paths[sp.name], sp)
                _make_filesystems(paths[sp.name], sp, tmp)
        log(f"partition tables and filesystems written on the host in {time.monotonic() - started:.1f} s")
        attached = [sp for sp in specs if any(_needs_appliance(p) for p in sp.partitions)]
        if attached:
            images = [DiskImage(str(paths[sp.name]), "raw", sp.size_mib * MiB, False) for sp in attached]
            t = time.monotonic()
            with DiskSession(images, write=True, accel=accel, notify=log) as s:
                log(f"appliance up in {s.launch_seconds:.0f} s; writing files on {len(attached)} disks")
                for i, sp in enumerate(attached):
                    dev = s.disks_device(i)
                    for n, p in enumerate(sp.partitions, 1):
                        if not _needs_appliance(p):
                            continue
                        # Built by hand: DiskSession.disks() probes every filesystem of every
                        # attached disk (list_filesystems, labels), ~50 s per disk under TCG.
                        part = Partition(disk=i, number=n, device=f"{dev}{n}", start=p.start_mib * MiB,
                                         size=(sp.end_sector(p) + 1) * 512 - p.start_mib * MiB, fstype="ntfs")
                        _write_volume(s, part, p, tmp)
                        state = s.ntfs_state(part, rw=True)
                        if state != p.expect_state:
                            raise BuildError(f"{sp.name} p{n}: ntfs-3g says {state!r}, expected {p.expect_state!r}")
            log(f"appliance session: {time.monotonic() - t:.0f} s")
    from rescue.samples.ntfs_states import make_dirty, make_unclean

    for sp in specs:
        for p in sp.partitions:
            if p.ntfs_stamp == "unclean":
                make_unclean(paths[sp.name], p.start_mib * MiB)
            elif p.ntfs_stamp == "dirty":
                make_dirty(paths[sp.name], p.start_mib * MiB)
            if p.bitlocker:
                # A BitLocker volume's boot sector carries the OEM id "-FVE-FS-" at offset 3 (the
                # layout scan's test); the NTFS behind it is then unreadable, as a locked volume is.
                with open(paths[sp.name], "r+b") as fh:
                    fh.seek(p.start_mib * MiB + 3)
                    fh.write(BITLOCKER_OEM_ID)
    return paths


QEMU_FORMATS = {
    # Azure takes fixed VHDs; users download dynamic ones. force_size keeps the exact virtual size
    # (without it qemu rounds to a CHS geometry and the GPT backup header is no longer at the end).
    "vhd": ["-O", "vpc", "-o", "subformat=dynamic,force_size=on"],
    "vhdx": ["-O", "vhdx", "-o", "subformat=dynamic"],
    "qcow2": ["-O", "qcow2"],
}


def convert(raw: Path, dest: Path, fmt: str) -> Path:
    """raw -> vhd (dynamic) / vhdx / qcow2 with the host's qemu-img; raw -> raw is a sparse copy."""
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    if fmt == "raw":
        subprocess.run(["cp", "--sparse=always", str(raw), str(tmp)], check=True)
    else:
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", *QEMU_FORMATS[fmt], str(raw), str(tmp)],
                       check=True, capture_output=True)
    os.replace(tmp, dest)
    return dest


def make_truncated_vhd(raw: Path, dest: Path) -> Path:
    """A dynamic VHD cut short, as an interrupted download leaves it: no closing footer, data
    blocks past the end of the file."""
    full = convert(raw, dest.with_name(dest.name + ".full"), "vhd")
    size = full.stat().st_size
    with open(full, "rb") as src, open(dest, "wb") as out:
        out.write(src.read(size // 2))
    full.unlink()
    return dest


def make_not_a_disk(dest: Path) -> Path:
    dest.write_text("This is not a disk image: it is a text file someone named .vhd.\n" * 8)
    return dest
