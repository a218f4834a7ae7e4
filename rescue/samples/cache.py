"""Build-once cache of the sample images.

Layout: `<cache root>/<key>/raw/<base>.raw` (every base, built in ONE appliance launch) and
`<cache root>/<key>/<base>.<fmt>` (converted on the host on first use). The key is a sha256 over the
builder's source files (this package and the hive writer it relies on), so any change to how
samples are built makes a new folder; other folders are pruned once unused. A file lock
(`<key>/.lock`) makes parallel pytest processes wait for one builder instead of building twice.

Cache root: $RESCUE_SAMPLES_CACHE, else `<repo>/.cache/samples` in a checkout, else
~/.cache/rescue/samples. Cached files are made read-only: copy before writing (the `sample_disk`
fixture and the demo do).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Callable, Iterator

import rescue
from rescue.samples import CATALOGUE, split_name

_PKG = Path(rescue.__file__).resolve().parent
# What the images are made of. session.py is left out on purpose: it is the transport, and it
# changes often for unrelated reasons; the images do not depend on how its calls are spelled.
SOURCES = ("samples/__init__.py", "samples/hives.py", "samples/devices.py", "samples/bcd_store.py", "samples/disks.py",
           "samples/build.py", "samples/cache.py", "samples/system_state.py", "samples/ntfs_states.py",
           "ntfs/mft.py", "ntfs/reset.py", "hive/regf.py", "hive/values.py", "hive/hive.py")
PRUNE_AFTER_S = 600


def _stderr(msg: str) -> None:
    print(f"[samples] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    env = os.environ.get("RESCUE_SAMPLES_CACHE")
    if env:
        return Path(env)
    repo = _PKG.parent
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache" / "samples"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "rescue" / "samples"


def cache_key() -> str:
    from rescue.samples.disks import real_system_b

    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode() + b"\0" + (_PKG / rel).read_bytes() + b"\0")
    h.update(repr(sorted(CATALOGUE.items())).encode())
    # The dirty-hive sample embeds realdata's SYSTEM_B when it is there: a different image.
    real = real_system_b()
    h.update(f"realdata:{real.stat().st_size if real else 'absent'}".encode())
    return h.hexdigest()[:24]


def key_dir() -> Path:
    return cache_root() / cache_key()


@contextlib.contextmanager
def _locked(folder: Path, *, blocking: bool = True) -> Iterator[bool]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _jsonable(obj):
    if is_dataclass(obj):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def _prune(root: Path, keep: str) -> None:
    """Remove other builder versions' folders nobody has used for a while and nobody holds."""
    if not root.is_dir():
        return
    for d in root.iterdir():
        if d.name == keep or not d.is_dir():
            continue
        try:
            if time.time() - d.stat().st_mtime < PRUNE_AFTER_S:
                continue
        except OSError:
            continue
        with _locked(d, blocking=False) as got:
            if got:
                shutil.rmtree(d, ignore_errors=True)


def ensure_raw(log: Callable[[str], None] = _stderr) -> Path:
    """The folder of raw images, building all of them (one appliance launch) if needed."""
    from rescue.samples.build import build_raw_images
    from rescue.samples.disks import ids_for, real_system_b, spec_for

    d = key_dir()
    raw = d / "raw"
    if (d / "raw.done").exists():
        return raw
    with _locked(d):
        if (d / "raw.done").exists():
            return raw
        started = time.monotonic()
        log(f"building {len(CATALOGUE)} sample disks in one appliance launch, into {d}")
        work = d / "raw.tmp"
        shutil.rmtree(work, ignore_errors=True)
        hivework = work / "hives"
        specs = [spec_for(s, hivework) for s in CATALOGUE.values()]
        build_raw_images(specs, work, log=log)
        shutil.rmtree(hivework, ignore_errors=True)
        for f in work.glob("*.raw"):
            f.chmod(0o444)
        shutil.rmtree(raw, ignore_errors=True)
        os.replace(work, raw)
        seconds = time.monotonic() - started
        manifest = {
            "key": d.name, "built_seconds": round(seconds, 1),
            "realdata_system_b": bool(real_system_b()),
            "samples": {b: {"kind": s.kind, "description": s.description,
                            "windows": _jsonable(s.windows),
                            "identity": _jsonable(ids_for(b)) if s.kind in ("windows", "data") else None}
                        for b, s in CATALOGUE.items()},
        }
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2))
        (d / "raw.done").write_text(f"{seconds:.1f}\n")
        log(f"sample disks built in {seconds:.0f} s")
    _prune(cache_root(), d.name)
    return raw


def sample_path(name: str, log: Callable[[str], None] = _stderr) -> Path:
    """The cached image `name` ("gen2-broken.vhd", "truncated.vhd", ...), built on first use."""
    from rescue.samples.build import convert, make_not_a_disk, make_truncated_vhd

    base, fmt = split_name(name)
    d = key_dir()
    if fmt == "raw":
        return ensure_raw(log) / f"{base}.raw"
    out = d / name
    if out.exists():
        return out
    if fmt == "special" and name == "not-a-disk.vhd":
        with _locked(d):
            if not out.exists():
                make_not_a_disk(out)
                out.chmod(0o444)
        return out
    raw = ensure_raw(log)
    with _locked(d):
        if not out.exists():
            if name == "truncated.vhd":
                make_truncated_vhd(raw / "gen2-broken.raw", out)
            else:
                convert(raw / f"{base}.raw", out, fmt)
            out.chmod(0o444)
    return out


def build_everything(log: Callable[[str], None] = _stderr) -> dict[str, Path]:
    """Every catalogue name in every format (make demo/bench warm-up, measurements)."""
    from rescue.samples import names

    return {n: sample_path(n, log) for n in names()}


def disk_usage(path: Path) -> int:
    """Bytes really allocated under `path` (sparse files count what they hold)."""
    total = 0
    for p in [path] if path.is_file() else path.rglob("*"):
        if p.is_file():
            total += p.stat().st_blocks * 512
    return total


if __name__ == "__main__":
    t = time.monotonic()
    paths = build_everything()
    for n, p in paths.items():
        print(f"{n:28} {p}")
    print(f"{len(paths)} samples in {key_dir()} ({disk_usage(key_dir()) / 2**20:.0f} MiB on disk), "
          f"{time.monotonic() - t:.0f} s")
