"""A throw-away qcow2 overlay over the user's image: `expand` does all its partition and NTFS work
in it (one appliance launch), then commits the few changed clusters into the image and reads them
back. See rescue.space.expand for why.

qemu-img semantics relied on (qemu-img(1)): `create -b BASE -F FMT` makes an overlay whose reads of
unwritten clusters come from BASE, and past BASE's end read as zeros; `map --output=json` lists the
ranges and the layer ("depth" 0 = the overlay itself) they come from; `commit -d` writes the
overlay's clusters into BASE and leaves the overlay as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from rescue.errors import InputError, VerifyError, WriteFailedError

if TYPE_CHECKING:
    from rescue.disk.formats import DiskImage


def _run(args: list[str], *, timeout: int = 3600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise InputError("qemu-img is not installed.", hint="Run `make setup` or apt-get install qemu-utils.") from None


def _err(out: subprocess.CompletedProcess) -> str:
    text = (out.stderr or b"").decode(errors="replace").strip()
    return text.splitlines()[-1] if text else f"exit status {out.returncode}"


def create(image: DiskImage, size: int, path: Path) -> Path:
    """Overlay at `path` over `image` (DiskImage), `size` bytes virtual. Reads only BASE's header."""
    out = _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", image.format,
                "-b", os.path.abspath(image.path), str(path), str(size)])
    if out.returncode != 0:
        raise WriteFailedError(f"Cannot create the working overlay {path}: {_err(out)}")
    return path


def changed_extents(overlay: Path, *, old_size: int) -> list[tuple[int, int]]:
    """(offset, length) of every range the overlay itself holds (written by the appliance),
    neighbours merged. qemu-img map also attributes to the overlay the zeros read past the backing
    file's end (depth 0, zero, no data); past `old_size` those are not writes and are left out (the
    grown image reads zeros there by construction)."""
    out = _run(["qemu-img", "map", "--output=json", "-U", "-f", "qcow2", str(overlay)])
    if out.returncode != 0:
        raise WriteFailedError(f"Cannot read the overlay's map: {_err(out)}")
    spans: list[tuple[int, int]] = []
    for e in json.loads(out.stdout):
        if e.get("depth") != 0:
            continue
        start, length = e["start"], e["length"]
        if not e.get("data"):
            if start >= old_size:
                continue
            length = min(length, old_size - start)
        if spans and spans[-1][0] + spans[-1][1] == start:
            spans[-1] = (spans[-1][0], spans[-1][1] + length)
        else:
            spans.append((start, length))
    return spans


def read_range(path: str, fmt: str, offset: int, length: int, *, block: int = 65536) -> bytes:
    """Guest bytes [offset, offset+length) of an image in any format (qemu-img dd; offsets and
    lengths are multiples of `block`, as the overlay's clusters are). Raw files are read directly."""
    if fmt == "raw":
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length).ljust(length, b"\0")
    if offset % block or length % block:
        block = 512
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="rescue-range-") as tmp:
        # qemu-img dd (7.2) counts `count` from the start of the input, skipped blocks included
        # ("cannot skip to specified offset" otherwise); a qemu that counts after the skip just
        # copies more, and only the first `length` bytes are used.
        skip = offset // block
        out = _run(["qemu-img", "dd", "-U", "-f", fmt, "-O", "raw", f"if={path}", f"of={tmp.name}",
                    f"bs={block}", f"skip={skip}", f"count={skip + length // block}"])
        data = Path(tmp.name).read_bytes()[:length]
        if out.returncode != 0 or len(data) != length:
            raise VerifyError(f"Cannot read back {length} bytes at {offset} of {path}: {_err(out)}")
        return data


def digests(path: str, fmt: str, spans: list[tuple[int, int]], *, piece: int = 16 << 20) -> list[str]:
    out = []
    for off, ln in spans:
        h = hashlib.sha256()
        for p in range(off, off + ln, piece):
            h.update(read_range(path, fmt, p, min(piece, off + ln - p)))
        out.append(h.hexdigest())
    return out


def commit(overlay: Path, image: DiskImage) -> None:
    out = _run(["qemu-img", "commit", "-q", "-f", "qcow2", "-d", str(overlay)])
    if out.returncode != 0:
        raise WriteFailedError(
            f"Writing the changes into {image.path} failed: {_err(out)}.",
            hint=f"The changes are kept in {overlay}; finish with `qemu-img commit -f qcow2 {overlay}` "
                 "once the cause is fixed (do not start the VM before).")
