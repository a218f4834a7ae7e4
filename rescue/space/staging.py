"""Stage a command's writes in a throw-away qcow2 overlay, then grow the image and commit them.

Used whenever a command must grow the disk image (`rescue expand`, `rescue fix no-memory --expand`):
the appliance cannot watch a file grow under it, so it opens an overlay whose backing file is the
user's image and whose virtual size is already the new size (reads past the backing file's end are
zeros, exactly what a grown image holds there). Everything the command writes in its ONE launch
(partition table, NTFS resize, backups, hive edits) lands in the overlay. Only after the launch
succeeded is the image file grown (`imagegrow`, journalled) and the overlay's changed clusters
committed into it (`qemu-img commit`), and those clusters read back and compared.

So a refusal, a "no", a dry run or any failure before the commit leave the image byte-identical.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from rescue.errors import InterruptedWriteError, VerifyError
from rescue.space import imagegrow, overlay

if TYPE_CHECKING:
    from rescue.disk.formats import DiskImage


@dataclass(frozen=True)
class CommitResult:
    image_grown: bool
    committed_bytes: int
    verified_extents: int
    seconds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"image_grown": self.image_grown, "committed_bytes": self.committed_bytes,
                "verified_extents": self.verified_extents, "seconds": self.seconds}


def _overlay_dir(image: DiskImage, dry_run: bool) -> tuple[Path, bool]:
    """Where the working overlay lives: beside the image (same filesystem, survives a reboot, so an
    interrupted commit can be finished), else rescue's cache; a temp folder for dry runs."""
    if dry_run:
        return Path(tempfile.mkdtemp(prefix="rescue-stage-")), True
    if not image.is_block_device:
        d = Path(os.path.abspath(image.path)).parent
        if os.access(d, os.W_OK):
            return d, False
    from rescue.disk import accel as accel_mod

    d = accel_mod.cache_dir() / "expand"
    d.mkdir(parents=True, exist_ok=True)
    return d, False


class Staging:
    """One overlay over `image`, `new_size` bytes virtual. `working_image` is what the session
    opens; `commit()` makes the writes real. Without a commit, leaving the context deletes it."""

    def __init__(self, image: DiskImage, new_size: int, *, dry_run: bool):
        self.image, self.new_size, self.dry_run = image, new_size, dry_run
        self._dir, self._temporary = _overlay_dir(image, dry_run)
        self.overlay = self._dir / f".{Path(image.path).name}.rescue-stage-{os.getpid()}.qcow2"
        self._keep = False
        overlay.create(image, new_size, self.overlay)

    @property
    def working_image(self):
        """The image as the session opens it: the overlay, still named (and sized, for planning:
        `virtual_size` is the image's size before growing) as the user's image."""
        return replace(self.image, staging=str(self.overlay))

    def commit(self) -> CommitResult:
        """Grow the image file to the new size, write the overlay's changed clusters into it, read
        them back. Call only after the session that wrote the overlay is closed."""
        seconds: dict[str, float] = {}
        t = time.monotonic()
        spans = overlay.changed_extents(self.overlay, old_size=self.image.virtual_size)
        want = overlay.digests(str(self.overlay), "qcow2", spans)
        grown = False
        if self.new_size > self.image.virtual_size:
            imagegrow.grow(self.image, self.new_size)     # journalled: restored byte for byte on failure
            grown = True
        seconds["grow_image"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        self._keep = True                                 # from here on the overlay is the only full copy
        try:
            overlay.commit(self.overlay, self.image)
        except KeyboardInterrupt:
            raise InterruptedWriteError(
                f"Interrupted while writing the staged changes into {self.image.path}: it may hold only "
                "part of them.", hint=f"The changes are kept in {self.overlay}; finish with "
                f"`qemu-img commit -f qcow2 {self.overlay}`, then check with `rescue diagnose`.") from None
        got = overlay.digests(self.image.path, self.image.format, spans)
        if got != want:
            raise VerifyError(f"{self.image.path} does not hold what was written (read back differs).",
                              hint=f"The changes are kept in {self.overlay}; run "
                                   f"`qemu-img commit -f qcow2 {self.overlay}` again.")
        problem = (imagegrow.qemu_check(self.image.path, self.image.format)
                   if not self.image.is_block_device else None)
        if problem:
            raise VerifyError(f"qemu-img check reports a problem in {self.image.path} after the change: {problem}")
        self._keep = False
        seconds["commit_and_verify"] = round(time.monotonic() - t, 1)
        return CommitResult(image_grown=grown, committed_bytes=sum(ln for _, ln in spans),
                            verified_extents=len(spans), seconds=seconds)

    def close(self) -> None:
        if not self._keep:
            self.overlay.unlink(missing_ok=True)
            if self._temporary:
                shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def staged(image: DiskImage, new_size: int, *, dry_run: bool) -> Iterator[Staging]:
    st = Staging(image, new_size, dry_run=dry_run)
    try:
        yield st
    finally:
        st.close()
